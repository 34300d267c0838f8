//! Second adversarial review of linux-aio-async (after the fixes of tests/attack.rs).
//!
//! Each test asserts what the crate claims; a test that FAILS here demonstrates a defect (the
//! message says what was observed). Nothing may hang the run: every wait has a deadline, and
//! threads the crate leaves blocked are released before the test returns.
//!
//! `cargo test -p linux-aio-async --features tokio --test attack2 [-- FILTER]`

#[path = "../../tests/support/runner.rs"]
mod runner;

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use linux_aio_async::{AlignedBuf, Driver, File, IoBuf, IoBufMut, PollFlags};
use runner::{skipped, Outcome, Passed};

// ---- a counting allocator (live bytes, whole process) that page-aligns large blocks.

struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);
const BIG: usize = 1 << 20;

fn adjust(l: Layout) -> Layout {
    if l.size() >= BIG && l.align() < 4096 {
        Layout::from_size_align(l.size(), 4096).unwrap()
    } else {
        l
    }
}

// SAFETY: forwards to System with a layout that depends on the size alone (same for alloc and
// dealloc); realloc is GlobalAlloc's default (alloc + copy + dealloc through these).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(adjust(l)) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Relaxed);
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
    let tests: &[runner::Test] = &[
        // Defects (these fail).
        (
            "iobuf_panic_in_prepare_leaks_the_slot",
            iobuf_panic_leaks_slot,
        ),
        (
            "buffer_drop_panic_stops_the_driving_thread",
            buffer_drop_panic_stops_driver,
        ),
        ("second_runtime_driving_task_is_woken", two_runtimes_flush),
        (
            "nonblocking_check_then_cleared_blocks_driver",
            eopnotsupp_toctou,
        ),
        (
            "stuck_drivers_do_not_stop_other_teardowns",
            teardown_pool_starved,
        ),
        (
            "waker_panic_stops_the_driving_thread",
            waker_panic_stops_driver,
        ),
        ("forked_child_driver_is_torn_down", fork_child_teardown),
        // What held up.
        (
            "fair_slot_handoff_when_granted_waiter_drops",
            fairness_granted_drop,
        ),
        ("live_bytes_flat_over_1e5_ops", memory_flat),
        (
            "future_moved_between_runtimes_and_threads",
            moved_between_runtimes,
        ),
        ("fork_with_multi_thread_runtime", fork_multi_thread),
        (
            "direct_reads_dropped_with_driver_canary",
            direct_drop_everything,
        ),
    ];
    runner::run("attack2", tests)
}

// ---- helpers

struct Scratch(PathBuf);

impl Scratch {
    fn filled(tag: &str, len: usize, byte: u8) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&dir).unwrap();
        let s = Scratch(dir.join(format!("attack2-{}-{tag}", std::process::id())));
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

fn multi(n: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .enable_all()
        .build()
        .unwrap()
}

fn noop_cx_poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    Pin::new(f).poll(&mut cx)
}

/// Polls `f` (noop waker) until Ready or `limit`: Some(output) if it finished.
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

fn set_nonblock(fd: impl AsFd, on: bool) {
    use rustix::fs::OFlags;
    let mut fl = rustix::fs::fcntl_getfl(&fd).unwrap();
    fl.set(OFlags::NONBLOCK, on);
    rustix::fs::fcntl_setfl(&fd, fl).unwrap();
}

/// Thread names and kernel wait channels of this process's threads whose name starts with
/// `prefix`.
fn threads(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let p = t.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.trim().starts_with(prefix) {
            let wchan = std::fs::read_to_string(p.join("wchan")).unwrap_or_default();
            out.push(format!("{}:{}", comm.trim(), wchan));
        }
    }
    out
}

/// A buffer whose `IoBuf` methods panic, one chosen method at a time.
struct Bomb {
    v: Vec<u8>,
    at: &'static str,
}

impl Bomb {
    fn check(&self, here: &str) {
        if self.at == here {
            panic!("deliberate panic in {here}");
        }
    }
}

// SAFETY: forwards to the Vec (when it does not panic).
unsafe impl IoBuf for Bomb {
    fn stable_ptr(&self) -> *const u8 {
        self.check("stable_ptr");
        self.v.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.check("bytes_init");
        self.v.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.check("bytes_total");
        self.v.bytes_total()
    }
}

