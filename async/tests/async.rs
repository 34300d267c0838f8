//! The async layer against the host kernel: every operation, on tokio's current-thread and
//! multi-thread runtimes and on a plain executor with the driver thread; futures dropped in
//! flight (their buffers freed only after the kernel is done, checked with canary buffers);
//! cancellation; 10,000 concurrent futures; batching; a full ring; shutdown and runtime drop
//! with requests in flight; bad input; fork.
//!
//! Runs with the crate's own harness (`SKIPPED: reason` for what cannot run here). Scratch
//! files live under Cargo's per-target temporary directory (a real filesystem where /tmp may be
//! tmpfs, which refuses O_DIRECT), named with the process id, so two runs never collide.

#[path = "../../tests/support/runner.rs"]
mod runner;

use std::future::Future;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use linux_aio_async::{
    dio_alignment, AlignedBuf, Driver, File, IoBuf, IoBufMut, PollFlags, RwFlags,
};
use runner::{skipped, Outcome, Passed};

fn main() {
    let tests: &[runner::Test] = &[
        ("operations_current_thread", operations_current_thread),
        ("operations_multi_thread", operations_multi_thread),
        (
            "operations_on_a_plain_executor",
            operations_on_a_plain_executor,
        ),
        ("one_io_submit_per_wakeup", one_io_submit_per_wakeup),
        ("ten_thousand_futures_current_thread", ten_thousand_current),
        ("ten_thousand_futures_multi_thread", ten_thousand_multi),
        ("full_ring_is_back_pressure", full_ring_is_back_pressure),
        ("drop_in_flight_direct_read", drop_in_flight_direct_read),
        ("drop_in_flight_direct_write", drop_in_flight_direct_write),
        (
            "drop_while_queued_never_submits",
            drop_while_queued_never_submits,
        ),
        ("dropped_poll_is_cancelled", dropped_poll_is_cancelled),
        ("poll_completes_when_ready", poll_completes_when_ready),
        (
            "shutdown_with_requests_in_flight",
            shutdown_with_requests_in_flight,
        ),
        (
            "runtime_dropped_with_requests_in_flight",
            runtime_dropped_in_flight,
        ),
        ("bad_input_is_an_error", bad_input_is_an_error),
        ("dio_alignment_from_statx", dio_alignment_from_statx),
        (
            "unannounced_completion_still_reaped",
            unannounced_completion,
        ),
        (
            "nowait_read_of_an_evicted_page",
            nowait_read_of_an_evicted_page,
        ),
        ("forked_child_gets_einval", forked_child_gets_einval),
        (
            "forked_child_leaves_the_eventfd_alone",
            forked_child_leaves_eventfd,
        ),
    ];
    // Without kernel AIO (CONFIG_AIO=n, qemu-user) every test says so instead of failing.
    if let Err(e) = Driver::new(1) {
        if e.raw_os_error() == Some(libc::ENOSYS) {
            let skips: Vec<runner::Test> = tests
                .iter()
                .map(|(name, _)| (*name, no_aio as fn() -> Outcome))
                .collect();
            runner::run("async", &skips)
        }
    }
    runner::run("async", tests)
}

fn no_aio() -> Outcome {
    skipped("no kernel AIO here (io_setup gives ENOSYS)")
}

// ---- helpers

/// Futures, files and drivers move between threads (tokio::spawn on a multi-thread runtime).
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send_unpin<T: Send + Unpin>() {}
    send_sync::<Driver>();
    send_sync::<File>();
    send_unpin::<linux_aio_async::Op<linux_aio_async::Read<Vec<u8>>>>();
    send_unpin::<linux_aio_async::Op<linux_aio_async::WriteV<Box<[u8]>>>>();
    send_unpin::<linux_aio_async::Op<linux_aio_async::PollOp>>();
};

