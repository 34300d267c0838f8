//! Third adversarial review of linux-aio-async (after the fixes of tests/attack.rs and
//! tests/attack2.rs).
//!
//! Each test asserts what the crate claims; a test that FAILS here demonstrates a defect (the
//! message says what was observed). Every wait has a deadline. Tests that may abort the process
//! run in a child process (this binary again, with `ATK3_CHILD` set).
//!
//! `cargo test -p linux-aio-async --features tokio --test attack3 [-- FILTER]`

#[path = "../../tests/support/runner.rs"]
mod runner;

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::*};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use linux_aio_async::{AlignedBuf, Driver, File, IoBuf, IoBufMut, PollFlags};
use runner::{skipped, Outcome, Passed};

// ---- a counting allocator: live bytes (whole process) and allocations while COUNTING.

struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);
const BIG: usize = 1 << 20;

fn adjust(l: Layout) -> Layout {
    if l.size() >= BIG && l.align() < 4096 {
        Layout::from_size_align(l.size(), 4096).unwrap()
    } else {
        l
    }
}

fn note(l: Layout) {
    LIVE.fetch_add(l.size() as i64, Relaxed);
    if COUNTING.load(Relaxed) {
        ALLOCS.fetch_add(1, Relaxed);
    }
}

// SAFETY: forwards to System with a layout that depends on the size alone (same for alloc and
// dealloc); realloc is GlobalAlloc's default (alloc + copy + dealloc through these).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l);
        // SAFETY: forwarded.
        unsafe { System.alloc(adjust(l)) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l);
        // SAFETY: forwarded.
        unsafe { System.alloc_zeroed(adjust(l)) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Relaxed);
        // SAFETY: forwarded, with the layout the block was allocated with.
        unsafe { System.dealloc(p, adjust(l)) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    if let Ok(which) = std::env::var("ATK3_CHILD") {
        let code = match which.as_str() {
            "double_panic" => child_double_panic(false),
            "double_panic_control" => child_double_panic(true),
            "nested_fork" => child_nested_fork(),
            "churn_probe" => churn_probe(),
            other => {
                eprintln!("unknown child {other}");
                99
            }
        };
        std::process::exit(code);
    }
    let tests: &[runner::Test] = &[
        // Defects (these fail).
        (
            "teardown_final_free_two_panicking_drops_abort",
            teardown_double_panic,
        ),
        (
            "panicking_turn_waker_starves_other_driving_loops",
            flush_panic_lost_wakeup,
        ),
        (
            "panicking_waker_at_last_drop_leaks_the_context",
            close_panic_leaks_context,
        ),
        ("zero_allocations_with_two_driving_loops", two_loop_allocs),
        ("driver_churn_exhausts_aio_max_nr", churn_eagain),
        // What held up.
        ("spawn_tokio_abort_10k_flat", abort_10k),
        ("thousand_drivers_dropped_at_once", thousand_drivers),
        ("nested_fork_and_posix_spawn", forks),
        ("readv_panic_after_iovecs_registered", readv_guard),
        ("three_loops_one_stalled_runtime", three_loops_one_stalled),
    ];
    runner::run("attack3", tests)
}

// ---- helpers

struct Scratch(PathBuf);

impl Scratch {
    fn filled(tag: &str, len: usize, byte: u8) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&dir).unwrap();
        let s = Scratch(dir.join(format!("attack3-{}-{tag}", std::process::id())));
        std::fs::write(&s.0, vec![byte; len]).unwrap();
        s.open().sync_all().unwrap();
        s
    }
    fn open(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.0)
            .unwrap()
    }
    fn open_direct(&self) -> Result<std::fs::File, String> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&self.0)
            .map_err(|e| format!("no O_DIRECT here: {e}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn current() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn noop_cx_poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    Pin::new(f).poll(&mut cx)
}

fn poll_for<F: Future + Unpin>(f: &mut F, limit: Duration) -> Option<F::Output> {
    let start = Instant::now();
    loop {
        if let Poll::Ready(out) = noop_cx_poll(f) {
            return Some(out);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

fn aio_rings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().filter(|l| l.contains("/[aio]")).count())
        .unwrap_or(0)
}

fn thread_count(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .unwrap_or_default()
                .trim()
                .starts_with(prefix)
        })
        .count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let old = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !msg.contains("deliberate") {
                old(info);
            }
        }));
    });
}