// SAFETY: as above.
unsafe impl IoBufMut for Bomb {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.check("stable_mut_ptr");
        self.v.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        self.check("set_init");
        // SAFETY: forwarded.
        unsafe { self.v.set_init(pos) }
    }
}

/// An O_DIRECT buffer whose Drop panics.
struct DropBomb(AlignedBuf);

impl Drop for DropBomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("deliberate panic in a buffer's Drop");
        }
    }
}

// SAFETY: forwards to the AlignedBuf.
unsafe impl IoBuf for DropBomb {
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
unsafe impl IoBufMut for DropBomb {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.0.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded.
        unsafe { self.0.set_init(pos) }
    }
}

/// Silences the default panic message for deliberate panics (keeps others).
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

// ======================================================================== defects

/// A panic in a buffer's `IoBuf` method during the first poll (`prepare`, which runs outside
/// the lock after the slot was taken off the free list) unwinds out of `Op::poll` with the slot
/// neither free nor queued, and `Op::drop` does not know it (its `slot` is still None): the
/// slot is lost for the driver's lifetime. After `slots` such panics every later request waits
/// for a slot forever. Expected: a panicking buffer fails its own request only.
fn iobuf_panic_leaks_slot() -> Outcome {
    quiet_deliberate_panics();
    let scratch = Scratch::filled("bomb", 4096, 7);
    let mut lines = Vec::new();
    let mut leaked_any = false;
    for (op, at) in [
        ("read", "stable_mut_ptr"),
        ("read", "bytes_total"),
        ("write", "stable_ptr"),
        ("write", "bytes_init"),
        ("readv", "stable_mut_ptr"),
        ("writev", "bytes_init"),
    ] {
        const SLOTS: usize = 2;
        let driver = Driver::builder().capacity(4).slots(SLOTS).build().unwrap();
        let _t = driver.spawn_thread().unwrap();
        let file = File::new(&driver, scratch.open());
        for _ in 0..SLOTS {
            let bomb = || Bomb {
                v: vec![1u8; 512],
                at,
            };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match op {
                "read" => drop(noop_cx_poll(&mut file.read_at(bomb(), 0))),
                "write" => drop(noop_cx_poll(&mut file.write_at(bomb(), 0))),
                "readv" => drop(noop_cx_poll(&mut file.readv_at(vec![bomb()], 0))),
                _ => drop(noop_cx_poll(&mut file.writev_at(vec![bomb()], 0))),
            }));
            assert!(r.is_err(), "{op}/{at}: the bomb did not go off");
        }
        let mut plain = file.read_at(Vec::with_capacity(4096), 0);
        let res = poll_for(&mut plain, Duration::from_secs(2));
        let stats = driver.stats();
        let ok = matches!(&res, Some((Ok(4096), _)));
        leaked_any |= !ok;
        lines.push(format!(
            "{op}, panic in {at} x{SLOTS}: a plain read then {}, stats {stats:?}",
            if ok {
                "completed"
            } else {
                "never completed (2 s)"
            }
        ));
        drop(plain);
    }
    for l in &lines {
        println!("  {l}");
    }
    assert!(
        !leaked_any,
        "panics in IoBuf methods leaked every slot; later requests hang:\n{}",
        lines.join("\n")
    );
    Passed
}

