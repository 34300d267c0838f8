//! What is measured: the scenarios' cells (one batch size, or one filesystem and queue depth),
//! the competitors of each, and the engines (contexts, rings, files, buffers) that run them.
//! Every engine is opened once, before any measurement, and kept for the whole run.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use linux_aio::{Context, Event};

use crate::asyncs;
use crate::data::{self, AlignedBuf, BLOCK};
use crate::ffi::{self, CHandle, CLib, ReadsJob};
use crate::measure::{Measure, Sample};
use crate::ours;

/// AIO context capacity (and io_uring entries) of every competitor: room for the largest batch.
pub const DEPTH: u32 = 256;
/// POLL batch sizes.
pub const BATCHES: [usize; 4] = [1, 8, 32, 128];
/// Read queue depths.
pub const QUEUE_DEPTHS: [usize; 2] = [1, 32];

/// One way of doing the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Competitor {
    /// This crate, direct API, completions from the ring (the default).
    OursRing,
    /// This crate, direct API, `set_user_space_reaping(false)`: every wait is `io_getevents`.
    OursSyscall,
    /// This crate, scoped API (ring reaping).
    OursScope,
    /// This crate, shared scope (`Context::shared_scope`), two submitting threads.
    OursShared,
    /// libaio.
    Libaio,
    /// The hand-written C floor loop.
    Floor,
    /// io_uring through liburing.
    IoUring,
    /// One `pread` per request.
    Pread,
    /// linux-aio-async on a tokio current-thread runtime (issue 13).
    Async,
    /// `tokio::task::spawn_blocking(pread)` per request: what `tokio::fs` does.
    TokioFs,
    /// tokio-uring (io_uring) with the same loop as `Async`.
    TokioUring,
}

impl Competitor {
    pub const ALL: [Competitor; 11] = [
        Competitor::OursRing,
        Competitor::OursSyscall,
        Competitor::OursScope,
        Competitor::OursShared,
        Competitor::Libaio,
        Competitor::Floor,
        Competitor::IoUring,
        Competitor::Pread,
        Competitor::Async,
        Competitor::TokioFs,
        Competitor::TokioUring,
    ];

    /// The name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Competitor::OursRing => "linux-aio (ring reap)",
            Competitor::OursSyscall => "linux-aio (syscall reap)",
            Competitor::OursScope => "linux-aio scoped API",
            Competitor::OursShared => "linux-aio shared scope",
            Competitor::Libaio => "libaio",
            Competitor::Floor => "C floor loop",
            Competitor::IoUring => "io_uring (liburing)",
            Competitor::Pread => "pread loop",
            Competitor::Async => "linux-aio-async (tokio)",
            Competitor::TokioFs => "tokio spawn_blocking pread",
            Competitor::TokioUring => "tokio-uring",
        }
    }

    /// The name in JSON and on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Competitor::OursRing => "linux-aio-ring",
            Competitor::OursSyscall => "linux-aio-syscall",
            Competitor::OursScope => "linux-aio-scope",
            Competitor::OursShared => "linux-aio-shared",
            Competitor::Libaio => "libaio",
            Competitor::Floor => "c-floor",
            Competitor::IoUring => "io_uring",
            Competitor::Pread => "pread",
            Competitor::Async => "linux-aio-async",
            Competitor::TokioFs => "tokio-fs",
            Competitor::TokioUring => "tokio-uring",
        }
    }

    /// True for this crate's own synchronous rows (which must not allocate at all).
    pub fn is_ours(self) -> bool {
        matches!(
            self,
            Competitor::OursRing
                | Competitor::OursSyscall
                | Competitor::OursScope
                | Competitor::OursShared
        )
    }

    /// True for the rows whose allocations are counted: ours, and the async crate's.
    pub fn counts_allocs(self) -> bool {
        self.is_ours() || matches!(self, Competitor::Async | Competitor::TokioUring)
    }

    /// True for the async rows, which run only the QD32 read cells.
    pub fn is_async(self) -> bool {
        matches!(
            self,
            Competitor::Async | Competitor::TokioFs | Competitor::TokioUring
        )
    }
}