fn current() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A path for a scratch file under Cargo's target temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir.join(format!("linux-aio-async-{}-{tag}", std::process::id())))
    }

    /// The file, created with `len` bytes of `pattern(offset)`.
    fn with_data(tag: &str, len: usize) -> Scratch {
        let s = Scratch::new(tag);
        let data: Vec<u8> = (0..len).map(pattern).collect();
        std::fs::write(&s.0, data).unwrap();
        // On the device, not dirty in the page cache: an O_DIRECT request on dirty pages would
        // flush them inside io_submit, and complete there.
        s.open().sync_all().unwrap();
        s
    }

    fn open(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.0)
            .unwrap()
    }

    /// Opened with O_DIRECT, or why that cannot be done here.
    fn open_direct(&self) -> Result<std::fs::File, String> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&self.0)
            .map_err(|e| format!("{} refuses O_DIRECT: {e}", self.0.display()))?;
        let mut probe = AlignedBuf::new(4096).unwrap();
        f.read_at(&mut probe, 0)
            .map_err(|e| format!("an O_DIRECT read fails on {}: {e}", self.0.display()))?;
        Ok(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The byte at `offset` of every test file.
fn pattern(offset: usize) -> u8 {
    (offset % 251) as u8
}

/// Waits (yielding to the driver) until `cond` holds, for at most 10 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn wait_blocking(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Lets the driving task (current-thread runtime) run its turn, which submits the queue.
async fn submitted(driver: &Driver) {
    while driver.stats().queued > 0 {
        tokio::task::yield_now().await;
    }
}

/// Polls `fut` once (queueing its request), then gives it back.
async fn poll_once<F: Future + Unpin>(mut fut: F) -> F {
    std::future::poll_fn(|cx| {
        assert!(
            Pin::new(&mut fut).poll(cx).is_pending(),
            "completed at once"
        );
        Poll::Ready(())
    })
    .await;
    fut
}

/// What a canary saw when it was dropped.
#[derive(Debug, Clone)]
struct Death {
    /// Every byte held what the kernel was to write (a read), or what it was to read (a write).
    intact: bool,
    thread: String,
    /// AIO rings this process had mapped at the time (io_destroy unmaps a context's ring).
    rings: usize,
}

type Deaths = Arc<Mutex<Vec<Death>>>;

/// An O_DIRECT buffer that records, when dropped, whether its bytes are the expected ones and
/// on which thread it died. A read's buffer is filled with 0xAA and the file holds `pattern`:
/// a canary freed before the kernel finished writing it still holds 0xAA somewhere.
struct Canary {
    buf: AlignedBuf,
    expect: fn(usize) -> u8,
    base: usize,
    deaths: Deaths,
}

impl Canary {
    fn new(len: usize, fill: u8, expect: fn(usize) -> u8, base: usize, deaths: &Deaths) -> Canary {
        let mut buf = AlignedBuf::new(len).unwrap();
        buf.fill(fill);
        Canary {
            buf,
            expect,
            base,
            deaths: deaths.clone(),
        }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let intact = self
            .buf
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (self.expect)(self.base + i));
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        let rings = aio_rings();
        self.deaths.lock().unwrap().push(Death {
            intact,
            thread,
            rings,
        });
    }
}

// SAFETY: forwards to the AlignedBuf, whose bytes live in its own allocation.
unsafe impl IoBuf for Canary {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.buf.bytes_total()
    }
}

// SAFETY: as above.
unsafe impl IoBufMut for Canary {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded.
        unsafe { self.buf.set_init(pos) }
    }
}

/// How many AIO rings this process has mapped (`/[aio]` lines of /proc/self/maps).
fn aio_rings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().filter(|l| l.contains("/[aio]")).count())
        .unwrap_or(0)
}

fn deaths(d: &Deaths) -> Vec<Death> {
    d.lock().unwrap().clone()
}

// ---- every operation