/// A buffer whose `Drop` panics, abandoned in flight (future dropped during an O_DIRECT read):
/// the driving thread drops it after reaping the completion (`trash.clear()` in turn.rs, step
/// 6), outside any catch_unwind, so the panic ends the `linux-aio-driver` thread (or the tokio
/// driving task), silently; every later request of the driver then waits forever. The teardown
/// pool does catch such panics ("a panicking job (a buffer's Drop)"), the driving loops do not.
fn buffer_drop_panic_stops_driver() -> Outcome {
    quiet_deliberate_panics();
    const LEN: usize = 8 << 20;
    let scratch = Scratch::filled("dropbomb", LEN, 0x5a);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    let driver = Driver::new(8).unwrap();
    let file = File::new(&driver, direct);
    let noop = futures::task::noop_waker();
    // Get it into the kernel with a manual turn, then drop the future there.
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(tries < 50, "could not catch an O_DIRECT read in flight");
        let mut read = file.read_at(DropBomb(AlignedBuf::new(LEN).unwrap()), 0);
        assert!(noop_cx_poll(&mut read).is_pending());
        driver.turn(&noop);
        if driver.stats().in_kernel == 1 {
            drop(read); // the buffer moves into the slot
            break;
        }
        // Completed within the turn: take it (its Drop panics here, in our thread: fine).
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(poll_for(&mut read, Duration::from_secs(2)))
        }));
        let _ = r;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(read)));
    }
    let handle = driver.spawn_thread().unwrap();
    let died = wait_for(Duration::from_secs(2), || handle.is_finished());
    let mut later = file.read_at(AlignedBuf::new(4096).unwrap(), 0);
    let res = poll_for(&mut later, Duration::from_secs(2));
    let later_ok = matches!(&res, Some((Ok(4096), _)));
    println!(
        "  driving thread ended: {died}; a later read {}; stats {:?}",
        if later_ok {
            "completed"
        } else {
            "never completed (2 s)"
        },
        driver.stats()
    );
    drop(later);
    assert!(
        !died && later_ok,
        "a panicking buffer Drop killed the driving thread (ended: {died}); later requests hang"
    );
    Passed
}

/// Two runtimes drive one driver (`spawn_tokio` in each). The table keeps one waker for "a
/// request was queued" (`flush`), the last driving task's to turn: when that task's runtime
/// goes, a request queued from the other runtime wakes the dead task only, and the live
/// driving task (waiting on the eventfd, which nothing signals) never submits it.
fn two_runtimes_flush() -> Outcome {
    let scratch = Scratch::filled("tworts", 4096, 3);
    let driver = Driver::new(16).unwrap();
    let file = File::new(&driver, scratch.open());
    let b = multi(1);
    {
        let (d, f) = (driver.clone(), file.clone());
        let (r, _) = b.block_on(async move {
            d.spawn_tokio().unwrap();
            f.read_at(Vec::with_capacity(4096), 0).await
        });
        assert_eq!(r.unwrap(), 4096, "runtime B alone works");
    }
    {
        let a = current();
        let d = driver.clone();
        a.block_on(async move {
            d.spawn_tokio().unwrap();
            for _ in 0..4 {
                tokio::task::yield_now().await; // A's driving task takes its first turn
            }
        });
        drop(a); // runtime A (and its driving task) gone
    }
    let f = file.clone();
    let res = b.block_on(async move {
        tokio::time::timeout(
            Duration::from_secs(2),
            f.read_at(Vec::with_capacity(4096), 0),
        )
        .await
    });
    let stats = driver.stats();
    println!("  read from runtime B after runtime A went: {res:?} (len only), stats {stats:?}");
    let ok = matches!(&res, Ok((Ok(4096), _)));
    // Unstick it for the drop: a turn from here.
    driver.turn(&futures::task::noop_waker());
    assert!(
        ok,
        "the request queued in runtime B was never submitted (queued: {}): the only flush \
         waker was runtime A's dead driving task",
        stats.queued
    );
    Passed
}

