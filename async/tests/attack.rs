//! Adversarial review of linux-aio-async: reproducers for defects, and checks of what held up.
//!
//! Each test asserts what the crate claims; a test that FAILS here demonstrates a defect (the
//! message says what was observed). Nothing may hang the run: hangs are detected with
//! deadlines, in threads left behind or in forked children that are killed.
//!
//! `cargo test -p linux-aio-async --features tokio --test attack [-- FILTER]`

#[path = "../../tests/support/runner.rs"]
mod runner;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::future::Future;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use linux_aio_async::{AlignedBuf, Driver, File, IoBuf, IoBufMut, PollFlags};
use runner::{skipped, Outcome, Passed};

// ---- a counting allocator that also page-aligns large blocks (as jemalloc and mimalloc do),
// so that a plain `Vec<u8>` is usable for O_DIRECT.

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Canaries freed while the kernel was still writing them.
static PARTIAL: AtomicUsize = AtomicUsize::new(0);
/// Bytes currently allocated (whole process).
static LIVE: AtomicI64 = AtomicI64::new(0);
const BIG: usize = 1 << 20;

fn adjust(l: Layout) -> Layout {
    if l.size() >= BIG && l.align() < 4096 {
        Layout::from_size_align(l.size(), 4096).unwrap()
    } else {
        l
    }
}

// SAFETY: forwards to System with a layout that only ever gains alignment, the same one for a
// block's alloc and dealloc (it depends on the size alone); realloc is GlobalAlloc's default
// (alloc + copy + dealloc through these functions).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
        }
        LIVE.fetch_add(l.size() as i64, Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(adjust(l)) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
        }
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
            "debug_of_in_flight_read_races_the_kernel",
            debug_races_kernel,
        ),
        (
            "inherited_request_in_forked_child_completes",
            inherited_in_child,
        ),
        ("fork_during_a_turn_child_does_not_hang", fork_during_turn),
        (
            "blocking_stream_read_does_not_block_runtime",
            blocking_pipe_read,
        ),
        ("slot_waiter_is_not_starved", slot_waiter_starved),
        (
            "forgotten_future_does_not_leak_the_context",
            forgotten_future_leaks,
        ),
        ("dropping_queued_futures_is_linear", quadratic_drop),
        ("user_waker_clone_under_table_lock", waker_under_lock),
        ("unsignalled_request_does_not_spin", unsignalled_spin),
        ("slot_waiters_that_leave_are_forgotten", room_queue_grows),
        ("spawn_tokio_without_io_is_an_error", spawn_tokio_without_io),
        ("dropping_drivers_spawns_bounded_threads", teardown_threads),
        // What held up.
        ("zero_allocations_per_request", zero_allocations),
        ("abort_shutdown_panic_keep_buffers", abort_shutdown_panic),
        (
            "select_loser_direct_read_and_forget_task",
            select_loser_direct_read,
        ),
        ("odd_descriptors_are_errors", odd_descriptors),
        ("ring_full_with_direct_reads", ring_full_direct),
        ("many_threads_turning_and_dropping", many_threads_turning),
    ];
    runner::run("attack", tests)
}

// ---- helpers (after tests/async.rs)

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir.join(format!("attack-{}-{tag}", std::process::id())))
    }
    fn filled(tag: &str, len: usize, byte: u8) -> Scratch {
        let s = Scratch::new(tag);
        std::fs::write(&s.0, vec![byte; len]).unwrap();
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

fn multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn noop_cx_poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    Pin::new(f).poll(&mut cx)
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            println!("  (gave up waiting: {what})");
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

fn aio_rings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().filter(|l| l.contains("/[aio]")).count())
        .unwrap_or(0)
}