/// The scenarios of issues 7 and 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Poll,
    Buffered,
    Direct,
    Setup,
    Threads,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Poll,
        Scenario::Buffered,
        Scenario::Direct,
        Scenario::Setup,
        Scenario::Threads,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Scenario::Poll => "poll",
            Scenario::Buffered => "buffered",
            Scenario::Direct => "direct",
            Scenario::Setup => "setup",
            Scenario::Threads => "threads",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Scenario::Poll => {
                "1. POLL round trip on an always-ready eventfd (completes inside io_submit): requests/s"
            }
            Scenario::Buffered => {
                "2. 4 KiB random buffered reads of a page-cached 1 GiB file: IOPS, CPU per request"
            }
            Scenario::Direct => "3. 4 KiB random O_DIRECT reads of a 1 GiB file: IOPS, CPU per request",
            Scenario::Setup => "4. Context setup and teardown (capacity 256): microseconds each",
            Scenario::Threads => {
                "5. POLL from two submitting threads into one context, one request per io_submit, one reaper: requests/s"
            }
        }
    }
}

/// Which open file a read cell uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Buffered, on the data directory's filesystem (ext4 here).
    Disk,
    /// Buffered, the tmpfs copy.
    Tmpfs,
    /// O_DIRECT, on the data directory's filesystem.
    DiskDirect,
}

/// The work of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Poll {
        batch: usize,
    },
    Reads {
        file: FileKind,
        qd: usize,
    },
    Setup,
    /// POLLs from two threads, at most `cap` in flight.
    Threads {
        cap: usize,
    },
}

/// One row group of the table: a scenario with one parameter setting.
#[derive(Debug)]
pub struct Cell {
    pub scenario: Scenario,
    /// `batch 8`, `ext4 QD32`, ...
    pub case: String,
    pub work: Work,
    /// Why the whole cell was not run, if it was not.
    pub skipped: Option<String>,
    pub competitors: Vec<Competitor>,
    /// Per competitor: the reason it could not run in this cell.
    pub failed: Vec<Option<String>>,
    /// Per competitor: the samples, one per repetition.
    pub samples: Vec<Vec<Sample>>,
    /// Requests (POLL: rounds; setup: iterations) per sample, the same for every competitor.
    pub count: u64,
}

impl Cell {
    pub fn new(scenario: Scenario, case: String, work: Work, competitors: &[Competitor]) -> Cell {
        let n = competitors.len();
        Cell {
            scenario,
            case,
            work,
            skipped: None,
            competitors: competitors.to_vec(),
            failed: vec![None; n],
            samples: vec![Vec::new(); n],
            count: 0,
        }
    }
}

/// The open files of the read scenarios.
pub struct Files {
    pub disk: Option<File>,
    pub tmpfs: Option<File>,
    pub direct: Option<File>,
}

/// Everything the competitors run on, opened once.
pub struct Engines {
    pub ctx: Context,
    pub libaio: Option<CHandle>,
    pub floor: Option<CHandle>,
    pub uring: Option<CHandle>,
    /// Why a C engine could not be opened, by library.
    pub open_errors: Vec<(CLib, String)>,
    pub efd: OwnedFd,
    pub files: Files,
    pub bufs: AlignedBuf,
    pub offsets: Vec<u64>,
    pub events: Vec<Event>,
    /// The async rows: one current-thread runtime and one driver for the whole run, the files
    /// bound to it, their buffers, and the std files `spawn_blocking` reads.
    pub rt: tokio::runtime::Runtime,
    pub _driver: linux_aio_async::Driver,
    pub async_files: [Option<linux_aio_async::File>; 3],
    pub shared_files: [Option<Arc<File>>; 3],
    pub async_bufs: Vec<linux_aio_async::AlignedBuf>,
    /// tokio-uring's runtime and files (`Err`: why it could not be had here).
    pub uring_rt: Result<tokio_uring::Runtime, String>,
    pub uring_files: [Option<std::rc::Rc<tokio_uring::fs::File>>; 3],
    pub shared_offsets: Arc<Vec<u64>>,
}

fn index(kind: FileKind) -> usize {
    match kind {
        FileKind::Disk => 0,
        FileKind::Tmpfs => 1,
        FileKind::DiskDirect => 2,
    }
}