/// A waker whose `wake`/`wake_by_ref` panic (null data) or count (non-null data).
static WOKEN: AtomicI64 = AtomicI64::new(0);
fn w_clone(p: *const ()) -> RawWaker {
    RawWaker::new(p, &VTABLE)
}
fn w_wake(p: *const ()) {
    if p.is_null() {
        panic!("deliberate panic in Waker::wake");
    }
    WOKEN.fetch_add(1, SeqCst);
}
fn w_drop(_: *const ()) {}
static VTABLE: RawWakerVTable = RawWakerVTable::new(w_clone, w_wake, w_wake, w_drop);
fn bad_waker() -> Waker {
    // SAFETY: the vtable's functions only look at whether the pointer is null.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

fn run_child(which: &str, limit: Duration) -> (Option<i32>, Option<i32>, String) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("ATK3_CHILD", which)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(_st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return (out.status.code(), out.status.signal(), text);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return (None, None, String::from_utf8_lossy(&out.stderr).into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ======================================================================== defects

/// An O_DIRECT buffer whose Drop always panics (as a pooled buffer does whose `Drop` returns it
/// to a `Mutex` pool with `lock().unwrap()`, once that pool is poisoned).
struct AlwaysPanics(AlignedBuf);

impl Drop for AlwaysPanics {
    fn drop(&mut self) {
        panic!("deliberate panic in a buffer's Drop");
    }
}

// SAFETY: forwards to the AlignedBuf.
unsafe impl IoBuf for AlwaysPanics {
    fn stable_ptr(&self) -> *const u8 {
        self.0.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.0.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.0.bytes_total()
    }
}

// SAFETY: as above.
unsafe impl IoBufMut for AlwaysPanics {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.0.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded.
        unsafe { self.0.set_init(pos) }
    }
}

/// The child: 8 O_DIRECT reads submitted by one manual turn, their futures dropped in flight,
/// then the driver dropped: the teardown (no driving loop left) reaps them into `kept` and
/// frees them all at once (`drop(std::mem::take(&mut self.kept))`, driver.rs Drain::step),
/// not one at a time under catch_unwind as the driving turn does. Exit 0: survived; 3: the
/// reads completed before the futures were dropped (nothing to show).
fn child_double_panic(turn_first: bool) -> i32 {
    quiet_deliberate_panics();
    const LEN: usize = 1 << 20;
    const N: usize = 8;
    let scratch = Scratch::filled("dblpanic", N * LEN, 0x33);
    let Ok(direct) = scratch.open_direct() else {
        return 4;
    };
    let before = aio_rings();
    let driver = Driver::new(16).unwrap();
    let file = File::new(&driver, direct);
    let mut ops: Vec<_> = (0..N)
        .map(|i| {
            file.read_at(
                AlwaysPanics(AlignedBuf::new(LEN).unwrap()),
                (i * LEN) as u64,
            )
        })
        .collect();
    for op in &mut ops {
        let _ = noop_cx_poll(op);
    }
    driver.turn(&futures::task::noop_waker());
    let in_kernel = driver.stats().in_kernel;
    eprintln!("child: {in_kernel} reads in the kernel when their futures are dropped");
    for op in ops {
        // A future whose request already completed drops its buffer here: caught.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(op)));
    }
    if turn_first {
        // Control: the driving turn reaps them (each Drop under its own catch_unwind).
        let noop = futures::task::noop_waker();
        wait_for(Duration::from_secs(5), || {
            driver.turn(&noop);
            driver.stats().in_kernel == 0
        });
    }
    drop(file);
    drop(driver);
    let gone = wait_for(Duration::from_secs(5), || aio_rings() < before + 1);
    std::thread::sleep(Duration::from_millis(200));
    eprintln!("child: context destroyed: {gone}; still alive");
    if in_kernel < 2 {
        3
    } else {
        0
    }
}

/// Two (or more) buffers abandoned in flight whose `Drop` panics: the driving turn drops each
/// under its own catch_unwind (documented: "a panic ... in the Drop of a buffer abandoned in
/// flight ... is caught"), but the teardown frees what it kept as one Vec: the first Drop
/// panics, the Vec's drop glue drops the next while unwinding, it panics too, and the process
/// aborts ("panic in a destructor during cleanup"). Expected: the child survives (exit 0).
fn teardown_double_panic() -> Outcome {
    let (ccode, csignal, _) = run_child("double_panic_control", Duration::from_secs(20));
    println!("  control (the driving turn frees them): exit code {ccode:?}, signal {csignal:?}");
    let (code, signal, text) = run_child("double_panic", Duration::from_secs(20));
    println!("  child: exit code {code:?}, signal {signal:?}");
    for l in text.lines().filter(|l| !l.trim().is_empty()).take(6) {
        println!("  | {l}");
    }
    match code {
        Some(3) => return skipped("the reads completed inside the turn (fast device)"),
        Some(4) => return skipped("no O_DIRECT here"),
        _ => {}
    }
    assert!(
        code == Some(0),
        "the process died in the teardown's final free (code {code:?}, signal {signal:?})"
    );
    Passed
}

/// A waker given to `Driver::turn` (loop id 0) whose `wake` panics sits first in the table's
/// list of driving-loop wakers. The next request queued takes the list (`take_flush`) and
/// `Flush::wake` (table.rs) wakes it first, outside any catch_unwind: the panic leaves the
/// poll, and the other loops' wakers (the `linux-aio-driver` thread's) are dropped unwoken.
/// The request stays queued, and since the queue is no longer empty no later request wakes
/// anybody either: a live, healthy driving thread submits nothing. Expected: the driving
/// thread submits the request (docs: a waker's panic is caught "so the driving thread or task
/// goes on driving every other request"; several loops "never leave a request unsubmitted
/// while one of them lives").
fn flush_panic_lost_wakeup() -> Outcome {
    quiet_deliberate_panics();
    let scratch = Scratch::filled("flushpanic", 4096, 9);
    let driver = Driver::new(8).unwrap();
    let file = File::new(&driver, scratch.open());
    driver.turn(&bad_waker()); // registered first (loop 0)
    let thread = driver.spawn_thread().unwrap();
    std::thread::sleep(Duration::from_millis(50)); // the thread's first turn registers it
    let mut r = file.read_at(Vec::with_capacity(4096), 0);
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| noop_cx_poll(&mut r)));
    let panicked = first.is_err();
    let done = poll_for(&mut r, Duration::from_secs(2));
    let mut r2 = file.read_at(Vec::with_capacity(4096), 0);
    let done2 = poll_for(&mut r2, Duration::from_secs(1));
    let s = driver.stats();
    println!(
        "  first poll panicked: {panicked}; read completed: {}; a second read completed: {}; \
         queued {}, submit calls {}, driving thread alive: {}",
        done.is_some(),
        done2.is_some(),
        s.queued,
        s.submit_calls,
        !thread.is_finished()
    );
    // Release: a turn of our own submits the queue.
    driver.turn(&futures::task::noop_waker());
    // (Only the futures still pending: a completed one panics if polled again.)
    if done.is_none() {
        let _ = poll_for(&mut r, Duration::from_secs(1));
    }
    if done2.is_none() {
        let _ = poll_for(&mut r2, Duration::from_secs(1));
    }
    assert!(
        done.is_some() && done2.is_some(),
        "the driving thread was never woken: requests stayed queued (queued {})",
        s.queued
    );
    Passed
}