async fn every_operation(driver: Driver) {
    let scratch = Scratch::new("ops");
    let file = File::new(&driver, scratch.open());
    // write_at with a Vec, read back into a Vec's spare capacity.
    let data: Vec<u8> = (0..10_000).map(pattern).collect();
    let (res, back) = file.write_at(data, 0).await;
    assert_eq!(res.unwrap(), 10_000);
    assert_eq!(back.len(), 10_000);
    file.sync_all().await.unwrap();
    file.sync_data().await.unwrap();
    let (res, buf) = file.read_at(Vec::with_capacity(4096), 100).await;
    assert_eq!(res.unwrap(), 4096);
    assert_eq!(buf.len(), 4096);
    assert!(buf.iter().enumerate().all(|(i, &b)| b == pattern(100 + i)));
    // A short read at the end sets the length to what was read.
    let (res, buf) = file.read_at(Vec::with_capacity(4096), 9_000).await;
    assert_eq!((res.unwrap(), buf.len()), (1000, 1000));
    // Box<[u8]> and a 'static slice.
    let (res, boxed) = file.read_at(vec![0u8; 16].into_boxed_slice(), 0).await;
    assert_eq!(res.unwrap(), 16);
    assert_eq!(boxed[..], (0..16).map(pattern).collect::<Vec<_>>()[..]);
    let (res, _) = file.write_at(&b"static"[..], 20_000).await;
    assert_eq!(res.unwrap(), 6);
    // Vectored forms.
    let parts = vec![b"abc".to_vec(), b"defgh".to_vec()];
    let (res, parts) = file.writev_at(parts, 30_000).await;
    assert_eq!((res.unwrap(), parts.len()), (8, 2));
    let bufs = vec![Vec::with_capacity(2), Vec::with_capacity(10)];
    let (res, bufs) = file.readv_at(bufs, 30_000).await;
    assert_eq!(res.unwrap(), 8);
    assert_eq!((&bufs[0][..], &bufs[1][..]), (&b"ab"[..], &b"cdefgh"[..]));
    // An aligned buffer, and a zero-length one.
    let (res, aligned) = file.read_at(AlignedBuf::new(8192).unwrap(), 0).await;
    assert_eq!(res.unwrap(), 8192);
    assert!(aligned.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    let (res, _) = file.read_at(Vec::new(), 0).await;
    assert_eq!(res.unwrap(), 0);
    // poll on a regular file: always ready.
    let ready = file.poll(PollFlags::IN).await.unwrap();
    assert!(ready.contains(PollFlags::IN));
    // Results match std's view of the file.
    let mut check = vec![0u8; 8];
    scratch.open().read_exact_at(&mut check, 30_000).unwrap();
    assert_eq!(&check, b"abcdefgh");
    let s = driver.stats();
    assert_eq!((s.queued, s.in_kernel), (0, 0));
}

fn operations_current_thread() -> Outcome {
    let rt = current();
    rt.block_on(async {
        let driver = Driver::new(64).unwrap();
        driver.spawn_tokio().unwrap();
        every_operation(driver).await;
    });
    Passed
}

fn operations_multi_thread() -> Outcome {
    let rt = multi();
    rt.block_on(async {
        let driver = Driver::new(64).unwrap();
        driver.spawn_tokio().unwrap();
        // On a worker thread, and from the block_on thread.
        tokio::spawn(every_operation(driver.clone())).await.unwrap();
        every_operation(driver).await;
    });
    Passed
}

fn operations_on_a_plain_executor() -> Outcome {
    let driver = Driver::new(64).unwrap();
    let thread = driver.spawn_thread().unwrap();
    futures::executor::block_on(async {
        let scratch = Scratch::with_data("plain", 8192);
        let file = File::new(&driver, scratch.open());
        let (res, buf) = file.read_at(Vec::with_capacity(8192), 0).await;
        assert_eq!(res.unwrap(), 8192);
        assert!(buf.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        let reads = (0..100).map(|i| file.read_at(vec![0u8; 64].into_boxed_slice(), i * 64));
        for (i, (res, buf)) in futures::future::join_all(reads)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(res.unwrap(), 64);
            assert_eq!(buf[0], pattern(i * 64));
        }
    });
    driver.shutdown();
    drop(driver);
    let start = Instant::now();
    while !thread.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the driver thread did not end"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    Passed
}

// ---- batching and back-pressure

fn one_io_submit_per_wakeup() -> Outcome {
    current().block_on(async {
        let scratch = Scratch::with_data("batch", 32 * 4096);
        let driver = Driver::new(64).unwrap();
        driver.spawn_tokio().unwrap();
        let file = File::new(&driver, scratch.open());
        // Let the driving task start before counting.
        let (res, _) = file.read_at(Vec::with_capacity(1), 0).await;
        res.unwrap();
        let before = driver.stats().submit_calls;
        let reads = (0..32).map(|i| file.read_at(Vec::with_capacity(4096), i * 4096));
        let results = futures::future::join_all(reads).await;
        assert!(results.iter().all(|(r, _)| *r.as_ref().unwrap() == 4096));
        let calls = driver.stats().submit_calls - before;
        assert_eq!(
            calls, 1,
            "32 futures queued in one tick must go in one io_submit"
        );
    });
    Passed
}

/// 10,000 futures at once on a 64-slot driver: each reads its own 64 bytes and checks them.
async fn ten_thousand(spawn: bool) {
    const N: usize = 10_000;
    let scratch = Scratch::with_data(if spawn { "10k-mt" } else { "10k" }, N * 64);
    let driver = Driver::new(64).unwrap();
    driver.spawn_tokio().unwrap();
    let file = File::new(&driver, scratch.open());
    let read = |i: usize| {
        let file = file.clone();
        async move {
            let (res, buf) = file.read_at(Vec::with_capacity(64), (i * 64) as u64).await;
            assert_eq!(res.unwrap(), 64);
            assert!(buf
                .iter()
                .enumerate()
                .all(|(k, &b)| b == pattern(i * 64 + k)));
        }
    };
    if spawn {
        let tasks: Vec<_> = (0..N).map(|i| tokio::spawn(read(i))).collect();
        for t in tasks {
            t.await.unwrap();
        }
    } else {
        futures::future::join_all((0..N).map(read)).await;
    }
    let s = driver.stats();
    assert_eq!((s.queued, s.in_kernel, s.waiting_for_slot), (0, 0, 0));
    assert!(s.reaped >= N as u64);
    // 64 slots: at least 157 batches. On one thread every wake-up gathers every request
    // queued since the last (157 calls); on two, the driving task runs beside the futures and
    // is woken by the first request of each batch, so batches are smaller.
    let most = if spawn { N * 9 / 10 } else { N / 8 } as u64;
    println!("{} io_submit calls for {N} requests", s.submit_calls);
    assert!(
        s.submit_calls < most,
        "{} io_submit calls for {N} requests",
        s.submit_calls
    );
}

fn ten_thousand_current() -> Outcome {
    current().block_on(ten_thousand(false));
    Passed
}

fn ten_thousand_multi() -> Outcome {
    multi().block_on(ten_thousand(true));
    Passed
}

fn full_ring_is_back_pressure() -> Outcome {
    current().block_on(async {
        // io_setup(1) gives a one-page ring (about 126 requests with 4 KiB pages, 2046 with
        // 64 KiB); the table has 2500 slots, so the kernel refuses part of a batch of 2500
        // polls with EAGAIN.
        const POLLS: usize = 2500;
        let driver = Driver::builder().capacity(1).slots(POLLS).build().unwrap();
        driver.spawn_tokio().unwrap();
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        let rd = File::new(&driver, rd);
        let polls: Vec<_> = (0..POLLS)
            .map(|_| tokio::spawn(rd.poll(PollFlags::IN)))
            .collect();
        until("the ring fills", || driver.stats().ring_full > 0).await;
        let s = driver.stats();
        assert!(s.queued > 0 && s.in_kernel < POLLS, "{s:?}");
        rustix::io::write(&wr, b"x").unwrap();
        for p in polls {
            let ready = p.await.unwrap().unwrap();
            assert!(ready.contains(PollFlags::IN));
        }
        let s = driver.stats();
        assert_eq!((s.queued, s.in_kernel), (0, 0));
    });
    Passed
}

// ---- futures dropped in flight

/// O_DIRECT reads of 1 MiB into canaries, dropped while the kernel holds them: no canary may
/// die at the drop, and each must die holding the file's bytes (the kernel had finished).
fn drop_in_flight_direct_read() -> Outcome {
    const LEN: usize = 1 << 20;
    const N: usize = 8;
    let scratch = Scratch::with_data("drop-read", N * LEN);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    let mut in_kernel_at_drop = 0;
    // A try proves something only if some reads are still in the kernel at the drop (1 MiB
    // O_DIRECT reads take a millisecond or more here): up to 5 tries on a faster device.
    for _ in 0..5 {
        let direct = direct.try_clone().unwrap();
        current().block_on(async {
            let driver = Driver::new(64).unwrap();
            driver.spawn_tokio().unwrap();
            let file = File::new(&driver, direct);
            let d = Deaths::default();
            let mut ops = Vec::new();
            for i in 0..N {
                let canary = Canary::new(LEN, 0xAA, pattern, i * LEN, &d);
                ops.push(poll_once(file.read_at(canary, (i * LEN) as u64)).await);
            }
            submitted(&driver).await;
            // The driving task cannot run during this synchronous stretch: nothing is reaped, so
            // the requests the driver counts in the kernel stay there until after the drop.
            in_kernel_at_drop = driver.stats().in_kernel;
            drop(ops);
            // Only requests whose completion was already reaped may free their buffer now.
            assert_eq!(
                deaths(&d).len(),
                N - in_kernel_at_drop,
                "a buffer the kernel holds was freed when its future was dropped"
            );
            until("every canary freed", || deaths(&d).len() == N).await;
            for death in deaths(&d) {
                assert!(
                    death.intact,
                    "a buffer was freed before the kernel filled it"
                );
            }
            let s = driver.stats();
            assert_eq!((s.queued, s.in_kernel), (0, 0));
        });
        if in_kernel_at_drop > 0 {
            break;
        }
    }
    assert!(
        in_kernel_at_drop > 0,
        "every read completed before the drop, in every try"
    );
    println!("{in_kernel_at_drop} of {N} reads in the kernel at the drop");
    Passed
}

/// The same for O_DIRECT writes: the kernel reads the canary; it must outlive the write, and
/// the file must end up holding its bytes.
fn drop_in_flight_direct_write() -> Outcome {
    const LEN: usize = 1 << 20;
    const N: usize = 8;
    let scratch = Scratch::with_data("drop-write", N * LEN);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    let mut proved = false;
    // As for reads: up to 5 tries, until some write is still in the kernel at the drop.
    for _ in 0..5 {
        let direct = direct.try_clone().unwrap();
        proved = current().block_on(async {
            let driver = Driver::new(64).unwrap();
            driver.spawn_tokio().unwrap();
            let file = File::new(&driver, direct);
            let d = Deaths::default();
            let mut ops = Vec::new();
            for i in 0..N {
                let canary = Canary::new(LEN, 0x77, |_| 0x77, 0, &d);
                ops.push(poll_once(file.write_at(canary, (i * LEN) as u64)).await);
            }
            submitted(&driver).await;
            let in_kernel = driver.stats().in_kernel;
            drop(ops);
            assert_eq!(
                deaths(&d).len(),
                N - in_kernel,
                "a buffer the kernel reads was freed at the drop"
            );
            until("every canary freed", || deaths(&d).len() == N).await;
            assert!(deaths(&d).iter().all(|x| x.intact));
            in_kernel > 0
        });
        if proved {
            break;
        }
    }
    assert!(
        proved,
        "every write completed before the drop, in every try"
    );
    let written = std::fs::read(&scratch.0).unwrap();
    assert!(
        written.iter().all(|&b| b == 0x77),
        "the writes did not complete"
    );
    Passed
}

fn drop_while_queued_never_submits() -> Outcome {
    current().block_on(async {
        let scratch = Scratch::with_data("queued", 4096);
        let driver = Driver::new(8).unwrap();
        // No driving task yet: the request stays queued.
        let file = File::new(&driver, scratch.open());
        let d = Deaths::default();
        let op = poll_once(file.read_at(Canary::new(4096, 0xAA, |_| 0xAA, 0, &d), 0)).await;
        assert_eq!(driver.stats().queued, 1);
        drop(op);
        // Freed at once, untouched: it never reached the kernel.
        let dd = deaths(&d);
        assert_eq!(dd.len(), 1);
        assert!(dd[0].intact);
        assert_eq!(driver.stats().queued, 0);
        driver.spawn_tokio().unwrap();
        let (res, _) = file.read_at(Vec::with_capacity(10), 0).await;
        assert_eq!(res.unwrap(), 10);
        assert_eq!(driver.stats().submit_calls, 1);
    });
    Passed
}

fn dropped_poll_is_cancelled() -> Outcome {
    current().block_on(async {
        let driver = Driver::new(8).unwrap();
        driver.spawn_tokio().unwrap();
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        let rd = File::new(&driver, rd);
        let op = poll_once(rd.poll(PollFlags::IN)).await;
        until("the poll is in the kernel", || {
            driver.stats().in_kernel == 1
        })
        .await;
        let reaped = driver.stats().reaped;
        drop(op);
        // io_cancel, then the cancelled poll's event comes back through the ring.
        until("the poll is cancelled", || driver.stats().in_kernel == 0).await;
        assert_eq!(driver.stats().reaped, reaped + 1);
        // The pipe is still empty: only cancellation can have ended it. A new poll works.
        rustix::io::write(&wr, b"x").unwrap();
        let ready = rd.poll(PollFlags::IN).await.unwrap();
        assert!(ready.contains(PollFlags::IN));
        // select!: the losing poll is cancelled too.
        let (rd2, _wr2) = rustix::pipe::pipe().unwrap();
        let rd2 = File::new(&driver, rd2);
        tokio::select! {
            _ = rd2.poll(PollFlags::IN) => panic!("an empty pipe polled readable"),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        until("the lost poll is cancelled", || {
            driver.stats().in_kernel == 0
        })
        .await;
    });
    Passed
}

fn poll_completes_when_ready() -> Outcome {
    multi().block_on(async {
        let driver = Driver::new(8).unwrap();
        driver.spawn_tokio().unwrap();
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        let rd = File::new(&driver, rd);
        let waiting = tokio::spawn(rd.poll(PollFlags::IN));
        until("the poll is in the kernel", || {
            driver.stats().in_kernel == 1
        })
        .await;
        rustix::io::write(&wr, b"x").unwrap();
        let ready = waiting.await.unwrap().unwrap();
        assert!(ready.contains(PollFlags::IN));
        // A closed write end: POLLHUP.
        drop(wr);
        let (rd3, wr3) = rustix::pipe::pipe().unwrap();
        drop(wr3);
        let ready = File::new(&driver, rd3).poll(PollFlags::IN).await.unwrap();
        assert!(ready.contains(PollFlags::HUP));
    });
    Passed
}

// ---- shutdown

fn shutdown_with_requests_in_flight() -> Outcome {
    const LEN: usize = 1 << 20;
    let scratch = Scratch::with_data("shutdown", 8 * LEN);
    let direct = scratch.open_direct();
    current().block_on(async {
        let driver = Driver::new(64).unwrap();
        let task = driver.spawn_tokio().unwrap();
        let (rd, _wr) = rustix::pipe::pipe().unwrap();
        let rd = File::new(&driver, rd);
        let polls: Vec<_> = (0..4)
            .map(|_| tokio::spawn(rd.poll(PollFlags::IN)))
            .collect();
        let d = Deaths::default();
        let mut reads = Vec::new();
        if let Ok(direct) = &direct {
            let file = File::new(&driver, direct.try_clone().unwrap());
            for i in 0..8 {
                let canary = Canary::new(LEN, 0xAA, pattern, i * LEN, &d);
                reads.push(tokio::spawn(file.read_at(canary, (i * LEN) as u64)));
            }
        }
        until("in flight", || {
            let s = driver.stats();
            s.queued == 0 && s.in_kernel >= 4
        })
        .await;
        driver.shutdown();
        // New requests are refused.
        let (res, _) = rd.read_at(Vec::with_capacity(1), 0).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        for p in polls {
            let err = p.await.unwrap().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECANCELED));
        }
        // Reads the kernel holds complete normally, buffers handed back.
        for (i, r) in reads.into_iter().enumerate() {
            let (res, canary) = r.await.unwrap();
            assert_eq!(res.unwrap(), LEN);
            assert!(canary
                .buf
                .iter()
                .enumerate()
                .all(|(k, &b)| b == pattern(i * LEN + k)));
        }
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the driving task ends after shutdown")
            .unwrap();
    });
    match direct {
        Ok(_) => Passed,
        Err(why) => skipped(format!("polls checked; O_DIRECT part: {why}")),
    }
}