impl Engines {
    pub fn open(files: Files) -> Result<Engines, String> {
        let ctx = Context::new(DEPTH).map_err(|e| format!("Context::new({DEPTH}): {e}"))?;
        let mut open_errors = Vec::new();
        let mut open = |lib| {
            CHandle::open(lib, DEPTH)
                .map_err(|e| open_errors.push((lib, e)))
                .ok()
        };
        let (libaio, floor, uring) = (open(CLib::Libaio), open(CLib::Floor), open(CLib::Uring));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let driver = linux_aio_async::Driver::new(DEPTH)
            .map_err(|e| format!("linux_aio_async::Driver::new({DEPTH}): {e}"))?;
        rt.block_on(async { driver.spawn_tokio() })
            .map_err(|e| format!("Driver::spawn_tokio: {e}"))?;
        let all = [&files.disk, &files.tmpfs, &files.direct];
        let dup = |f: &Option<File>| f.as_ref().and_then(|f| f.try_clone().ok());
        let async_files = all.map(|f| dup(f).map(|f| linux_aio_async::File::new(&driver, f)));
        let shared_files = all.map(|f| dup(f).map(Arc::new));
        let offsets = data::random_offsets();
        let uring_rt = tokio_uring::Runtime::new(tokio_uring::builder().entries(DEPTH))
            .map_err(|e| format!("tokio-uring runtime: {e}"));
        let uring_files = all.map(|f| {
            let f = dup(f)?;
            let rt = uring_rt.as_ref().ok()?;
            // Registered with the runtime it will run on.
            Some(std::rc::Rc::new(
                rt.block_on(async { tokio_uring::fs::File::from_std(f) }),
            ))
        });
        Ok(Engines {
            ctx,
            libaio,
            floor,
            uring,
            open_errors,
            efd: data::ready_eventfd()?,
            files,
            bufs: AlignedBuf::new(BLOCK * 128),
            shared_offsets: Arc::new(offsets.clone()),
            offsets,
            events: vec![Event::default(); 128],
            rt,
            _driver: driver,
            async_files,
            shared_files,
            async_bufs: asyncs::buffers(128),
            uring_rt,
            uring_files,
        })
    }

    fn c_handle(&mut self, c: Competitor) -> Result<&mut CHandle, String> {
        let (slot, lib) = match c {
            Competitor::Libaio => (&mut self.libaio, CLib::Libaio),
            Competitor::Floor => (&mut self.floor, CLib::Floor),
            Competitor::IoUring => (&mut self.uring, CLib::Uring),
            _ => unreachable!("not a C competitor"),
        };
        slot.as_mut().ok_or_else(|| {
            self.open_errors
                .iter()
                .find(|(l, _)| *l == lib)
                .map_or_else(|| "not opened".to_string(), |(_, e)| e.clone())
        })
    }

    /// The open file for `kind`.
    fn file(files: &Files, kind: FileKind) -> Result<&File, String> {
        match kind {
            FileKind::Disk => files.disk.as_ref(),
            FileKind::Tmpfs => files.tmpfs.as_ref(),
            FileKind::DiskDirect => files.direct.as_ref(),
        }
        .ok_or_else(|| "file not open".to_string())
    }

    /// Runs `count` units of `work` once with `c`, starting at offset-table index `start`.
    pub fn run(
        &mut self,
        work: Work,
        c: Competitor,
        count: u64,
        start: usize,
    ) -> Result<Sample, String> {
        match work {
            Work::Poll { batch } => self.run_poll(c, batch, count),
            Work::Reads { file, qd } => self.run_reads(c, file, qd, count, start),
            Work::Setup => self.run_setup(c, count),
            Work::Threads { cap } => self.run_threads(c, cap, count),
        }
    }

    fn run_poll(&mut self, c: Competitor, batch: usize, rounds: u64) -> Result<Sample, String> {
        let efd = self.efd.as_fd();
        match c {
            Competitor::OursRing | Competitor::OursSyscall => {
                self.ctx.set_user_space_reaping(c == Competitor::OursRing);
                let r = ours::poll(&mut self.ctx, efd, batch, rounds, &mut self.events);
                self.ctx.set_user_space_reaping(true);
                r
            }
            Competitor::OursScope => ours::poll_scoped(&mut self.ctx, efd, batch, rounds),
            Competitor::OursShared => Err("not applicable".into()),
            Competitor::Libaio | Competitor::Floor | Competitor::IoUring => {
                let raw = self.efd.as_raw_fd();
                let h = self.c_handle(c)?;
                let m = Measure::start();
                h.poll(raw, batch, rounds)?;
                Ok(m.stop(rounds * batch as u64))
            }
            Competitor::Pread
            | Competitor::Async
            | Competitor::TokioFs
            | Competitor::TokioUring => Err("not applicable".into()),
        }
    }

