//! The C competitors of `c/` (see `c/bench.h`), with owning handles that close their context
//! on drop. Each call runs a whole timed loop in C; these wrappers only translate the result.

use std::ffi::{c_int, c_long, c_uint, c_void};

/// `struct reads_job` of `c/bench.h`: the random-read job every competitor runs.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ReadsJob {
    pub fd: c_int,
    pub qd: c_int,
    pub bufs: *mut u8,
    pub offsets: *const u64,
    pub mask: usize,
    pub start: usize,
    pub total: c_long,
}

/// `struct setup_times` of `c/bench.h`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SetupTimes {
    pub setup_ns: u64,
    pub teardown_ns: u64,
}

extern "C" {
    fn la_open(depth: c_uint) -> *mut c_void;
    fn la_close(h: *mut c_void);
    fn la_poll(h: *mut c_void, efd: c_int, batch: c_int, rounds: c_long) -> c_long;
    fn la_reads(h: *mut c_void, job: *const ReadsJob) -> c_long;
    fn la_setup_teardown(depth: c_uint, iterations: c_long, out: *mut SetupTimes) -> c_long;

    fn fl_open(depth: c_uint) -> *mut c_void;
    fn fl_close(h: *mut c_void);
    fn fl_poll(h: *mut c_void, efd: c_int, batch: c_int, rounds: c_long) -> c_long;
    fn fl_reads(h: *mut c_void, job: *const ReadsJob) -> c_long;
    fn fl_setup_teardown(depth: c_uint, iterations: c_long, out: *mut SetupTimes) -> c_long;

    fn ur_open(entries: c_uint) -> *mut c_void;
    fn ur_close(h: *mut c_void);
    fn ur_poll(h: *mut c_void, efd: c_int, batch: c_int, rounds: c_long) -> c_long;
    fn ur_reads(h: *mut c_void, job: *const ReadsJob) -> c_long;
    fn ur_setup_teardown(entries: c_uint, iterations: c_long, out: *mut SetupTimes) -> c_long;

    fn sy_pread(job: *const ReadsJob) -> c_long;
}

/// Which C library a [`CHandle`] drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CLib {
    /// libaio.
    Libaio,
    /// The hand-written floor loop (raw syscalls, ring reaping).
    Floor,
    /// io_uring through liburing.
    Uring,
}

impl CLib {
    /// The name in notes and errors.
    pub fn name(self) -> &'static str {
        match self {
            CLib::Libaio => "libaio",
            CLib::Floor => "the C floor loop",
            CLib::Uring => "io_uring (liburing)",
        }
    }

    /// Why this library's competitor was left out of the build, if it was: build.rs sets
    /// `LINUX_AIO_BENCH_MISSING` to the packages whose headers it did not find.
    fn not_built(self) -> Option<String> {
        let package = match self {
            CLib::Libaio => "libaio-dev",
            CLib::Uring => "liburing-dev",
            CLib::Floor => return None,
        };
        env!("LINUX_AIO_BENCH_MISSING")
            .split(' ')
            .any(|m| m == package)
            .then(|| {
                format!(
                    "not built: {package} was not installed when the benchmark was built \
                     (apt-get install -y {package})"
                )
            })
    }
}

fn status(ret: c_long, what: &str) -> Result<(), String> {
    if ret == 0 {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}",
            std::io::Error::from_raw_os_error(-ret as i32)
        ))
    }
}

/// One open context (or ring) of a C competitor.
#[derive(Debug)]
pub struct CHandle {
    lib: CLib,
    ptr: *mut c_void,
}

impl CHandle {
    /// Opens a context for `depth` requests in flight (ring entries for io_uring).
    pub fn open(lib: CLib, depth: u32) -> Result<CHandle, String> {
        if let Some(why) = lib.not_built() {
            return Err(why);
        }
        // SAFETY: plain constructors; they return NULL on failure.
        let ptr = unsafe {
            match lib {
                CLib::Libaio => la_open(depth),
                CLib::Floor => fl_open(depth),
                CLib::Uring => ur_open(depth),
            }
        };
        if ptr.is_null() {
            Err(format!(
                "{}: cannot open a context: {}",
                lib.name(),
                std::io::Error::last_os_error()
            ))
        } else {
            Ok(CHandle { lib, ptr })
        }
    }

    /// `rounds` POLL round trips of `batch` requests each on the always-ready `efd`.
    pub fn poll(&mut self, efd: c_int, batch: usize, rounds: u64) -> Result<(), String> {
        let (b, r) = (batch as c_int, rounds as c_long);
        // SAFETY: `self.ptr` is a live handle of `self.lib`; the loop reaps everything it submits.
        let ret = unsafe {
            match self.lib {
                CLib::Libaio => la_poll(self.ptr, efd, b, r),
                CLib::Floor => fl_poll(self.ptr, efd, b, r),
                CLib::Uring => ur_poll(self.ptr, efd, b, r),
            }
        };
        status(ret, "poll loop")
    }

    /// Runs a random-read job.
    ///
    /// # Safety
    /// `job.bufs` must be writable for `job.qd` reads and `job.offsets` readable for
    /// `job.mask + 1` entries, for the duration of the call.
    pub unsafe fn reads(&mut self, job: &ReadsJob) -> Result<(), String> {
        // SAFETY: forwarded to the caller; the loop reaps everything it submits.
        let ret = unsafe {
            match self.lib {
                CLib::Libaio => la_reads(self.ptr, job),
                CLib::Floor => fl_reads(self.ptr, job),
                CLib::Uring => ur_reads(self.ptr, job),
            }
        };
        status(ret, "read loop")
    }
}

impl Drop for CHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is live and used by nothing else.
        unsafe {
            match self.lib {
                CLib::Libaio => la_close(self.ptr),
                CLib::Floor => fl_close(self.ptr),
                CLib::Uring => ur_close(self.ptr),
            }
        }
    }
}

/// Creates and destroys `iterations` contexts of `lib`, timing each half.
pub fn setup_teardown(lib: CLib, depth: u32, iterations: u64) -> Result<SetupTimes, String> {
    if let Some(why) = lib.not_built() {
        return Err(why);
    }
    let mut out = SetupTimes::default();
    let n = iterations as c_long;
    // SAFETY: `out` is a valid, writable SetupTimes.
    let ret = unsafe {
        match lib {
            CLib::Libaio => la_setup_teardown(depth, n, &mut out),
            CLib::Floor => fl_setup_teardown(depth, n, &mut out),
            CLib::Uring => ur_setup_teardown(depth, n, &mut out),
        }
    };
    status(ret, "setup/teardown loop").map(|()| out)
}

/// The plain `pread` loop.
///
/// # Safety
/// As [`CHandle::reads`] (only the first buffer is used).
pub unsafe fn pread_loop(job: &ReadsJob) -> Result<(), String> {
    // SAFETY: forwarded to the caller.
    status(unsafe { sy_pread(job) }, "pread loop")
}