/// The last handle's drop runs `close` (driver.rs), which wakes every driving loop's waker
/// outside any catch_unwind; a panicking one (the `Driver::turn` caller's) unwinds out of
/// `Owner::drop` before `teardown_in_steps` is reached: no teardown job. A future leaked with
/// `mem::forget` then keeps the kernel context for the life of the process. Expected (README:
/// "a future leaked with mem::forget leaks its buffer, never the kernel context"): the context
/// is destroyed. The control (a waker that does not panic) destroys it.
fn close_panic_leaks_context() -> Outcome {
    quiet_deliberate_panics();
    let run = |waker: &Waker| -> (bool, bool) {
        let (rx, tx) = rustix::pipe::pipe().unwrap();
        let before = aio_rings();
        let driver = Driver::new(8).unwrap();
        let file = File::new(&driver, rx);
        let mut p = file.poll(PollFlags::IN);
        let _ = noop_cx_poll(&mut p);
        driver.turn(waker); // submits the poll, registers `waker`
        std::mem::forget(p);
        drop(file);
        let panicked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(driver))).is_err();
        let gone = wait_for(Duration::from_secs(3), || aio_rings() <= before);
        drop(tx);
        (panicked, gone)
    };
    let (_, control) = run(&futures::task::noop_waker());
    let (panicked, gone) = run(&bad_waker());
    println!(
        "  control: context destroyed {control}; panicking waker: drop(driver) panicked \
         {panicked}, context destroyed within 3 s: {gone}"
    );
    assert!(control, "control failed");
    assert!(
        gone,
        "a panicking driving-loop waker at the last drop left the kernel context alive"
    );
    Passed
}