/// Waits for the child for up to `limit`, then kills it: Some(status) if it exited by itself.
fn reap_child(pid: libc::pid_t, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: our own child, without blocking.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            return Some(status);
        }
        if start.elapsed() > limit {
            let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            println!("  child {pid} still running after {limit:?}, sleeping in {wchan:?}: killed");
            // SAFETY: our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn exit_child(code: i32) -> ! {
    // SAFETY: leaves the child without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

/// An O_DIRECT buffer recording when it dies whether it holds what the kernel was to write.
struct Canary {
    buf: AlignedBuf,
    expect: u8,
    deaths: Arc<Mutex<Vec<(bool, String)>>>,
}

impl Canary {
    fn new(len: usize, fill: u8, expect: u8, deaths: &Arc<Mutex<Vec<(bool, String)>>>) -> Canary {
        let mut buf = AlignedBuf::new(len).unwrap();
        buf.fill(fill);
        Canary {
            buf,
            expect,
            deaths: deaths.clone(),
        }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        // One byte per 512-byte sector (DMA writes whole sectors): cheap even in debug builds,
        // so that a canary's Drop never makes the dropping thread look slow.
        let sample = || self.buf.iter().step_by(512).chain(self.buf.last());
        let full = sample().filter(|&&b| b == self.expect).count();
        let untouched = sample().all(|&b| b == 0xAA);
        // "full": the kernel had finished; "untouched": never submitted; else freed mid-DMA.
        let state = if full == sample().count() {
            "full"
        } else if untouched {
            "untouched"
        } else {
            "PARTIAL"
        };
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        self.deaths
            .lock()
            .unwrap()
            .push((state == "full", format!("{state}@{thread}")));
        if state == "PARTIAL" {
            PARTIAL.fetch_add(1, SeqCst);
        }
    }
}

// SAFETY: forwards to the AlignedBuf.
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

// ======================================================================== defects

/// `impl Debug for Op<T: Debug>` formats the operation, buffer included, while the kernel may
/// be writing into that buffer (an O_DIRECT read in flight): safe code reads memory that changes
/// under a live shared borrow. A `fmt::Write` sink that pauses when it meets the first byte the
/// kernel has not written yet shows the same `&Vec<u8>` yielding that byte with its old value,
/// and the kernel's value at the same index afterwards.
fn debug_races_kernel() -> Outcome {
    const LEN: usize = 16 << 20;
    let scratch = Scratch::filled("debug", LEN, 0x55);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    let driver = Driver::new(8).unwrap();
    let _thread = driver.spawn_thread().unwrap();
    let file = File::new(&driver, direct);

    /// Parses `[a, b, c, ...]` as it is written; at the first 0xAA element, pauses (while the
    /// formatter holds `&Vec<u8>`) so the kernel can finish, then records what follows.
    struct Sink {
        in_list: bool,
        index: usize,
        paused_at: Option<usize>,
        after_pause: [usize; 256],
    }
    impl std::fmt::Write for Sink {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            if !self.in_list {
                if s.ends_with('[') {
                    self.in_list = true;
                }
                return Ok(());
            }
            if s == ", " {
                return Ok(());
            }
            if s == "]" {
                self.in_list = false;
                return Err(std::fmt::Error); // stop: we saw the whole buffer
            }
            if let Ok(v) = s.parse::<u8>() {
                if self.paused_at.is_none() && v == 0xAA {
                    self.paused_at = Some(self.index);
                    std::thread::sleep(Duration::from_millis(300));
                } else if self.paused_at.is_some() {
                    self.after_pause[v as usize] += 1;
                }
                self.index += 1;
            }
            Ok(())
        }
    }

    // Whether any Debug output showed the buffer's bytes at all (a list).
    let mut listed = false;
    for attempt in 0..5 {
        let buf = vec![0xAAu8; LEN];
        if !(buf.as_ptr() as usize).is_multiple_of(4096) {
            return skipped("the Vec is not page-aligned");
        }
        let mut op = file.read_at(buf, 0);
        assert!(noop_cx_poll(&mut op).is_pending());
        assert!(wait_for("submitted", Duration::from_secs(5), || driver
            .stats()
            .queued
            == 0));
        let mut sink = Sink {
            in_list: false,
            index: 0,
            paused_at: None,
            after_pause: [0; 256],
        };
        // One call, one shared borrow of the Op (and so of the Vec) throughout.
        let _ = write!(sink, "{op:?}");
        listed |= sink.index > 0;
        let (res, buf) = loop {
            if let Poll::Ready(out) = noop_cx_poll(&mut op) {
                break out;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(res.unwrap(), LEN);
        if let Some(i) = sink.paused_at {
            println!(
                "  attempt {attempt}: Debug read byte {i} as 0xAA (not yet written by the \
                 kernel); the kernel then wrote {:#x} there during the same shared borrow; \
                 after the pause Debug saw {} bytes of 0x55 and {} of 0xAA",
                buf[i], sink.after_pause[0x55], sink.after_pause[0xAA]
            );
            assert!(
                buf[i] == 0xAA,
                "Debug of an in-flight Op read the buffer while the kernel wrote it \
                 (byte {i}: 0xAA under the borrow, {:#x} after)",
                buf[i]
            );
        }
    }
    if !listed {
        // The fix: Debug of an Op never shows its operation's buffer.
        println!("  Debug of an in-flight Op shows none of the buffer's bytes");
        return Passed;
    }
    skipped("the kernel finished every read before Debug reached an unwritten byte")
}

/// The crate: "every request in the child, new or inherited, completes with EINVAL". A child
/// of a process driving with `spawn_thread` (the driver thread does not survive fork) polls a
/// request that was in flight in the parent: it stays pending for ever, because only a driving
/// turn fails inherited requests.
fn inherited_in_child() -> Outcome {
    let driver = Driver::new(8).unwrap();
    let _thread = driver.spawn_thread().unwrap();
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let rd = File::new(&driver, rd);
    let mut op = rd.poll(PollFlags::IN);
    assert!(noop_cx_poll(&mut op).is_pending());
    assert!(wait_for("in flight", Duration::from_secs(5), || driver
        .stats()
        .in_kernel
        == 1));
    // SAFETY: the child polls, then leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Poll::Ready(res) = noop_cx_poll(&mut op) {
                let einval = res.err().and_then(|e| e.raw_os_error()) == Some(libc::EINVAL);
                exit_child(if einval { 0 } else { 2 });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // New requests do fail at once, as claimed: only the inherited one hangs.
        let mut fresh = rd.poll(PollFlags::IN);
        let fresh_ok = matches!(noop_cx_poll(&mut fresh), Poll::Ready(Err(e)) if e.raw_os_error() == Some(libc::EINVAL));
        std::mem::forget(op); // its Drop would only take the table lock
        exit_child(if fresh_ok { 3 } else { 4 });
    }
    let status = reap_child(pid, Duration::from_secs(20));
    rustix::io::write(&wr, b"x").unwrap();
    assert!(wait_for("parent's poll", Duration::from_secs(5), || {
        noop_cx_poll(&mut op).is_ready()
    }));
    let code = status.map(|s| libc::WEXITSTATUS(s));
    assert_eq!(
        code,
        Some(0),
        "child: inherited in-flight request still pending after 3 s without a driving loop \
         (exit 3: new requests did fail with EINVAL; {code:?})"
    );
    Passed
}

/// Fork while the driver thread is inside a turn (it holds the engine lock across io_submit,
/// which performs a buffered read of 64 MiB from the page cache): the child's copy of the
/// engine mutex stays locked for ever, so the child's first turn (`Driver::turn`, or a driving
/// task or thread it starts to fail its inherited requests) deadlocks.
fn fork_during_turn() -> Outcome {
    const LEN: usize = 64 << 20;
    let scratch = Scratch::filled("forkturn", LEN, 7);
    let driver = Driver::new(8).unwrap();
    let _thread = driver.spawn_thread().unwrap();
    let file = File::new(&driver, scratch.open());
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (file, stop, reads) = (file.clone(), stop.clone(), reads.clone());
        std::thread::spawn(move || {
            futures::executor::block_on(async {
                let mut buf = vec![0u8; LEN].into_boxed_slice();
                while !stop.load(Relaxed) {
                    let (res, b) = file.read_at(buf, 0).await;
                    res.unwrap();
                    buf = b;
                    reads.fetch_add(1, Relaxed);
                }
            })
        })
    };
    assert!(wait_for("reads", Duration::from_secs(10), || reads
        .load(Relaxed)
        > 2));
    let (mut hung, mut tries) = (0, 0);
    for _ in 0..8 {
        tries += 1;
        // SAFETY: the child turns once, then leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let waker = futures::task::noop_waker();
            let _ = driver.turn(&waker);
            exit_child(0);
        }
        if reap_child(pid, Duration::from_secs(3)).is_none() {
            hung += 1;
        }
        std::thread::sleep(Duration::from_millis(7));
    }
    stop.store(true, Relaxed);
    reader.join().unwrap();
    // Control: the same fork while the driver is idle (no turn in progress) returns at once.
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: as above.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let _ = driver.turn(&futures::task::noop_waker());
        exit_child(0);
    }
    let control = reap_child(pid, Duration::from_secs(3)).is_some();
    println!(
        "  {hung} of {tries} forked children hung in Driver::turn ({} reads done); \
         a child forked while the driver was idle returned: {control}",
        reads.load(Relaxed)
    );
    assert_eq!(
        hung, 0,
        "a forked child deadlocked on the engine lock it inherited locked"
    );
    Passed
}