/// The `EOPNOTSUPP` refusal of reads on blocking streams is decided when the `Op` is created
/// (`File::read_at` calls `fcntl`), not when it is submitted: a request made while the pipe is
/// `O_NONBLOCK`, polled after the flag was cleared (by this or any process sharing the open
/// file description), reaches `io_submit` in blocking mode and blocks the driving thread in
/// `pipe_read`, and every other request of the driver with it.
///
/// The achievable guarantee (the fix): the turn checks the mode again right before its
/// `io_submit`, so a flag cleared before the request's turn refuses it with `EOPNOTSUPP`. No
/// check can close the window between that `fcntl` and `io_submit` itself, in which another
/// thread or process can still clear the flag (`stuck_drivers_do_not_stop_other_teardowns`
/// reaches it on purpose); the docs say so.
fn eopnotsupp_toctou() -> Outcome {
    let scratch = Scratch::filled("toctou", 4096, 9);
    let driver = Driver::new(16).unwrap();
    let _thread = driver.spawn_thread().unwrap();
    let (rx, tx) = rustix::pipe::pipe().unwrap();
    set_nonblock(&rx, true);
    let pipe = File::new(&driver, rx.try_clone().unwrap());
    let disk = File::new(&driver, scratch.open());
    let mut stream_read = pipe.read_at(Vec::with_capacity(64), 0); // checked here: non-blocking
    set_nonblock(&rx, false);
    let first = noop_cx_poll(&mut stream_read);
    std::thread::sleep(Duration::from_millis(50));
    let mut disk_read = disk.read_at(Vec::with_capacity(4096), 0);
    let disk_res = poll_for(&mut disk_read, Duration::from_secs(2));
    let wchans = threads("linux-aio-drive");
    let disk_ok = matches!(&disk_res, Some((Ok(4096), _)));
    println!(
        "  stream read first poll: {}; a disk read then {}; driver thread: {wchans:?}",
        if first.is_pending() {
            "Pending"
        } else {
            "Ready"
        },
        if disk_ok {
            "completed"
        } else {
            "never completed (2 s)"
        },
    );
    // Release the driving thread.
    rustix::io::write(&tx, b"x").unwrap();
    let stream_res = poll_for(&mut stream_read, Duration::from_secs(2));
    if disk_res.is_none() {
        let _ = poll_for(&mut disk_read, Duration::from_secs(2)); // (never poll a finished Op)
    }
    assert!(
        disk_ok,
        "a stream read refused-if-blocking reached io_submit in blocking mode and blocked the \
         driving thread ({wchans:?})"
    );
    let refused =
        matches!(&stream_res, Some((Err(e), _)) if e.raw_os_error() == Some(libc::EOPNOTSUPP));
    assert!(
        refused,
        "the stream read, blocking at its turn, was not refused with EOPNOTSUPP"
    );
    Passed
}

/// A driving turn stuck inside `io_submit`, in a blocking pipe read: `O_NONBLOCK` cleared by
/// a racing thread between the turn's check and its `io_submit` (the window no check can
/// close, see `eopnotsupp_toctou`). Returns the request, the driver and the pipe's ends; None
/// if the window was not hit within the deadline.
#[allow(clippy::type_complexity)]
fn stuck_read() -> Option<(
    linux_aio_async::Op<linux_aio_async::Read<Vec<u8>>>,
    Driver,
    File,
    OwnedFd,
    OwnedFd,
)> {
    let driver = Driver::new(4).unwrap();
    let _t = driver.spawn_thread().unwrap();
    let (rx, tx) = rustix::pipe::pipe().unwrap();
    set_nonblock(&rx, true);
    let pipe = File::new(&driver, rx.try_clone().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let stop = Arc::new(AtomicBool::new(false));
        let toggler = {
            let (rx, stop) = (rx.try_clone().unwrap(), stop.clone());
            std::thread::spawn(move || {
                let mut on = false;
                while !stop.load(Relaxed) {
                    set_nonblock(&rx, on);
                    on = !on;
                }
                set_nonblock(&rx, false);
            })
        };
        let mut suspect = None;
        while suspect.is_none() && Instant::now() < deadline {
            let mut read = pipe.read_at(Vec::with_capacity(64), 0);
            // Refused (EOPNOTSUPP) or not ready (EAGAIN) unless it got stuck.
            if poll_for(&mut read, Duration::from_millis(20)).is_none() {
                suspect = Some(read);
            }
        }
        stop.store(true, Relaxed);
        toggler.join().unwrap();
        let mut read = suspect?;
        // Nothing but a read blocked inside io_submit takes this long.
        if poll_for(&mut read, Duration::from_millis(300)).is_none()
            && driver.stats().in_kernel == 1
        {
            return Some((read, driver, pipe, rx, tx));
        }
    }
    None
}