/// attack.rs zero_allocations, with two driving loops (a tokio task and a driver thread, both
/// documented ways to drive the same driver at once): every batch's first request takes both
/// loops' wakers into `Flush` (table.rs take_flush), whose `rest: Vec<Waker>` allocates for the
/// second. Expected: zero allocations per request on the hot path (issue 13; attack.rs allows
/// at most 4 for 2000 rounds).
fn two_loop_allocs() -> Outcome {
    const N: u64 = 2000;
    let scratch = Scratch::filled("alloc2", 1 << 16, 5);
    let rt = current();
    let driver = rt.block_on(async { Driver::new(64).unwrap() });
    let _g = rt.enter();
    driver.spawn_tokio().unwrap();
    // ATK3_ONE_LOOP=1: the control (the tokio task alone).
    let _t = std::env::var_os("ATK3_ONE_LOOP")
        .is_none()
        .then(|| driver.spawn_thread().unwrap());
    let file = File::new(&driver, scratch.open());
    let mut buf = Some(Vec::with_capacity(512));
    let mut round = |n: u64| {
        rt.block_on(async {
            for _ in 0..n {
                let mut b = buf.take().unwrap();
                b.clear();
                let (res, b) = file.read_at(b, 0).await;
                res.unwrap();
                buf = Some(b);
            }
        })
    };
    round(200);
    ALLOCS.store(0, SeqCst);
    COUNTING.store(true, SeqCst);
    drop(std::hint::black_box(Box::new(7u64)));
    let sanity = ALLOCS.load(SeqCst);
    round(N);
    COUNTING.store(false, SeqCst);
    let n = ALLOCS.load(SeqCst);
    println!("  two driving loops: {n} allocations for {N} reads (counter sanity: {sanity})");
    assert!(
        n <= 4,
        "{n} allocations for {N} reads with two driving loops"
    );
    Passed
}

/// A program that makes and drops small drivers one after another (never more than one alive)
/// outruns the teardown pool (4 threads, ~35 ms per io_destroy): contexts pile up in the
/// kernel's `aio-nr` until `Driver::new` fails with EAGAIN. Expected: Driver::new succeeds
/// while the process holds a single driver (EAGAIN is documented as "beyond fs.aio-max-nr").
fn churn_eagain() -> Outcome {
    churn(false)
}