/// `File` accepts any descriptor and offers `read_at` on it; on a blocking pipe the kernel
/// performs the read inside `io_submit`, on the thread running the driving task: a
/// current-thread runtime stops entirely (a 300 ms timeout around the read does not fire), and
/// on a multi-thread runtime every other request of the driver stalls with it.
fn blocking_pipe_read() -> Outcome {
    // Current-thread runtime: the read is wrapped in a 300 ms timeout.
    let (tx, rx) = mpsc::channel();
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    std::thread::spawn(move || {
        current().block_on(async {
            let driver = Driver::new(8).unwrap();
            driver.spawn_tokio().unwrap();
            let file = File::new(&driver, rd);
            let start = Instant::now();
            let r = tokio::time::timeout(
                Duration::from_millis(300),
                file.read_at(Vec::with_capacity(16), 0),
            )
            .await;
            let _ = tx.send((start.elapsed(), r.is_err()));
        })
    });
    let first = rx.recv_timeout(Duration::from_secs(3));
    // Unblock the kernel's pipe_read, whatever happened. (If the read was refused, the
    // reading end is already closed and this write fails with EPIPE: ignored.)
    let _ = rustix::io::write(&wr, b"x");
    let (elapsed, timed_out) = match first {
        Ok(r) => r,
        Err(_) => rx
            .recv_timeout(Duration::from_secs(10))
            .expect("still stuck"),
    };
    println!(
        "  current-thread: a read on an empty blocking pipe under a 300 ms timeout returned \
         after {elapsed:?} (timeout fired: {timed_out}) once another thread wrote to the pipe"
    );

    // Multi-thread runtime: a regular-file read on the same driver, on another worker.
    let scratch = Scratch::filled("pipe-mt", 4096, 1);
    let (rd2, wr2) = rustix::pipe::pipe().unwrap();
    let rt = multi();
    let stalled = rt.block_on(async {
        let driver = Driver::new(8).unwrap();
        driver.spawn_tokio().unwrap();
        let pipe = File::new(&driver, rd2);
        let regular = File::new(&driver, scratch.open());
        let (res, _) = regular.read_at(Vec::with_capacity(16), 0).await; // warm up
        res.unwrap();
        let stuck = tokio::spawn(async move { pipe.read_at(Vec::with_capacity(16), 0).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = tokio::time::timeout(
            Duration::from_secs(1),
            regular.read_at(Vec::with_capacity(16), 0),
        )
        .await;
        let _ = rustix::io::write(&wr2, b"y"); // EPIPE if the read was refused

        let _ = stuck.await;
        r.is_err()
    });
    println!("  multi-thread: a page-cache read on the same driver timed out after 1 s: {stalled}");
    assert!(
        elapsed < Duration::from_secs(1) && !stalled,
        "a read on a blocking pipe blocked the executor inside io_submit"
    );
    Passed
}

/// "A future that finds every slot taken waits for one, in order of arrival." A future that
/// polls for the first time takes a free slot without looking at the waiters, so a task that
/// issues requests back to back takes every slot it releases, before the waiter it woke can
/// poll: the waiter never gets one.
fn slot_waiter_starved() -> Outcome {
    let scratch = Scratch::filled("starve", 4096, 3);
    let (done, loops) = current().block_on(async {
        let driver = Driver::builder().capacity(8).slots(1).build().unwrap();
        driver.spawn_tokio().unwrap();
        let file = File::new(&driver, scratch.open());
        let stop = Arc::new(AtomicBool::new(false));
        let loops = Arc::new(AtomicUsize::new(0));
        let hog = {
            let (file, stop, loops) = (file.clone(), stop.clone(), loops.clone());
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(64);
                while !stop.load(Relaxed) {
                    buf.clear();
                    let (res, b) = file.read_at(buf, 0).await;
                    res.unwrap();
                    buf = b;
                    loops.fetch_add(1, Relaxed);
                }
            })
        };
        tokio::task::yield_now().await;
        let waiter = tokio::spawn({
            let file = file.clone();
            async move { file.read_at(Vec::with_capacity(64), 0).await.0.unwrap() }
        });
        let r = tokio::time::timeout(Duration::from_secs(2), waiter).await;
        stop.store(true, Relaxed);
        hog.await.unwrap();
        (r.is_ok(), loops.load(Relaxed))
    });
    println!("  the looping task completed {loops} requests while the waiter waited");
    assert!(
        done,
        "a future waiting for a slot was starved for 2 s ({loops} requests overtook it)"
    );
    Passed
}