/// A runtime dropped while O_DIRECT reads are in flight: its tasks (and their futures) are
/// dropped; the buffers must be freed only after io_destroy has waited for the reads, on the
/// teardown thread, and never leaked.
fn runtime_dropped_in_flight() -> Outcome {
    const LEN: usize = 4 << 20; // long enough to be in flight when the teardown starts
    const N: usize = 16;
    let scratch = Scratch::with_data("rt-drop", N * LEN);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    let d = Deaths::default();
    for flavour in ["current", "multi"] {
        // A try proves something only if some read is still in the kernel when the runtime
        // goes (on two threads the reads may all finish first): up to 5 tries.
        let mut proved = false;
        for _ in 0..5 {
            d.lock().unwrap().clear();
            // Earlier tests' drivers are destroyed on threads of their own: wait for them, so
            // that this test's ring is the only one.
            wait_blocking("no AIO ring left from earlier tests", || aio_rings() == 0);
            let rt = if flavour == "current" {
                current()
            } else {
                multi()
            };
            let file = direct.try_clone().unwrap();
            let dd = d.clone();
            // The driver handle outlives the runtime: dropping the last handle shuts the
            // driver down and a teardown thread drives it to the end, which (on two workers
            // kept busy) would reap every read before the tasks go.
            let driver = Driver::new(64).unwrap();
            let handle = driver.clone();
            let seen = rt.block_on(async move {
                driver.spawn_tokio().unwrap();
                let file = File::new(&driver, file);
                for i in 0..N {
                    let canary = Canary::new(LEN, 0xAA, pattern, i * LEN, &dd);
                    let read = file.read_at(canary, (i * LEN) as u64);
                    tokio::spawn(async move {
                        let (res, _buf) = read.await;
                        assert_eq!(res.unwrap(), LEN);
                    });
                }
                // Until every read has reached the kernel (a buffer whose request was never
                // submitted is freed with its future, untouched: that would not be a bug).
                let start = Instant::now();
                loop {
                    // Checked without sleeping: the reads take only milliseconds.
                    let s = driver.stats();
                    if s.queued == 0 && s.in_kernel + s.reaped as usize >= N {
                        break;
                    }
                    assert!(start.elapsed() < Duration::from_secs(10), "never submitted");
                    tokio::task::yield_now().await;
                }
                if flavour == "multi" {
                    // Both workers busy until the runtime goes: the driving task (a task on
                    // them) cannot reap what completes meanwhile, so the reads are still the
                    // driver's to account for when their tasks are dropped.
                    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    for _ in 0..2 {
                        let started = started.clone();
                        tokio::spawn(async move {
                            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(200));
                        });
                    }
                    while started.load(std::sync::atomic::Ordering::SeqCst) < 2 {
                        std::hint::spin_loop();
                    }
                }
                driver.stats().in_kernel
            });
            let t = Instant::now();
            drop(rt);
            let dropped_in = t.elapsed();
            drop(handle);
            wait_blocking("every buffer freed", || deaths(&d).len() == N);
            let all = deaths(&d);
            assert!(
                all.iter().all(|x| x.intact),
                "{flavour}: a buffer was freed before its read completed: {all:?}"
            );
            // Reads still in the kernel when the runtime went: their buffers wait for
            // io_destroy, on the teardown thread (so no executor thread waited for it).
            let late = all
                .iter()
                .filter(|x| x.thread == "linux-aio-destroy")
                .count();
            // Those freed by the teardown were freed after io_destroy (which unmaps the ring):
            // whatever the kernel's speed, never while the context could still write them.
            assert!(
                all.iter()
                    .filter(|x| x.thread == "linux-aio-destroy")
                    .all(|x| x.rings == 0),
                "{flavour}: the teardown freed a buffer before io_destroy: {all:?}"
            );
            println!(
                "{flavour}: runtime dropped in {dropped_in:?}; {seen} of {N} reads in the \
                 kernel when its tasks went, {late} buffers freed after io_destroy"
            );
            if late > 0 {
                proved = true;
                break;
            }
        }
        assert!(
            proved,
            "{flavour}: no read was ever in flight when the runtime was dropped"
        );
    }
    Passed
}