fn churn(used: bool) -> Outcome {
    // Churning drivers until io_setup says EAGAIN fills the system-wide fs.aio-max-nr: every
    // other process on the machine (a second copy of this suite, say) would fail its own
    // io_setup meanwhile. Only on request.
    if std::env::var_os("LINUX_AIO_EXHAUST_SYSTEM").is_none() {
        return skipped(
            "fills the system-wide fs.aio-max-nr, which other processes share: set \
             LINUX_AIO_EXHAUST_SYSTEM=1 on a machine of your own",
        );
    }
    let scratch = Scratch::filled("churn", 4096, 1);
    let max: u64 = std::fs::read_to_string("/proc/sys/fs/aio-max-nr")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let rings0 = aio_rings();
    let aio_nr = || -> u64 {
        std::fs::read_to_string("/proc/sys/fs/aio-nr")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    // What this test needs of the system-wide counter: one driver (the kernel reserves about
    // twice the capacity, and at least 4 per CPU) and some room for its pending teardowns.
    let need = 16 * 2 * u64::from(linux_aio_async::DEFAULT_CAPACITY);
    let nr0 = aio_nr();
    if max < nr0 + need {
        return skipped(format!(
            "fs.aio-nr is {nr0} of aio-max-nr {max} (held by other processes):              less room than the {need} this test needs"
        ));
    }
    let start = Instant::now();
    let mut failed_at = None;
    let mut peak_nr = 0u64;
    for k in 0..2_000 {
        match Driver::new(linux_aio_async::DEFAULT_CAPACITY) {
            Ok(d) if used => {
                let f = File::new(&d, scratch.open());
                let mut r = f.read_at(Vec::with_capacity(512), 0);
                let _ = noop_cx_poll(&mut r);
                d.turn(&futures::task::noop_waker());
                let _ = noop_cx_poll(&mut r);
                drop((r, f, d));
            }
            Ok(d) => drop(d),
            Err(e) => {
                failed_at = Some((k, e));
                break;
            }
        }
        if k % 256 == 0 {
            let nr: u64 = std::fs::read_to_string("/proc/sys/fs/aio-nr")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            peak_nr = peak_nr.max(nr);
        }
        if start.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    let elapsed = start.elapsed();
    let cleared = wait_for(Duration::from_secs(60), || aio_rings() <= rings0);
    println!(
        "  used {used}: aio-max-nr {max}; peak aio-nr seen {peak_nr}; first failure: {:?} after {elapsed:?}; \
         this process's rings back to the start later: {cleared}",
        failed_at.as_ref().map(|(k, e)| format!("Driver::new #{k}: {e}"))
    );
    if let Some((k, e)) = &failed_at {
        // With none of this process's contexts pending (every ring of ours gone), the room is
        // held by other processes: not this crate's churn.
        if aio_rings() <= rings0 && aio_nr() + need > max {
            return skipped(format!(
                "Driver::new #{k}: {e}, with no context of this process left, fs.aio-nr {} of                  aio-max-nr {max}: the counter is held by other processes",
                aio_nr()
            ));
        }
    }
    assert!(
        failed_at.is_none(),
        "Driver::new failed with one driver alive at a time: {:?}",
        failed_at.map(|(k, e)| format!("#{k}: {e}"))
    );
    Passed
}

// ======================================================================== what held up

/// spawn_tokio + abort, 10,000 times on one driver: each aborted task's Loop leaves the
/// table's waker list; live bytes and descriptors stay flat, and the driver still works.
fn abort_10k() -> Outcome {
    let scratch = Scratch::filled("abort", 4096, 3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let driver = rt.block_on(async { Driver::new(16).unwrap() });
    let file = File::new(&driver, scratch.open());
    let once = |n: usize| {
        rt.block_on(async {
            for k in 0..n {
                let h = driver.spawn_tokio().unwrap();
                if k % 2 == 0 {
                    tokio::task::yield_now().await; // let some of them turn (register)
                }
                h.abort();
                let _ = h.await;
            }
        })
    };
    once(500);
    let (live0, fds0) = (LIVE.load(SeqCst), fds());
    once(10_000);
    std::thread::sleep(Duration::from_millis(50));
    let (live1, fds1) = (LIVE.load(SeqCst), fds());
    // The block hands the task's handle back (kept, not awaited).
    #[allow(clippy::async_yields_async)]
    let _h = rt.block_on(async { driver.spawn_tokio().unwrap() });
    let ok = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(2),
            file.read_at(Vec::with_capacity(4096), 0),
        )
        .await
    });
    println!(
        "  live bytes {live0} -> {live1} ({:+}), fds {fds0} -> {fds1}; read after: {}",
        live1 - live0,
        matches!(ok, Ok((Ok(4096), _)))
    );
    assert!(
        live1 - live0 < 64 * 1024,
        "live bytes grew {}",
        live1 - live0
    );
    assert!(fds1 <= fds0 + 2);
    assert!(matches!(ok, Ok((Ok(4096), _))));
    Passed
}

/// 1000 drivers (each used once) dropped at once: all destroyed, at most 4 teardown threads.
fn thousand_drivers() -> Outcome {
    let scratch = Scratch::filled("thousand", 4096, 4);
    let before = aio_rings();
    let drivers: Vec<_> = (0..1000).map(|_| Driver::new(1).unwrap()).collect();
    let noop = futures::task::noop_waker();
    for d in &drivers[..100] {
        let f = File::new(d, scratch.open());
        let mut r = f.read_at(Vec::with_capacity(4096), 0);
        let _ = noop_cx_poll(&mut r);
        d.turn(&noop);
        let _ = noop_cx_poll(&mut r);
    }
    let start = Instant::now();
    drop(drivers);
    let dropped_in = start.elapsed();
    let mut peak = 0;
    let done = wait_for(Duration::from_secs(60), || {
        peak = peak.max(thread_count("linux-aio-destr"));
        aio_rings() <= before
    });
    println!(
        "  drop of 1000 drivers took {dropped_in:?}; all destroyed: {done} after {:?}; peak \
         teardown threads {peak}",
        start.elapsed()
    );
    assert!(done && peak <= 4);
    assert!(dropped_in < Duration::from_secs(1));
    Passed
}