/// `mem::forget` of a future (safe) keeps its `Driver` clone alive for ever: the kernel
/// context (and its share of fs.aio-max-nr), its ring mapping, the slot table and the eventfd
/// are never freed, even after `shutdown()` and dropping every handle. (Buffers of *other*
/// futures abandoned in flight are still freed, when the driving thread reaps them before it
/// ends.) The claim: "never leaked".
fn forgotten_future_leaks() -> Outcome {
    let scratch = Scratch::filled("forget", 1 << 20, 9);
    let direct = scratch.open_direct().ok();
    let leaked_after = |forget: bool| -> (usize, usize) {
        let d = Arc::new(Mutex::new(Vec::new()));
        std::thread::sleep(Duration::from_millis(500)); // earlier drivers' teardown threads
        let before = aio_rings();
        {
            let driver = Driver::new(8).unwrap();
            let thread = driver.spawn_thread().unwrap();
            let file = File::new(&driver, scratch.open());
            let mut op = file.read_at(Vec::with_capacity(16), 0);
            assert!(noop_cx_poll(&mut op).is_pending());
            if let Some(direct) = &direct {
                // Another future, abandoned in flight: its buffer waits for the teardown.
                let dfile = File::new(&driver, direct.try_clone().unwrap());
                let mut read = dfile.read_at(Canary::new(1 << 20, 0xAA, 9, &d), 0);
                assert!(noop_cx_poll(&mut read).is_pending());
                wait_for("submitted", Duration::from_secs(5), || {
                    driver.stats().queued == 0
                });
                drop(read);
            }
            if forget {
                std::mem::forget(op);
            } else {
                drop(op);
            }
            driver.shutdown();
            wait_for("thread ends", Duration::from_secs(5), || {
                thread.is_finished()
            });
        }
        wait_for("teardown", Duration::from_secs(2), || aio_rings() == before);
        let canaries_freed = d.lock().unwrap().len();
        (aio_rings() - before, canaries_freed)
    };
    let (control, control_freed) = leaked_after(false);
    let (forgot, forgot_freed) = leaked_after(true);
    println!(
        "  rings left: {control} without forget (canary freed: {control_freed}), {forgot} after \
         forgetting one queued future (abandoned O_DIRECT canary freed: {forgot_freed})"
    );
    assert_eq!(control, 0);
    assert_eq!(
        forgot, 0,
        "one forgotten future leaked the whole driver: kernel context and ring, for ever"
    );
    Passed
}

/// Dropping a queued future searches the queue from its front (`pending.iter().position`),
/// under the table lock: a batch dropped newest first (as `FuturesUnordered` drops its futures)
/// costs O(n^2), with every other future of the driver locked out meanwhile.
fn quadratic_drop() -> Outcome {
    const N: usize = 20_000;
    let scratch = Scratch::filled("quad", 4096, 1);
    let time_drop = |newest_first: bool| -> Duration {
        let driver = Driver::builder().capacity(64).slots(N).build().unwrap();
        let file = File::new(&driver, scratch.open());
        let mut ops: Vec<_> = (0..N).map(|_| file.read_at(Vec::new(), 0)).collect();
        for op in &mut ops {
            assert!(noop_cx_poll(op).is_pending());
        }
        assert_eq!(driver.stats().queued, N);
        if newest_first {
            ops.reverse();
        }
        let t = Instant::now();
        drop(ops);
        t.elapsed()
    };
    let fifo = time_drop(false);
    let lifo = time_drop(true);
    // And FuturesUnordered, which releases its futures newest first.
    let fu = {
        let driver = Driver::builder().capacity(64).slots(N).build().unwrap();
        let file = File::new(&driver, scratch.open());
        let mut set: futures::stream::FuturesUnordered<_> =
            (0..N).map(|_| file.read_at(Vec::new(), 0)).collect();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        while driver.stats().queued < N {
            let _ = futures::Stream::poll_next(Pin::new(&mut set), &mut cx);
        }
        let t = Instant::now();
        drop(set);
        t.elapsed()
    };
    println!(
        "  dropping {N} queued futures: oldest first {fifo:?}, newest first {lifo:?}, \
         FuturesUnordered {fu:?}"
    );
    assert!(
        lifo < fifo * 20 + Duration::from_millis(100),
        "dropping queued futures newest first is quadratic ({lifo:?} vs {fifo:?})"
    );
    Passed
}