// ---- bad input

fn bad_input_is_an_error() -> Outcome {
    assert_eq!(
        Driver::new(0).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
    assert_eq!(
        Driver::builder()
            .slots(0)
            .build()
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EINVAL)
    );
    let huge = Driver::builder().capacity(8).slots(usize::MAX).build();
    assert_eq!(huge.unwrap_err().raw_os_error(), Some(libc::EINVAL));
    let too_many = Driver::new(u32::MAX).unwrap_err().raw_os_error();
    assert!(
        matches!(too_many, Some(libc::EINVAL | libc::EAGAIN)),
        "{too_many:?}"
    );
    let driver = Driver::new(8).unwrap();
    assert!(
        driver.drive_tokio().is_err(),
        "outside a runtime: an error, not a panic"
    );
    let scratch = Scratch::with_data("bad", 8192);
    current().block_on(async {
        driver.spawn_tokio().unwrap();
        let errno = |e: std::io::Error| e.raw_os_error().unwrap();
        let file = File::new(&driver, scratch.open());
        // Offsets beyond i64::MAX.
        let (res, _) = file.read_at(Vec::with_capacity(8), u64::MAX).await;
        assert_eq!(errno(res.unwrap_err()), libc::EINVAL);
        // Unknown RWF bit; flags on a sync.
        let (res, _) = file
            .read_at(Vec::with_capacity(8), 0)
            .rw_flags(RwFlags::from_bits_retain(1 << 30))
            .await;
        assert_eq!(errno(res.unwrap_err()), libc::EOPNOTSUPP);
        let res = file.sync_all().rw_flags(RwFlags::DSYNC).await;
        assert_eq!(errno(res.unwrap_err()), libc::EINVAL);
        // Too many iovecs.
        let (res, _) = file
            .readv_at((0..2000).map(|_| Vec::<u8>::with_capacity(1)).collect(), 0)
            .await;
        assert_eq!(errno(res.unwrap_err()), libc::EINVAL);
        // A read on a write-only descriptor, a write on a read-only one.
        let wo = std::fs::OpenOptions::new()
            .write(true)
            .open(&scratch.0)
            .unwrap();
        let (res, _) = File::new(&driver, wo)
            .read_at(Vec::with_capacity(8), 0)
            .await;
        assert_eq!(errno(res.unwrap_err()), libc::EBADF);
        let ro = std::fs::File::open(&scratch.0).unwrap();
        let (res, _) = File::new(&driver, ro).write_at(vec![1u8; 8], 0).await;
        assert_eq!(errno(res.unwrap_err()), libc::EBADF);
        // A directory (no read_iter: the kernel answers EINVAL).
        let dir = std::fs::File::open(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let (res, _) = File::new(&driver, dir)
            .read_at(Vec::with_capacity(8), 0)
            .await;
        assert_eq!(errno(res.unwrap_err()), libc::EINVAL);
        // Misaligned O_DIRECT: a length, an offset.
        if let Ok(direct) = scratch.open_direct() {
            let file = File::new(&driver, direct);
            let (res, _) = file.read_at(vec![0u8; 100].into_boxed_slice(), 0).await;
            let e = res.unwrap_err();
            assert_eq!(errno(e), libc::EINVAL, "misaligned length");
            let (res, _) = file.read_at(AlignedBuf::new(4096).unwrap(), 1).await;
            assert_eq!(errno(res.unwrap_err()), libc::EINVAL, "misaligned offset");
        }
        // The driver goes on working after every refusal.
        let (res, _) = file.read_at(Vec::with_capacity(8), 0).await;
        assert_eq!(res.unwrap(), 8);
        let s = driver.stats();
        assert_eq!((s.queued, s.in_kernel), (0, 0));
    });
    Passed
}

fn dio_alignment_from_statx() -> Outcome {
    let scratch = Scratch::with_data("dio", 4096);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    let a = dio_alignment(direct.as_fd()).unwrap();
    assert!(
        a.memory.is_power_of_two() && a.offset.is_power_of_two(),
        "{a:?}"
    );
    assert!(a.memory <= 4096 && a.offset <= 4096, "{a:?}");
    println!("O_DIRECT alignment here: {a:?}");
    if !a.from_kernel {
        return skipped("statx gives no STATX_DIOALIGN here (before Linux 6.1?): fallback used");
    }
    Passed
}

/// Buffered reads on ext4 go without an eventfd signal (the kernel performs them inside
/// io_submit). A descriptor switched to O_DIRECT behind the driver's back completes later,
/// unannounced: the driver must still reap it (and signal every request from then on).
fn unannounced_completion() -> Outcome {
    const LEN: usize = 1 << 20;
    let scratch = Scratch::with_data("quiet", 8 * LEN);
    if let Err(why) = scratch.open_direct() {
        return skipped(why);
    }
    current().block_on(async {
        let driver = Driver::new(16).unwrap();
        driver.spawn_tokio().unwrap();
        let std_file = scratch.open();
        let flags = rustix::fs::fcntl_getfl(&std_file).unwrap();
        let file = File::new(&driver, std_file);
        let (res, _) = file.read_at(Vec::with_capacity(4096), 0).await;
        assert_eq!(res.unwrap(), 4096);
        rustix::fs::fcntl_setfl(&file, flags | rustix::fs::OFlags::DIRECT).unwrap();
        for i in 0..8 {
            let read = file.read_at(AlignedBuf::new(LEN).unwrap(), (i * LEN) as u64);
            let (res, buf) = tokio::time::timeout(Duration::from_secs(10), read)
                .await
                .expect("an unannounced completion was never reaped");
            assert_eq!(res.unwrap(), LEN);
            assert!(buf
                .iter()
                .enumerate()
                .all(|(k, &b)| b == pattern(i * LEN + k)));
        }
    });
    Passed
}

/// `RWF_NOWAIT` keeps a buffered read from blocking the driving thread on a page-cache miss:
/// the kernel answers `EAGAIN` instead (the caller can then read it some other way).
fn nowait_read_of_an_evicted_page() -> Outcome {
    let scratch = Scratch::with_data("nowait", 1 << 20);
    current()
        .block_on(async {
            let driver = Driver::new(8).unwrap();
            driver.spawn_tokio().unwrap();
            let std_file = scratch.open();
            let dup = std_file.try_clone().unwrap();
            let file = File::new(&driver, std_file);
            // The data is on the device (with_data fsyncs): drop its clean pages from the cache.
            // DONTNEED is advice: under memory or I/O pressure from elsewhere the page can stay (or
            // come back by readahead), so try a few times, and only a page that never left is a
            // reason to give up (the read then succeeds, which is not what is being tested).
            let mut evicted = false;
            for _ in 0..5 {
                rustix::fs::fadvise(&dup, 0, None, rustix::fs::Advice::DontNeed).unwrap();
                let (res, _) = file
                    .read_at(Vec::with_capacity(4096), 512 << 10)
                    .rw_flags(RwFlags::NOWAIT)
                    .await;
                match res {
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                        evicted = true;
                        break;
                    }
                    Ok(n) => assert_eq!(n, 4096, "a NOWAIT read of a cached page"),
                    Err(e) => panic!("a NOWAIT read of an evicted page gave {e:?}"),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !evicted {
                return Err(
                    "the page cache kept the page through five POSIX_FADV_DONTNEED".to_string(),
                );
            }
            // Without the flag it reads (from the device, inside io_submit), and then NOWAIT
            // finds the page.
            let (res, _) = file.read_at(Vec::with_capacity(4096), 512 << 10).await;
            assert_eq!(res.unwrap(), 4096);
            let (res, buf) = file
                .read_at(Vec::with_capacity(4096), 512 << 10)
                .rw_flags(RwFlags::NOWAIT)
                .await;
            assert_eq!(res.unwrap(), 4096);
            assert_eq!(buf[0], pattern(512 << 10));
            Ok(())
        })
        .map_or_else(|why: String| skipped(why), |()| Passed)
}

// ---- fork

fn forked_child_gets_einval() -> Outcome {
    let driver = Driver::new(8).unwrap();
    let rt = current();
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let rd = File::new(&driver, rd);
    let _guard = rt.enter();
    driver.spawn_tokio().unwrap();
    // A poll in flight across the fork.
    let inflight = rt.spawn(rd.poll(PollFlags::IN));
    rt.block_on(until("in flight", || driver.stats().in_kernel == 1));
    // SAFETY: the child only runs the code below and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let rt = current();
            rt.block_on(async {
                driver.spawn_tokio().unwrap();
                let scratch = Scratch::with_data("fork-child", 64);
                let file = File::new(&driver, scratch.open());
                let (res, _) = tokio::time::timeout(
                    Duration::from_secs(5),
                    file.read_at(Vec::with_capacity(8), 0),
                )
                .await
                .expect("the child's request hung");
                assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EINVAL));
                let res = tokio::time::timeout(Duration::from_secs(5), rd.poll(PollFlags::IN))
                    .await
                    .expect("the child's poll hung");
                assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EINVAL));
            });
        }));
        // SAFETY: leaves the child without running the parent's atexit handlers.
        unsafe { libc::_exit(if code.is_ok() { 0 } else { 1 }) };
    }
    let mut status = 0;
    let start = Instant::now();
    loop {
        // SAFETY: waits for our own child, without blocking.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );
    // The parent's poll was not taken by the child: it completes here.
    rustix::io::write(&wr, b"x").unwrap();
    let ready = rt.block_on(inflight).unwrap().unwrap();
    assert!(ready.contains(PollFlags::IN));
    drop(wr);
    Passed
}