/// Child of `forks`: a busy teardown pool, then fork; the child busies its own pool and forks
/// again; the grandchild's driver must work and be torn down.
fn child_nested_fork() -> i32 {
    let scratch = Scratch::filled("nested", 4096, 6);
    let use_and_drop = |tag: &str| -> i32 {
        let d = Driver::new(4).unwrap();
        let _t = d.spawn_thread().unwrap();
        let f = File::new(&d, scratch.open());
        let mut r = f.read_at(Vec::with_capacity(4096), 0);
        let ok = matches!(
            poll_for(&mut r, Duration::from_secs(2)),
            Some((Ok(4096), _))
        );
        drop(r);
        drop(f);
        let rings = aio_rings();
        drop(d);
        if !ok {
            eprintln!("{tag}: read failed");
            return 2;
        }
        if !wait_for(Duration::from_secs(5), || aio_rings() < rings) {
            eprintln!("{tag}: driver never torn down");
            return 3;
        }
        0
    };
    let burst = |n| drop((0..n).map(|_| Driver::new(1).unwrap()).collect::<Vec<_>>());
    burst(40);
    // SAFETY: the child uses this crate and the allocator only (this process is ours, its
    // other threads are the teardown pool's), then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        burst(40);
        // SAFETY: as above.
        let pid2 = unsafe { libc::fork() };
        if pid2 == 0 {
            let c = use_and_drop("grandchild");
            // SAFETY: leaves at once.
            unsafe { libc::_exit(c) };
        }
        let c = use_and_drop("child");
        let mut st = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(pid2, &mut st, 0) };
        let g = if libc::WIFEXITED(st) {
            libc::WEXITSTATUS(st)
        } else {
            50
        };
        // SAFETY: leaves at once.
        unsafe { libc::_exit(if c != 0 { c } else { g * 10 }) };
    }
    let c = use_and_drop("parent");
    let mut st = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    let k = if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else {
        77
    };
    if c != 0 {
        c
    } else {
        k
    }
}

/// Nested fork (parent, child, grandchild, each with a busy pool at the fork) and
/// posix_spawn (std's Command) while teardowns run: every level's drivers torn down.
fn forks() -> Outcome {
    let (code, signal, text) = run_child("nested_fork", Duration::from_secs(30));
    println!(
        "  nested fork child: code {code:?} signal {signal:?} {}",
        text.trim()
    );
    assert_eq!(code, Some(0));
    // posix_spawn with teardowns in progress and a driver in use.
    let before = aio_rings();
    let scratch = Scratch::filled("spawn", 4096, 8);
    let d = Driver::new(4).unwrap();
    let _t = d.spawn_thread().unwrap();
    let f = File::new(&d, scratch.open());
    drop((0..40).map(|_| Driver::new(1).unwrap()).collect::<Vec<_>>());
    for _ in 0..20 {
        assert!(std::process::Command::new("true")
            .status()
            .unwrap()
            .success());
    }
    let mut r = f.read_at(Vec::with_capacity(4096), 0);
    let ok = matches!(
        poll_for(&mut r, Duration::from_secs(2)),
        Some((Ok(4096), _))
    );
    drop((r, f, d));
    let gone = wait_for(Duration::from_secs(10), || aio_rings() <= before);
    println!("  posix_spawn x20 during teardowns: read ok {ok}, all destroyed {gone}");
    assert!(ok && gone);
    Passed
}