/// "No system call runs under the table lock, and no user code (a waker, a dropped buffer's
/// Drop) under either." `Op::poll` clones (and drops the previous) `Waker` under the table lock,
/// and calls the buffer's `IoBuf` methods there: a waker whose clone looks at the driver (here
/// `Driver::stats`) deadlocks the polling thread.
fn waker_under_lock() -> Outcome {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    fn clone(_: *const ()) -> RawWaker {
        // E.g. an instrumented executor recording the queue depth when it hands out a waker.
        let _ = DRIVER.get().unwrap().stats();
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn noop(_: *const ()) {}
    let driver = DRIVER.get_or_init(|| Driver::new(8).unwrap()).clone();
    let scratch = Scratch::filled("waker", 4096, 1);
    let file = File::new(&driver, scratch.open());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: the vtable's functions ignore the data pointer.
        let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
        let mut cx = Context::from_waker(&waker);
        let mut op = file.read_at(Vec::with_capacity(8), 0);
        let _ = Pin::new(&mut op).poll(&mut cx);
        let _ = tx.send(());
        drop(op);
    });
    let returned = rx.recv_timeout(Duration::from_secs(2)).is_ok();
    assert!(
        returned,
        "Op::poll deadlocked: it clones the waker under the table lock (the thread stays stuck)"
    );
    Passed
}

/// With requests in flight that the eventfd will not announce (`Turn::unsignalled`), the tokio
/// driving task wakes itself at once (`wake_by_ref` + `Pending`), a busy loop for as long as
/// such a request takes; the thread driver sleeps 1 ms between looks. Measured: CPU time of
/// the process during one 128 MiB O_DIRECT read on a descriptor switched to O_DIRECT with
/// fcntl after binding (the crate's own unannounced-completion scenario).
fn unsignalled_spin() -> Outcome {
    const LEN: usize = 128 << 20;
    let scratch = Scratch::filled("spin", LEN, 2);
    if let Err(why) = scratch.open_direct() {
        return skipped(why);
    }
    let cpu = || {
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: fills `ru`.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        Duration::from_micros(
            (ru.ru_utime.tv_sec * 1_000_000
                + ru.ru_utime.tv_usec
                + ru.ru_stime.tv_sec * 1_000_000
                + ru.ru_stime.tv_usec) as u64,
        )
    };
    let run = |toggled: bool| {
        current().block_on(async {
            let driver = Driver::new(8).unwrap();
            driver.spawn_tokio().unwrap();
            let file = if toggled {
                let std_file = scratch.open();
                let flags = rustix::fs::fcntl_getfl(&std_file).unwrap();
                let file = File::new(&driver, std_file);
                rustix::fs::fcntl_setfl(&file, flags | rustix::fs::OFlags::DIRECT).unwrap();
                file
            } else {
                File::new(&driver, scratch.open_direct().unwrap())
            };
            let buf = AlignedBuf::new(LEN).unwrap();
            let (t, c) = (Instant::now(), cpu());
            let (res, _) = file.read_at(buf, 0).await;
            res.unwrap();
            (t.elapsed(), cpu() - c)
        })
    };
    let (cwall, cused) = run(false);
    let (wall, used) = run(true);
    println!(
        "  one 128 MiB O_DIRECT read: opened O_DIRECT {cwall:?} wall, {cused:?} CPU; \
         switched by fcntl (unannounced) {wall:?} wall, {used:?} CPU"
    );
    assert!(
        used < cused * 2 + Duration::from_millis(10),
        "the tokio driving task busy-polled for an unannounced completion ({used:?} CPU in {wall:?})"
    );
    Passed
}

/// Futures that wait for a slot and then go (a timeout, a `select!`) leave a `None` entry in
/// the waiters' queue, removed only when a slot is released: while the slots stay taken (here
/// by a poll on an idle pipe), a retry loop grows the queue without bound, though `Stats`
/// reports no one waiting.
fn room_queue_grows() -> Outcome {
    let driver = Driver::builder().capacity(8).slots(1).build().unwrap();
    let (rd, _wr) = rustix::pipe::pipe().unwrap();
    let pipe = File::new(&driver, rd);
    let mut hold = pipe.poll(PollFlags::IN);
    assert!(noop_cx_poll(&mut hold).is_pending()); // takes the only slot
    let scratch = Scratch::filled("room", 4096, 1);
    let file = File::new(&driver, scratch.open());
    let grow = |n: usize| {
        let before = LIVE.load(SeqCst);
        for _ in 0..n {
            let mut op = file.read_at(Vec::new(), 0);
            assert!(noop_cx_poll(&mut op).is_pending()); // joins the waiters
            drop(op); // and leaves
        }
        LIVE.load(SeqCst) - before
    };
    let first = grow(200_000);
    let second = grow(200_000);
    let s = driver.stats();
    println!(
        "  200,000 futures that waited for a slot and left: +{} KiB, 200,000 more: +{} KiB \
         (stats: waiting_for_slot {})",
        first / 1024,
        second / 1024,
        s.waiting_for_slot
    );
    drop(hold);
    assert!(
        first + second < 64 * 1024,
        "the waiters' queue kept {} KiB for 400,000 futures that had gone",
        (first + second) / 1024
    );
    Passed
}

/// `drive_tokio` turns tokio's "outside a runtime" panic into an error; inside a runtime built
/// without its I/O driver (`Builder::new_current_thread().build()`, timers only...) it panics
/// in `AsyncFd::register_with_interest` instead of returning the error.
fn spawn_tokio_without_io() -> Outcome {
    let driver = Driver::new(4).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { driver.spawn_tokio().map(drop) })
    }));
    match r {
        Ok(res) => {
            println!("  spawn_tokio on a runtime without I/O: {res:?}");
            Passed
        }
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("spawn_tokio on a runtime without I/O panicked: {msg}");
        }
    }
}