/// Teardown work runs on at most 4 threads. Drivers whose engine lock is held by a driving
/// turn that never returns (here: a blocking-pipe read stuck inside `io_submit`) each hold one
/// teardown thread forever (`drain_and_destroy` waits for the lock); four of them, and no
/// other driver in the process is ever destroyed: contexts (and abandoned buffers) pile up.
fn teardown_pool_starved() -> Outcome {
    let before = aio_rings();
    let mut unblock: Vec<OwnedFd> = Vec::new();
    let mut rxs = Vec::new();
    for k in 0..4 {
        let Some((read, driver, pipe, rx, tx)) = stuck_read() else {
            for tx in &unblock {
                let _ = rustix::io::write(tx, b"x");
            }
            return skipped(format!(
                "the fcntl/io_submit window was not hit (driver {k})"
            ));
        };
        assert!(wait_for(Duration::from_secs(2), || driver
            .stats()
            .in_kernel
            == 1));
        std::thread::sleep(Duration::from_millis(20));
        drop(read);
        drop(pipe);
        drop(driver); // the last handle: a teardown job, stuck behind the driving turn
        unblock.push(tx);
        rxs.push(rx);
    }
    std::thread::sleep(Duration::from_millis(100));
    // A healthy driver, used and dropped.
    let scratch = Scratch::filled("pool", 4096, 1);
    let healthy_before = aio_rings();
    {
        let driver = Driver::new(4).unwrap();
        let _t = driver.spawn_thread().unwrap();
        let file = File::new(&driver, scratch.open());
        let mut r = file.read_at(Vec::with_capacity(4096), 0);
        assert!(matches!(
            poll_for(&mut r, Duration::from_secs(2)),
            Some((Ok(4096), _))
        ));
    }
    let destroyed = wait_for(Duration::from_secs(3), || aio_rings() <= healthy_before);
    let stuck = threads("linux-aio-");
    println!(
        "  rings: {before} before, {healthy_before} with the 4 stuck drivers (then one more, healthy), healthy \
         driver destroyed within 3 s: {destroyed}; threads {stuck:?}"
    );
    for tx in &unblock {
        let _ = rustix::io::write(tx, b"x");
    }
    let cleaned = wait_for(Duration::from_secs(5), || aio_rings() <= before);
    println!("  after unblocking the pipes: every context destroyed: {cleaned}");
    assert!(
        destroyed,
        "the healthy driver's context was not destroyed while 4 other drivers' teardowns waited"
    );
    Passed
}

/// A waker whose `wake` panics (a future polled by a buggy executor) is woken by the driving
/// thread in turn.rs step 6, outside any catch_unwind: the `linux-aio-driver` thread ends, the
/// other futures completed in the same turn are never woken, and nothing is driven any more.
fn waker_panic_stops_driver() -> Outcome {
    quiet_deliberate_panics();
    use std::task::{RawWaker, RawWakerVTable, Waker};
    static WOKEN: AtomicI64 = AtomicI64::new(0);
    fn clone(p: *const ()) -> RawWaker {
        RawWaker::new(p, &VTABLE)
    }
    fn wake(p: *const ()) {
        if p.is_null() {
            panic!("deliberate panic in Waker::wake");
        }
        WOKEN.fetch_add(1, SeqCst);
    }
    fn drop_w(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop_w);
    // SAFETY: the vtable's functions ignore the data pointer but for null/non-null.
    let bad = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
    // SAFETY: as above.
    let good = unsafe { Waker::from_raw(RawWaker::new(std::ptr::dangling::<()>(), &VTABLE)) };
    let (rx, tx) = rustix::pipe::pipe().unwrap();
    let driver = Driver::new(8).unwrap();
    let pipe = File::new(&driver, rx);
    let mut p_bad = pipe.poll(PollFlags::IN);
    let mut p_good = pipe.poll(PollFlags::IN);
    assert!(Pin::new(&mut p_bad)
        .poll(&mut Context::from_waker(&bad))
        .is_pending());
    assert!(Pin::new(&mut p_good)
        .poll(&mut Context::from_waker(&good))
        .is_pending());
    let handle = driver.spawn_thread().unwrap();
    assert!(wait_for(Duration::from_secs(2), || driver
        .stats()
        .in_kernel
        == 2));
    rustix::io::write(&tx, b"x").unwrap(); // both polls complete in one turn
    let died = wait_for(Duration::from_secs(2), || handle.is_finished());
    std::thread::sleep(Duration::from_millis(50));
    let woken = WOKEN.load(SeqCst);
    let scratch = Scratch::filled("wakerpanic", 4096, 1);
    let disk = File::new(&driver, scratch.open());
    let mut later = disk.read_at(Vec::with_capacity(4096), 0);
    let later_ok = matches!(
        poll_for(&mut later, Duration::from_secs(2)),
        Some((Ok(4096), _))
    );
    println!(
        "  driving thread ended: {died}; the good future woken: {woken} times; a later read {}",
        if later_ok {
            "completed"
        } else {
            "never completed (2 s)"
        }
    );
    drop(later);
    assert!(
        !died && later_ok,
        "a panicking waker killed the driving thread (ended: {died}, good future woken {woken}x)"
    );
    Passed
}