/// A forked child that drives its copy of a driver must not reset the eventfd it shares with
/// the parent: a parent whose completion signal a child consumed could wait for ever.
fn forked_child_leaves_eventfd() -> Outcome {
    let driver = Driver::new(8).unwrap();
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    rustix::io::write(&wr, b"x").unwrap();
    let rd = File::new(&driver, rd);
    // No driving task: queue a poll on a ready pipe by hand and turn once. The poll completes
    // inside io_submit, signalling the eventfd, which only a driving loop resets.
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut op = rd.poll(PollFlags::IN);
    assert!(Pin::new(&mut op).poll(&mut cx).is_pending());
    driver.turn(&waker);
    assert!(Pin::new(&mut op).poll(&mut cx).is_ready());
    // SAFETY: the child only runs the code below and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            current().block_on(async {
                // Registered now, first polled once the reactor has seen the eventfd readable:
                // the driving task's first look finds it ready (and must leave it so).
                let drive = driver.drive_tokio().unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                let task = tokio::spawn(drive);
                tokio::time::timeout(Duration::from_secs(5), task)
                    .await
                    .expect("the child's driving task ends (its driver refuses everything)")
                    .unwrap();
            });
        }));
        // SAFETY: leaves the child without running the parent's atexit handlers.
        unsafe { libc::_exit(if ok.is_ok() { 0 } else { 1 }) };
    }
    let mut status = 0;
    let start = Instant::now();
    loop {
        // SAFETY: waits for our own child, without blocking.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );
    let mut count = [0u8; 8];
    let read = rustix::io::read(driver.eventfd(), &mut count);
    assert_eq!(
        read,
        Ok(8),
        "the child consumed the parent's eventfd signal"
    );
    assert!(u64::from_ne_bytes(count) >= 1);
    Passed
}