/// Every dropped driver gets an OS thread of its own for `io_destroy` (~35 ms): a program
/// that creates and drops drivers in a loop (one per connection, per request, per test...)
/// accumulates teardown threads without limit.
fn teardown_threads() -> Outcome {
    let threads = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|t| {
                let comm = t.as_ref().unwrap().path().join("comm");
                std::fs::read_to_string(comm).is_ok_and(|c| c.starts_with("linux-aio-destr"))
            })
            .count()
    };
    let start = Instant::now();
    let mut peak = 0;
    for i in 0..300 {
        drop(Driver::new(1).unwrap());
        if i % 10 == 0 {
            peak = peak.max(threads());
        }
    }
    let took = start.elapsed();
    peak = peak.max(threads());
    wait_for("teardowns", Duration::from_secs(10), || threads() == 0);
    println!("  300 drivers created and dropped in {took:?}: up to {peak} linux-aio-destroy threads alive at once");
    assert!(peak <= 16, "{peak} teardown threads at once");
    Passed
}

// ======================================================================== what held up

/// "Zero allocations per request beyond the buffer type's": counted with the global allocator
/// on tokio (current-thread: buffered, O_DIRECT, poll; multi-thread) and on futures::executor
/// with the driver thread, buffers reused.
fn zero_allocations() -> Outcome {
    const N: u64 = 2000;
    let scratch = Scratch::filled("alloc", 1 << 20, 5);
    let direct = scratch.open_direct().ok();
    let count = |f: &mut dyn FnMut()| -> u64 {
        ALLOCS.store(0, SeqCst);
        COUNTING.store(true, SeqCst);
        f();
        COUNTING.store(false, SeqCst);
        ALLOCS.load(SeqCst)
    };
    let mut report = Vec::new();
    {
        let rt = current();
        let driver = rt.block_on(async { Driver::new(64).unwrap() });
        let _g = rt.enter();
        driver.spawn_tokio().unwrap();
        let file = File::new(&driver, scratch.open());
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&wr, b"x").unwrap();
        let pipe = File::new(&driver, rd);
        let dfile = direct
            .as_ref()
            .map(|d| File::new(&driver, d.try_clone().unwrap()));
        let mut buf = Some(Vec::with_capacity(512));
        let mut abuf = Some(AlignedBuf::new(4096).unwrap());
        let mut round = |n: u64| {
            rt.block_on(async {
                for _ in 0..n {
                    let mut b = buf.take().unwrap();
                    b.clear();
                    let (res, b) = file.read_at(b, 0).await;
                    res.unwrap();
                    buf = Some(b);
                    pipe.poll(PollFlags::IN).await.unwrap();
                    if let Some(df) = &dfile {
                        let (res, a) = df.read_at(abuf.take().unwrap(), 0).await;
                        res.unwrap();
                        abuf = Some(a);
                    }
                }
            })
        };
        round(200);
        let n = count(&mut || round(N));
        report.push(format!(
            "tokio current-thread: {n} allocations for {N} x (read, poll, O_DIRECT read)"
        ));
        assert!(n <= 4, "{}", report.last().unwrap());
    }
    {
        let driver = Driver::new(64).unwrap();
        let _t = driver.spawn_thread().unwrap();
        let file = File::new(&driver, scratch.open());
        let mut buf = Some(Vec::with_capacity(512));
        let mut round = |n: u64| {
            futures::executor::block_on(async {
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
        let n = count(&mut || round(N));
        report.push(format!(
            "futures::executor + driver thread: {n} allocations for {N} reads"
        ));
        assert!(n <= 4, "{}", report.last().unwrap());
    }
    for r in report {
        println!("  {r}");
    }
    Passed
}

/// Canary O_DIRECT reads (8 MiB, really in flight) lost to `JoinHandle::abort`, to a task that
/// panics holding them, to `Runtime::shutdown_background` and `shutdown_timeout`: every
/// canary dies holding the file's bytes (the kernel had finished), none is leaked, and the
/// dropping thread never waits for io_destroy.
fn abort_shutdown_panic() -> Outcome {
    const LEN: usize = 8 << 20;
    const N: usize = 8;
    let scratch = Scratch::filled("abort", N * LEN, 0x33);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    let mut lines = Vec::new();
    for how in [
        "abort",
        "panic",
        "shutdown_background",
        "shutdown_timeout",
        "drop_multi",
    ] {
        let d = Arc::new(Mutex::new(Vec::new()));
        let rt = if how == "drop_multi" {
            multi()
        } else {
            current()
        };
        let file = direct.try_clone().unwrap();
        let dd = d.clone();
        let in_kernel = rt.block_on(async move {
            let driver = Driver::new(64).unwrap();
            driver.spawn_tokio().unwrap();
            let file = File::new(&driver, file);
            let mut handles = Vec::new();
            for i in 0..N {
                let read = file.read_at(Canary::new(LEN, 0xAA, 0x33, &dd), (i * LEN) as u64);
                handles.push(tokio::spawn(async move {
                    let out = read.await;
                    if how == "panic" {
                        std::panic::resume_unwind(Box::new("deliberate"));
                    }
                    out.0.unwrap();
                }));
            }
            while driver.stats().queued > 0
                || driver.stats().in_kernel + (driver.stats().reaped as usize) < N
            {
                tokio::task::yield_now().await;
            }
            let in_kernel = driver.stats().in_kernel;
            if how == "abort" {
                for h in &handles {
                    h.abort();
                }
                for h in handles {
                    let _ = h.await;
                }
            } else if how == "panic" {
                for h in handles {
                    assert!(h.await.unwrap_err().is_panic());
                }
            }
            in_kernel
        });
        let t = Instant::now();
        match how {
            "shutdown_background" => rt.shutdown_background(),
            "shutdown_timeout" => rt.shutdown_timeout(Duration::from_millis(1)),
            _ => drop(rt),
        }
        let dropped_in = t.elapsed();
        assert!(wait_for("every canary", Duration::from_secs(10), || d
            .lock()
            .unwrap()
            .len()
            == N));
        let deaths = d.lock().unwrap().clone();
        assert!(
            deaths.iter().all(|(ok, _)| *ok),
            "{how}: a buffer freed early: {deaths:?}"
        );
        lines.push(format!(
            "{how}: {in_kernel} in the kernel, runtime gone in {dropped_in:?}, canaries: {:?}",
            deaths
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<std::collections::BTreeSet<_>>()
        ));
        // (A multi-thread runtime's drop also joins its workers: compare with an idle one.)
        let baseline = if how == "drop_multi" {
            let idle = multi();
            idle.block_on(async {});
            let t = Instant::now();
            drop(idle);
            t.elapsed()
        } else {
            Duration::ZERO
        };
        assert!(
            dropped_in < baseline + Duration::from_millis(30),
            "{how}: an executor thread waited ({dropped_in:?}, idle runtime {baseline:?})"
        );
    }
    for l in lines {
        println!("  {l}");
    }
    Passed
}

/// `select!` losers: a 4 MiB O_DIRECT read raced against timers of 0..2 ms, so it is dropped
/// at every stage (never polled, queued, in the kernel, completed but not taken): no canary may
/// die part-written.
fn select_loser_direct_read() -> Outcome {
    const LEN: usize = 4 << 20;
    let scratch = Scratch::filled("select", LEN, 0x44);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    let d = Arc::new(Mutex::new(Vec::new()));
    current().block_on(async {
        let driver = Driver::new(8).unwrap();
        driver.spawn_tokio().unwrap();
        let file = File::new(&driver, direct);
        for k in 0..40u64 {
            tokio::select! {
                _ = file.read_at(Canary::new(LEN, 0xAA, 0x44, &d), 0) => {}
                _ = tokio::time::sleep(Duration::from_micros(k * 50)) => {}
            }
        }
        let start = Instant::now();
        while d.lock().unwrap().len() < 40 {
            assert!(start.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let deaths = d.lock().unwrap().clone();
    let full = deaths.iter().filter(|(ok, _)| *ok).count();
    let partial = deaths
        .iter()
        .filter(|(_, s)| s.starts_with("PARTIAL"))
        .count();
    println!(
        "  40 select! rounds: {full} canaries died full, {} untouched, {partial} part-written",
        40 - full - partial
    );
    assert_eq!(
        partial, 0,
        "a canary was freed while the kernel wrote it: {deaths:?}"
    );
    Passed
}

/// Bad and odd descriptors: O_PATH, epoll, eventfd (the driver's own), /dev/zero, a socket
/// (non-blocking), /proc and /sys files, a huge Vec read, misaligned O_DIRECT Vec, poll on a
/// regular file: each an error or a result, never a panic or hang.
fn odd_descriptors() -> Outcome {
    let scratch = Scratch::filled("odd", 8192, 1);
    current().block_on(async {
        let driver = Driver::new(16).unwrap();
        driver.spawn_tokio().unwrap();
        let t = |f: std::fs::File| File::new(&driver, f);
        macro_rules! timeout {
            ($e:expr) => {
                tokio::time::timeout(Duration::from_secs(5), $e)
            };
        }
        let mut lines = Vec::new();
        // O_PATH
        let opath = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(&scratch.0)
            .unwrap();
        let f = t(opath);
        let (r, _) = timeout!(f.read_at(Vec::with_capacity(8), 0)).await.unwrap();
        lines.push(format!("O_PATH read: {r:?}"));
        let r = timeout!(f.poll(PollFlags::IN)).await.unwrap();
        lines.push(format!("O_PATH poll: {r:?}"));
        // epoll
        let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
        let f = File::new(&driver, ep);
        let (r, _) = timeout!(f.read_at(Vec::with_capacity(8), 0)).await.unwrap();
        lines.push(format!("epoll read: {r:?}"));
        let r = timeout!(f.sync_all()).await.unwrap();
        lines.push(format!("epoll fsync: {r:?}"));
        // /dev/zero, huge length (2 GiB Vec is too much memory: 64 MiB), /proc, /sys
        let z = t(std::fs::File::open("/dev/zero").unwrap());
        let (r, b) = timeout!(z.read_at(Vec::with_capacity(64 << 20), 0))
            .await
            .unwrap();
        lines.push(format!("/dev/zero 64 MiB: {r:?} len {}", b.len()));
        let p = t(std::fs::File::open("/proc/self/stat").unwrap());
        let (r, _) = timeout!(p.read_at(Vec::with_capacity(4096), 0))
            .await
            .unwrap();
        lines.push(format!("/proc/self/stat: {r:?}"));
        let s = t(
            std::fs::File::open("/sys/kernel/mm/transparent_hugepage/enabled")
                .or_else(|_| std::fs::File::open("/proc/version"))
                .unwrap(),
        );
        let (r, _) = timeout!(s.read_at(Vec::with_capacity(4096), 0))
            .await
            .unwrap();
        lines.push(format!("sysfs: {r:?}"));
        // The driver's own eventfd (a duplicate)
        let e = File::new(&driver, driver.eventfd().try_clone_to_owned().unwrap());
        let r = timeout!(e.poll(PollFlags::IN)).await;
        lines.push(format!("own eventfd poll: {:?}", r.map(|r| r.is_ok())));
        // A non-blocking socket pair
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let f = File::new(&driver, a);
        let (r, _) = timeout!(f.read_at(Vec::with_capacity(8), 0)).await.unwrap();
        lines.push(format!("non-blocking socket read: {r:?}"));
        // Misaligned O_DIRECT with a small Vec; poll on a regular file
        if let Ok(dfile) = scratch.open_direct() {
            let f = File::new(&driver, dfile);
            let (r, _) = timeout!(f.read_at(Vec::with_capacity(4096), 0))
                .await
                .unwrap();
            lines.push(format!("O_DIRECT into a malloc'd 4 KiB Vec: {r:?}"));
            let (r, _) = timeout!(f.write_at(vec![1u8; 513], 0)).await.unwrap();
            lines.push(format!("O_DIRECT 513-byte write: {r:?}"));
        }
        let r = timeout!(t(scratch.open()).poll(PollFlags::OUT))
            .await
            .unwrap();
        lines.push(format!("poll OUT on a regular file: {r:?}"));
        // The poll of the driver's own eventfd was dropped (timed out) and cancelled: the
        // kernel completes a cancelled poll from a work queue, a millisecond or two later,
        // possibly after the requests above have finished. Give it up to 3 s.
        let t0 = Instant::now();
        while driver.stats().in_kernel != 0 && t0.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lines.push(format!("everything reaped within {:?}", t0.elapsed()));
        let s = driver.stats();
        assert_eq!((s.queued, s.in_kernel), (0, 0));
        for l in lines {
            println!("  {l}");
        }
    });
    Passed
}

/// More slots than the ring holds, with O_DIRECT reads (truly asynchronous, announced by the
/// eventfd) rather than polls: EAGAIN is back-pressure, every read completes with its bytes.
fn ring_full_direct() -> Outcome {
    const N: usize = 600;
    let scratch = Scratch::filled("ringfull", N * 4096, 0x66);
    let direct = match scratch.open_direct() {
        Ok(f) => f,
        Err(why) => return skipped(why),
    };
    multi().block_on(async {
        let driver = Driver::builder().capacity(1).slots(N).build().unwrap();
        driver.spawn_tokio().unwrap();
        let file = File::new(&driver, direct);
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let file = file.clone();
                tokio::spawn(async move {
                    let (r, b) = file
                        .read_at(AlignedBuf::new(4096).unwrap(), (i * 4096) as u64)
                        .await;
                    assert_eq!(r.unwrap(), 4096);
                    assert!(b.iter().all(|&x| x == 0x66));
                })
            })
            .collect();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .expect("hung")
                .unwrap();
        }
        let s = driver.stats();
        println!(
            "  {N} O_DIRECT reads on a one-page ring: ring_full {} times, {} submits",
            s.ring_full, s.submit_calls
        );
        assert_eq!((s.queued, s.in_kernel), (0, 0));
    });
    Passed
}

/// Several threads calling `Driver::turn` concurrently while others create, poll and drop
/// requests at random points (queued, in flight, done) on a 4-slot driver: no panic, no lost
/// wake-up, every slot comes back.
fn many_threads_turning() -> Outcome {
    let scratch = Scratch::filled("turns", 64 * 1024, 0x11);
    let driver = Driver::builder().capacity(4).slots(4).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut turners = Vec::new();
    for _ in 0..2 {
        let (driver, stop) = (driver.clone(), stop.clone());
        turners.push(std::thread::spawn(move || {
            let waker = futures::task::noop_waker();
            while !stop.load(Relaxed) {
                driver.turn(&waker);
                std::thread::yield_now();
            }
        }));
    }
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let pipe = File::new(&driver, rd);
    let file = File::new(&driver, scratch.open());
    let mut workers = Vec::new();
    for w in 0..3u64 {
        let (file, pipe) = (file.clone(), pipe.clone());
        workers.push(std::thread::spawn(move || {
            let mut seed = 0x9e3779b97f4a7c15u64 ^ w;
            let mut rnd = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            let mut completed = 0;
            for _ in 0..3000 {
                let polls = rnd() % 4;
                if rnd() % 3 == 0 {
                    let mut op = pipe.poll(PollFlags::IN);
                    for _ in 0..polls {
                        let _ = noop_cx_poll(&mut op);
                    }
                    drop(op);
                } else {
                    let mut op = file.read_at(Vec::with_capacity(64), (rnd() % 1000) * 64);
                    let mut done = false;
                    for _ in 0..polls {
                        if let Poll::Ready((r, b)) = noop_cx_poll(&mut op) {
                            assert_eq!(r.unwrap(), 64);
                            assert!(b.iter().all(|&x| x == 0x11));
                            done = true;
                            completed += 1;
                            break;
                        }
                        std::thread::yield_now();
                    }
                    if !done {
                        drop(op);
                    }
                }
            }
            completed
        }));
    }
    let completed: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    // Every slot must come back (cancelled polls reaped, abandoned reads released).
    let ok = wait_for("slots drain", Duration::from_secs(10), || {
        let s = driver.stats();
        s.queued == 0 && s.in_kernel == 0
    });
    stop.store(true, Relaxed);
    for t in turners {
        t.join().unwrap();
    }
    drop(wr);
    println!(
        "  {completed} reads completed under concurrent turns; {:?}",
        driver.stats()
    );
    assert!(ok, "slots did not drain: {:?}", driver.stats());
    // And the driver still works.
    let mut op = file.read_at(Vec::with_capacity(8), 0);
    assert!(noop_cx_poll(&mut op).is_pending());
    driver.turn(&futures::task::noop_waker());
    assert!(noop_cx_poll(&mut op).is_ready());
    Passed
}