/// A forked child inherits the teardown pool's bookkeeping (`threads`, and the queue), not its
/// threads: forked while the parent's teardown threads are busy (40 drivers just dropped), the
/// child's own driver, used and dropped, is never torn down (its job waits for threads that do
/// not exist in the child); its context stays until the child exits. (The child also inherits
/// the mappings of the parent's rings, which the count of `[aio]` maps includes: the check is
/// that the child's own one goes.)
fn fork_child_teardown() -> Outcome {
    let scratch = Scratch::filled("forkpool", 4096, 1);
    // ATK2_BURST=0 is the control (the child then tears its driver down).
    let burst = std::env::var("ATK2_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let drivers: Vec<_> = (0..burst).map(|_| Driver::new(4).unwrap()).collect();
    drop(drivers);
    // SAFETY: the child only makes system calls and uses this crate, then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = {
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
                2
            } else if wait_for(Duration::from_secs(3), || aio_rings() < rings) {
                0
            } else {
                eprintln!(
                    "  child: {rings} ring(s) before the drop, {} 3 s after",
                    aio_rings()
                );
                3
            }
        };
        // SAFETY: leaves the child at once.
        unsafe { libc::_exit(code) };
    }
    let start = Instant::now();
    let mut status = 0;
    let exited = loop {
        // SAFETY: our child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break true;
        }
        if start.elapsed() > Duration::from_secs(10) {
            // SAFETY: our child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            break false;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let code = libc::WEXITSTATUS(status);
    println!("  child exited by itself: {exited}, code {code} (3: its driver never torn down)");
    assert!(
        exited && code == 0,
        "the child's driver was not torn down (code {code})"
    );
    Passed
}

// ======================================================================== what held up

/// One slot, two waiters: the slot released goes to the oldest (W1); W1 dropped before it
/// polls passes it to W2, not to a newcomer N polled first.
fn fairness_granted_drop() -> Outcome {
    let scratch = Scratch::filled("fair", 4096, 2);
    let driver = Driver::builder().capacity(4).slots(1).build().unwrap();
    let noop = futures::task::noop_waker();
    let (rx, tx) = rustix::pipe::pipe().unwrap();
    let pipe = File::new(&driver, rx);
    let disk = File::new(&driver, scratch.open());
    let mut holder = pipe.poll(PollFlags::IN);
    assert!(noop_cx_poll(&mut holder).is_pending());
    driver.turn(&noop);
    let mut w1 = disk.read_at(Vec::with_capacity(4096), 0);
    let mut w2 = disk.read_at(Vec::with_capacity(4096), 0);
    assert!(noop_cx_poll(&mut w1).is_pending());
    assert!(noop_cx_poll(&mut w2).is_pending());
    assert_eq!(driver.stats().waiting_for_slot, 2);
    rustix::io::write(&tx, b"x").unwrap();
    assert!(wait_for(Duration::from_secs(2), || {
        driver.turn(&noop);
        driver.stats().in_kernel == 0
    }));
    assert!(noop_cx_poll(&mut holder).is_ready()); // releases the slot: granted to w1
    drop(w1); // passes it to w2
    let mut n = disk.read_at(Vec::with_capacity(4096), 0);
    assert!(noop_cx_poll(&mut n).is_pending());
    let s = driver.stats();
    assert_eq!((s.queued, s.waiting_for_slot), (0, 2), "{s:?}");
    assert!(noop_cx_poll(&mut w2).is_pending());
    let s = driver.stats();
    assert_eq!(
        (s.queued, s.waiting_for_slot),
        (1, 1),
        "w2 got the slot: {s:?}"
    );
    driver.turn(&noop);
    assert!(matches!(noop_cx_poll(&mut w2), Poll::Ready((Ok(4096), _))));
    driver.turn(&noop);
    assert!(noop_cx_poll(&mut n).is_pending());
    driver.turn(&noop);
    assert!(matches!(noop_cx_poll(&mut n), Poll::Ready((Ok(4096), _))));
    Passed
}