    fn run_reads(
        &mut self,
        c: Competitor,
        kind: FileKind,
        qd: usize,
        total: u64,
        start: usize,
    ) -> Result<Sample, String> {
        if c.is_async() {
            let job = asyncs::Job {
                offsets: self.shared_offsets.clone(),
                qd,
                start,
                total,
            };
            let missing = || "file not open".to_string();
            return if c == Competitor::Async {
                let file = self.async_files[index(kind)].as_ref().ok_or_else(missing)?;
                asyncs::reads(&self.rt, file, &job, &mut self.async_bufs)
            } else if c == Competitor::TokioUring {
                let rt = self.uring_rt.as_ref().map_err(Clone::clone)?;
                let file = self.uring_files[index(kind)].as_ref().ok_or_else(missing)?;
                asyncs::uring_reads(rt, file, &job, &mut self.async_bufs)
            } else {
                let file = self.shared_files[index(kind)]
                    .as_ref()
                    .ok_or_else(missing)?;
                asyncs::tokio_fs_reads(&self.rt, file, &job, &mut self.async_bufs)
            };
        }
        let fd = Self::file(&self.files, kind)?.as_raw_fd();
        let job = ReadsJob {
            fd,
            qd: qd as i32,
            bufs: self.bufs.as_mut_slice().as_mut_ptr(),
            offsets: self.offsets.as_ptr(),
            mask: self.offsets.len() - 1,
            start,
            total: total as i64,
        };
        match c {
            Competitor::OursShared => Err("not applicable".into()),
            Competitor::OursRing | Competitor::OursSyscall | Competitor::OursScope => {
                let file = Self::file(&self.files, kind)?;
                let job = ours::Reads {
                    fd: file.as_fd(),
                    qd,
                    offsets: &self.offsets,
                    start,
                    total,
                };
                if c == Competitor::OursScope {
                    return ours::reads_scoped(&mut self.ctx, &job, &mut self.bufs);
                }
                self.ctx.set_user_space_reaping(c == Competitor::OursRing);
                let r = ours::reads(&mut self.ctx, &job, &mut self.bufs, &mut self.events);
                self.ctx.set_user_space_reaping(true);
                r
            }
            Competitor::Libaio | Competitor::Floor | Competitor::IoUring => {
                let h = self.c_handle(c)?;
                let m = Measure::start();
                // SAFETY: the buffers hold 128 blocks (qd <= 32) and the offset table
                // `mask + 1` entries; both outlive the call.
                unsafe { h.reads(&job) }?;
                Ok(m.stop(total))
            }
            Competitor::Async | Competitor::TokioFs | Competitor::TokioUring => {
                unreachable!("handled above")
            }
            Competitor::Pread => {
                if qd != 1 {
                    return Err("not applicable".into());
                }
                let m = Measure::start();
                // SAFETY: as above.
                unsafe { ffi::pread_loop(&job) }?;
                Ok(m.stop(total))
            }
        }
    }

    fn run_threads(&mut self, c: Competitor, cap: usize, total: u64) -> Result<Sample, String> {
        let efd = self.efd.as_fd();
        match c {
            Competitor::OursRing => ours::poll_threads(&mut self.ctx, efd, cap, total),
            Competitor::OursShared => ours::poll_shared(&mut self.ctx, efd, cap, total),
            _ => Err("not applicable".into()),
        }
    }

    fn run_setup(&mut self, c: Competitor, iterations: u64) -> Result<Sample, String> {
        let lib = match c {
            Competitor::OursRing => return ours::setup_teardown(DEPTH, iterations),
            Competitor::Libaio => CLib::Libaio,
            Competitor::Floor => CLib::Floor,
            Competitor::IoUring => CLib::Uring,
            _ => return Err("not applicable".into()),
        };
        let t = ffi::setup_teardown(lib, DEPTH, iterations)?;
        Ok(Sample {
            ops: iterations,
            wall_ns: t.setup_ns,
            teardown_ns: t.teardown_ns,
            ..Sample::default()
        })
    }
}