/// A vectored read whose second buffer panics in `stable_mut_ptr`, after the first iovec was
/// written into the slot's array: the slot goes back (with the partial iovec array), and the
/// next vectored request on that slot reads the right bytes into the right buffers.
fn readv_guard() -> Outcome {
    quiet_deliberate_panics();
    struct Bad(Vec<u8>, bool);
    // SAFETY: forwards to the Vec (when it does not panic).
    unsafe impl IoBuf for Bad {
        fn stable_ptr(&self) -> *const u8 {
            self.0.stable_ptr()
        }
        fn bytes_init(&self) -> usize {
            self.0.bytes_init()
        }
        fn bytes_total(&self) -> usize {
            self.0.bytes_total()
        }
    }
    // SAFETY: as above.
    unsafe impl IoBufMut for Bad {
        fn stable_mut_ptr(&mut self) -> *mut u8 {
            if self.1 {
                panic!("deliberate panic in stable_mut_ptr");
            }
            self.0.stable_mut_ptr()
        }
        unsafe fn set_init(&mut self, pos: usize) {
            // SAFETY: forwarded.
            unsafe { self.0.set_init(pos) }
        }
    }
    let scratch = Scratch::filled("readv", 8192, 0x5a);
    let driver = Driver::builder().capacity(4).slots(1).build().unwrap();
    let _t = driver.spawn_thread().unwrap();
    let file = File::new(&driver, scratch.open());
    for _ in 0..50 {
        let mut op = file.readv_at(
            vec![
                Bad(Vec::with_capacity(1000), false),
                Bad(Vec::with_capacity(1000), true),
                Bad(Vec::with_capacity(1000), false),
            ],
            0,
        );
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| noop_cx_poll(&mut op)));
        assert!(r.is_err());
        drop(op); // frees the buffers the partial iovec array pointed at
    }
    let mut good = file.readv_at(vec![Vec::with_capacity(100), Vec::with_capacity(300)], 10);
    let out = poll_for(&mut good, Duration::from_secs(2));
    let Some((Ok(n), bufs)) = out else {
        panic!("the vectored read after the panics did not complete");
    };
    println!("  after 50 panics in prepare (1 slot): readv read {n} bytes");
    assert_eq!(n, 400);
    assert!(bufs[0].len() == 100 && bufs[1].len() == 300);
    assert!(bufs.iter().all(|b| b.iter().all(|&x| x == 0x5a)));
    Passed
}

/// Three driving loops: a tokio task on a current-thread runtime whose thread is stalled
/// (blocked in a sleep, never polling), a driver thread, and a tokio task on a multi-thread
/// runtime. Requests from the multi-thread runtime complete while the stalled one sleeps.
fn three_loops_one_stalled() -> Outcome {
    let scratch = Scratch::filled("three", 4096, 2);
    let driver = Driver::new(32).unwrap();
    let (stall_tx, stall_rx) = std::sync::mpsc::channel::<()>();
    let d2 = driver.clone();
    let stalled = std::thread::spawn(move || {
        let rt = current();
        rt.block_on(async {
            d2.spawn_tokio().unwrap();
            tokio::task::yield_now().await; // the task registers its waker
            tokio::task::yield_now().await;
            // Stall the runtime: block its only thread.
            let _ = stall_rx.recv_timeout(Duration::from_secs(10));
        });
    });
    std::thread::sleep(Duration::from_millis(50));
    let _t = driver.spawn_thread().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let file = File::new(&driver, scratch.open());
    let res = rt.block_on(async {
        driver.spawn_tokio().unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            let mut tasks = Vec::new();
            for _ in 0..64 {
                let f = File::new(&driver, scratch.open());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..50 {
                        let (r, _) = f.read_at(Vec::with_capacity(4096), 0).await;
                        r.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            file.read_at(Vec::with_capacity(4096), 0).await.0.unwrap()
        })
        .await
    });
    let _ = stall_tx.send(());
    stalled.join().unwrap();
    println!(
        "  64 tasks x 50 reads with one stalled loop: {:?}",
        res.is_ok()
    );
    assert!(res.is_ok());
    if res.is_err() {
        return skipped("unreachable");
    }
    Passed
}

/// Diagnostic child: 5000 unused drivers made and dropped one at a time, then the process's
/// rings, descriptors, aio-nr and teardown threads once a second.
fn churn_probe() -> i32 {
    let (r0, f0) = (aio_rings(), fds());
    let t = Instant::now();
    for _ in 0..5000 {
        drop(Driver::new(1).unwrap());
    }
    eprintln!("made 5000 in {:?}", t.elapsed());
    for s in 0..20 {
        let nr = std::fs::read_to_string("/proc/sys/fs/aio-nr").unwrap_or_default();
        eprintln!(
            "t={s}s rings {} (start {r0}) fds {} (start {f0}) aio-nr {} threads {}",
            aio_rings(),
            fds(),
            nr.trim(),
            thread_count("linux-aio-destr")
        );
        if aio_rings() <= r0 && fds() <= f0 {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    0
}