/// 1e5 requests of every kind and fate (completed, dropped before polling, dropped queued,
/// polls cancelled in the kernel, O_DIRECT reads dropped in flight, back-pressure waiters
/// dropped): live heap bytes end where they were after the first 1e4.
fn memory_flat() -> Outcome {
    let scratch = Scratch::filled("mem", 1 << 20, 4);
    let direct = scratch.open_direct().ok();
    let rt = current();
    let (base, end, samples) = rt.block_on(async {
        let driver = Driver::builder().capacity(8).slots(4).build().unwrap();
        driver.spawn_tokio().unwrap();
        let file = File::new(&driver, scratch.open());
        let dfile = direct.map(|d| File::new(&driver, d));
        let (rx, _tx) = rustix::pipe::pipe().unwrap();
        let pipe = File::new(&driver, rx);
        let mut base = 0;
        let mut samples = Vec::new();
        for i in 0..100_000u32 {
            match i % 6 {
                0 => {
                    let (r, _) = file.read_at(Vec::with_capacity(512), 0).await;
                    r.unwrap();
                }
                1 => drop(file.read_at(Vec::with_capacity(512), 0)),
                2 => {
                    let mut op = file.write_at(vec![4u8; 512], 0);
                    let _ = noop_cx_poll(&mut op);
                    drop(op);
                }
                3 => {
                    let mut p = pipe.poll(PollFlags::IN);
                    let _ = noop_cx_poll(&mut p);
                    tokio::task::yield_now().await;
                    drop(p);
                }
                4 => {
                    if let Some(d) = &dfile {
                        let mut op = d.read_at(AlignedBuf::new(4096).unwrap(), 4096);
                        let _ = noop_cx_poll(&mut op);
                        tokio::task::yield_now().await;
                        drop(op);
                    }
                }
                _ => {
                    // Back-pressure: more requests than slots, half dropped while waiting.
                    let mut ops: Vec<_> = (0..8)
                        .map(|_| file.read_at(Vec::with_capacity(512), 0))
                        .collect();
                    for op in &mut ops {
                        let _ = noop_cx_poll(op);
                    }
                    ops.truncate(4);
                    for op in ops {
                        op.await.0.unwrap();
                    }
                }
            }
            if i % 10_000 == 9_999 {
                while driver.stats().in_kernel > 0 || driver.stats().queued > 0 {
                    tokio::task::yield_now().await;
                }
                let live = LIVE.load(Relaxed);
                if i == 9_999 {
                    base = live;
                }
                samples.push(live);
            }
        }
        (base, *samples.last().unwrap(), samples)
    });
    println!("  live bytes every 1e4 ops: {samples:?}");
    assert!(
        end - base < 64 << 10,
        "live heap grew by {} bytes over 9e4 ops",
        end - base
    );
    Passed
}

/// One future polled first from a thread of runtime R1, then moved to a task of runtime R2
/// and, after that, to a plain thread; the driver is driven by its own thread.
fn moved_between_runtimes() -> Outcome {
    let scratch = Scratch::filled("moved", 1 << 20, 6);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    let driver = Driver::new(64).unwrap();
    let _t = driver.spawn_thread().unwrap();
    let file = File::new(&driver, direct);
    let r1 = multi(1);
    let r2 = multi(2);
    for round in 0..200 {
        let op = file.read_at(AlignedBuf::new(1 << 20).unwrap(), 0);
        // The block hands the (still pending) future back, to be awaited elsewhere.
        #[allow(clippy::async_yields_async)]
        let mut op = r1.block_on(async move {
            let mut op = op;
            let _ = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut op).poll(cx))).await;
            op
        });
        let r: Option<usize> = if round % 2 == 0 {
            r2.block_on(async move {
                tokio::spawn(
                    async move { tokio::time::timeout(Duration::from_secs(5), &mut op).await },
                )
                .await
                .unwrap()
                .ok()
                .map(|(r, _)| r.unwrap())
            })
        } else {
            std::thread::spawn(move || {
                poll_for(&mut op, Duration::from_secs(5)).map(|(r, _)| r.unwrap())
            })
            .join()
            .unwrap()
        };
        assert_eq!(r, Some(1 << 20), "round {round}: lost wake-up");
    }
    Passed
}

/// fork() while a 2-worker runtime drives reads on another thread: the child's inherited file
/// read fails with EINVAL at once, a fresh driver in the child works, the child exits; the
/// parent's reads all complete.
fn fork_multi_thread() -> Outcome {
    let scratch = Scratch::filled("fork", 1 << 20, 8);
    let rt = multi(2);
    let driver = rt.block_on(async {
        let d = Driver::new(32).unwrap();
        d.spawn_tokio().unwrap();
        d
    });
    let file = File::new(&driver, scratch.open());
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(Mutex::new(0u64));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (f, stop, done) = (file.clone(), stop.clone(), done.clone());
        tasks.push(rt.spawn(async move {
            while !stop.load(Relaxed) {
                let (r, _) = f.read_at(Vec::with_capacity(65536), 0).await;
                assert_eq!(r.unwrap(), 65536);
                *done.lock().unwrap() += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(50));
    let mut failures = 0;
    for _ in 0..20 {
        // SAFETY: the child only makes system calls and uses this crate, then _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut r = file.read_at(Vec::with_capacity(4096), 0);
            let code = match poll_for(&mut r, Duration::from_secs(2)) {
                Some((Err(e), _)) if e.raw_os_error() == Some(libc::EINVAL) => 0,
                _ => 1,
            };
            std::mem::forget(r);
            let code = if code == 0 {
                let d = Driver::new(4).unwrap();
                let _t = d.spawn_thread().unwrap();
                let f = File::new(&d, scratch.open());
                let mut r = f.read_at(Vec::with_capacity(4096), 0);
                match poll_for(&mut r, Duration::from_secs(2)) {
                    Some((Ok(4096), _)) => 0,
                    _ => 2,
                }
            } else {
                code
            };
            // SAFETY: leaves the child at once.
            unsafe { libc::_exit(code) };
        }
        let start = Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: our child.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                // SAFETY: our child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                status = -1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if status != 0 {
            println!("  child status {status:#x}");
            failures += 1;
        }
    }
    stop.store(true, Relaxed);
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    println!("  20 forks, parent reads: {}", done.lock().unwrap());
    assert_eq!(failures, 0);
    Passed
}

/// 16 O_DIRECT 4 MiB canary reads in flight, then every future, the file and the driver
/// dropped at once (nobody driving: the teardown thread drains): no canary freed part-written,
/// every canary freed, the context destroyed.
fn direct_drop_everything() -> Outcome {
    const LEN: usize = 4 << 20;
    const N: usize = 16;
    let scratch = Scratch::filled("canary", N * LEN, 0x77);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    struct Canary(AlignedBuf, Arc<Mutex<Vec<&'static str>>>);
    impl Drop for Canary {
        fn drop(&mut self) {
            let s: Vec<u8> = self.0.iter().step_by(512).copied().collect();
            let state = if s.iter().all(|&b| b == 0x77) {
                "full"
            } else if s.iter().all(|&b| b == 0xAA) {
                "untouched"
            } else {
                "PARTIAL"
            };
            self.1.lock().unwrap().push(state);
        }
    }
    // SAFETY: forwards.
    unsafe impl IoBuf for Canary {
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
    // SAFETY: forwards.
    unsafe impl IoBufMut for Canary {
        fn stable_mut_ptr(&mut self) -> *mut u8 {
            self.0.stable_mut_ptr()
        }
        unsafe fn set_init(&mut self, _: usize) {}
    }
    let before = aio_rings();
    let deaths = Arc::new(Mutex::new(Vec::new()));
    for round in 0..10 {
        let driver = Driver::new(32).unwrap();
        let file = File::new(&driver, direct.try_clone().unwrap());
        let noop = futures::task::noop_waker();
        let mut ops: Vec<_> = (0..N)
            .map(|i| {
                let mut b = AlignedBuf::new(LEN).unwrap();
                b.fill(0xAA);
                file.read_at(Canary(b, deaths.clone()), (i * LEN) as u64)
            })
            .collect();
        for op in &mut ops {
            let _ = noop_cx_poll(op);
        }
        driver.turn(&noop);
        if round % 2 == 1 {
            driver.shutdown();
        }
        drop(ops);
        drop(file);
        drop(driver);
    }
    assert!(wait_for(Duration::from_secs(10), || deaths
        .lock()
        .unwrap()
        .len()
        == 10 * N));
    let d = deaths.lock().unwrap().clone();
    let partial = d.iter().filter(|s| **s == "PARTIAL").count();
    let full = d.iter().filter(|s| **s == "full").count();
    println!("  {} canaries: {full} full, {partial} partial", d.len());
    assert_eq!(partial, 0);
    assert!(wait_for(Duration::from_secs(5), || aio_rings() <= before));
    Passed
}
