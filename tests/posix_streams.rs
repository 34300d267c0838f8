//! Adversarial review of the POSIX layer (`linux_aio::posix`): reproducers for defects and
//! probes of the rules that held up. Every test runs in a re-executed child process that is
//! killed after 20 s, so a hang (in the layer or inside io_submit) is reported, never waited for.
//!
//! `cargo test --test posix_streams [filter]`; in synchronous (ENOSYS) mode:
//! `LINUX_AIO_FORCE_ENOSYS=1 cargo test --target-dir target/enosys --test posix_streams`.

#[path = "support/reexec.rs"]
mod reexec;
#[path = "support/scratch.rs"]
mod scratch;
#[path = "support/thread.rs"]
mod thread;

use std::cell::{Cell, RefCell};
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use linux_aio::posix::{self, Aio, Aiocb, CancelStatus, Id, ListMode, Notify, SyncMode};
use linux_aio::{Context, Errno};
use scratch::{aligned, open_direct, Scratch};

enum Outcome {
    Passed,
    Skipped(String),
}
use Outcome::{Passed, Skipped};

type Test = (&'static str, fn() -> Outcome);

const TESTS: &[Test] = &[
    // --- defects (expected to FAIL) ---
    (
        "zero_length_read_on_empty_pipe_completes",
        zero_length_read_on_empty_pipe_completes,
    ),
    (
        "zero_length_write_on_full_pipe_completes",
        zero_length_write_on_full_pipe_completes,
    ),
    (
        "write_to_listening_socket_fails_like_write",
        write_to_listening_socket_fails_like_write,
    ),
    (
        "read_on_listening_socket_fails_like_read",
        read_on_listening_socket_fails_like_read,
    ),
    (
        "socket_write_not_stuck_behind_pending_read",
        socket_write_not_stuck_behind_pending_read,
    ),
    (
        "pty_write_never_blocks_a_call",
        pty_write_never_blocks_a_call,
    ),
    ("pty_nowait_probe", pty_nowait_probe),
    ("fifo_probe", fifo_probe),
    (
        "fifo_read_without_writer_waits_for_one",
        fifo_read_without_writer_waits_for_one,
    ),
    (
        "fifo_rdwr_read_without_data_fails_clearly",
        fifo_rdwr_read_without_data_fails_clearly,
    ),
    (
        "fifo_rdwr_partial_write_reports_count",
        fifo_rdwr_partial_write_reports_count,
    ),
    (
        "fifo_big_write_reports_its_count",
        fifo_big_write_reports_its_count,
    ),
    ("pty_read_fails_clearly", pty_read_fails_clearly),
    (
        "fsync_on_read_only_fd_is_ebadf",
        fsync_on_read_only_fd_is_ebadf,
    ),
    ("fsync_of_a_directory_works", fsync_of_a_directory_works),
    (
        "nonblocking_pipe_write_whole_in_every_mode",
        nonblocking_pipe_write_whole_in_every_mode,
    ),
    (
        "panicking_callback_in_aio_read_leaks_slot",
        panicking_callback_in_aio_read_leaks_slot,
    ),
    (
        "reqprio_out_of_range_is_einval",
        reqprio_out_of_range_is_einval,
    ),
    (
        "in_flight_at_layer_end_still_notified",
        in_flight_at_layer_end_still_notified,
    ),
    (
        "panicking_callback_in_suspend_then_continue",
        panicking_callback_in_suspend_then_continue,
    ),
    // --- probes that held up (expected to pass; the two probes print diagnostics) ---
    (
        "fsync_waits_for_earlier_direct_write",
        fsync_waits_for_earlier_direct_write,
    ),
    ("big_writes_pipe_1m", big_writes_pipe_1m),
    ("big_writes_pipe_16m", big_writes_pipe_16m),
    ("big_writes_socket_1m", big_writes_socket_1m),
    ("big_writes_socket_16m", big_writes_socket_16m),
    ("reader_closes_mid_write_pipe", reader_closes_mid_write_pipe),
    (
        "reader_closes_mid_write_socket",
        reader_closes_mid_write_socket,
    ),
    ("datagram_boundaries_kept", datagram_boundaries_kept),
    ("seqpacket_boundaries_kept", seqpacket_boundaries_kept),
    ("dev_null_and_zero", dev_null_and_zero),
    ("cancel_none_mixed_states", cancel_none_mixed_states),
    (
        "cancel_reissue_loop_no_lost_data",
        cancel_reissue_loop_no_lost_data,
    ),
    ("return_twice_and_id_reuse", return_twice_and_id_reuse),
    ("suspend_timeout_accuracy", suspend_timeout_accuracy),
    (
        "suspend_eintr_with_sa_restart",
        suspend_eintr_with_sa_restart,
    ),
    (
        "lio_wait_eintr_with_sa_restart",
        lio_wait_eintr_with_sa_restart,
    ),
    (
        "kernel_ring_full_requests_queue",
        kernel_ring_full_requests_queue,
    ),
    (
        "panicking_callback_at_layer_end",
        panicking_callback_at_layer_end,
    ),
    (
        "cancelled_requests_notified_once",
        cancelled_requests_notified_once,
    ),
    (
        "direct_read_in_flight_at_layer_end",
        direct_read_in_flight_at_layer_end,
    ),
];

fn main() {
    if let Ok(name) = std::env::var("ATK_CHILD") {
        let test = TESTS
            .iter()
            .find(|(n, _)| *n == name)
            .expect("known test")
            .1;
        match test() {
            Passed => std::process::exit(0),
            Skipped(why) => {
                println!("{why}");
                std::process::exit(3)
            }
        }
    }
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    // Inside the qemu-system guests of `cargo xtask vm` (which set LINUX_AIO_DIRECT_DIR), only
    // the tests whose outcome depends on the kernel version run, to keep the guest short.
    let guest = std::env::var_os("LINUX_AIO_DIRECT_DIR").is_some();
    const GUEST: &[&str] = &[
        "zero_length",
        "listening",
        "socket_write_not_stuck",
        "pty_",
        "fifo_",
        "datagram",
        "seqpacket",
        "big_writes_pipe_1m",
        "big_writes_socket_1m",
        "reader_closes",
    ];
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    for (name, _) in TESTS {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        if guest && !GUEST.iter().any(|g| name.contains(g)) {
            continue;
        }
        let (code, out) = run_child(name, Duration::from_secs(20));
        if let Some(why) = reexec::start_failure(code, &out) {
            skipped += 1;
            println!("test posix_streams::{name} ... SKIPPED: {why}");
            continue;
        }
        match code {
            Some(0) => {
                passed += 1;
                println!("test posix_streams::{name} ... ok");
            }
            Some(3) => {
                skipped += 1;
                println!("test posix_streams::{name} ... SKIPPED: {}", out.trim());
            }
            other => {
                failed += 1;
                failures.push(*name);
                let how = match other {
                    None => "KILLED after 20 s (hang)".to_string(),
                    Some(c) => format!("exit {c}"),
                };
                println!("test posix_streams::{name} ... FAILED ({how})");
                for line in out.lines().filter(|l| !l.trim().is_empty()) {
                    println!("    | {line}");
                }
            }
        }
    }
    if !failures.is_empty() {
        println!("failures in posix_streams: {}", failures.join(", "));
    }
    println!("posix_streams: {passed} passed, {failed} failed, {skipped} skipped");
    std::process::exit(if failed == 0 { 0 } else { 1 })
}

/// Runs test `name` in a child; `None` if it had to be killed.
fn run_child(name: &str, limit: Duration) -> (Option<i32>, String) {
    let dir = std::env::temp_dir();
    let out_path = dir.join(format!("atk-posix-{}-{name}.out", std::process::id()));
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = reexec::self_command()
        .env("ATK_CHILD", name)
        .env("RUST_BACKTRACE", "0")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.code().unwrap_or(-1));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    (code, text)
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn ctx() -> Option<Context> {
    posix::context(16).expect("io_setup")
}

fn need_async(ctx: &Option<Context>) -> Option<Outcome> {
    ctx.is_none()
        .then(|| Skipped("synchronous (ENOSYS) mode: nothing is held in progress".into()))
}

fn pipe(nonblock: bool) -> (OwnedFd, OwnedFd) {
    let mut flags = rustix::pipe::PipeFlags::CLOEXEC;
    if nonblock {
        flags |= rustix::pipe::PipeFlags::NONBLOCK;
    }
    rustix::pipe::pipe_with(flags).unwrap()
}

fn fill(w: &OwnedFd) -> usize {
    // `w` must be non-blocking.
    let chunk = [0x55u8; 65536];
    let mut total = 0;
    loop {
        match rustix::io::write(w, &chunk) {
            Ok(n) => total += n,
            Err(Errno::AGAIN) => return total,
            Err(e) => panic!("fill: {e}"),
        }
    }
}

/// Waits (on the layer) until `id` is done or `limit` passes; true if done.
fn settle<const N: usize>(aio: &Aio<'_, '_, '_, N>, id: Id, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while aio.aio_error(id) == Err(Errno::INPROGRESS) {
        if Instant::now() > deadline {
            return false;
        }
        match aio.aio_suspend(&[id], Some(Duration::from_millis(20))) {
            Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(e) => panic!("aio_suspend: {e}"),
        }
    }
    true
}

fn set_pipe_size(fd: &OwnedFd, size: i32) {
    // SAFETY: fcntl on a descriptor we own.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
    assert!(r >= size, "F_SETPIPE_SZ");
}

// ---------------------------------------------------------------------------------------------
// Defects

/// read() of 0 bytes returns 0 at once ("if nbyte is zero, the read() function ... shall
/// return zero and have no other results"). aio_read reads "as if read()": a 0-byte aio_read
/// must complete with 0, even on an empty pipe. The layer waits for POLLIN first, for ever.
fn zero_length_read_on_empty_pipe_completes() -> Outcome {
    let mut ctx = ctx();
    let (r, w) = pipe(true);
    let mut empty: [u8; 0] = [];
    assert_eq!(
        rustix::io::read(&r, &mut [0u8; 0]),
        Ok(0),
        "read() of 0 bytes"
    );
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut empty, 0)).unwrap();
        let done = settle(aio, id, Duration::from_secs(2));
        assert!(
            done,
            "0-byte aio_read on an empty pipe still EINPROGRESS after 2 s"
        );
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(0));
    })
    .unwrap();
    drop(w);
    Passed
}

/// write() of 0 bytes to a pipe returns 0 at once, even when the pipe is full. The layer waits
/// for POLLOUT first (for ever, if nobody reads).
fn zero_length_write_on_full_pipe_completes() -> Outcome {
    let mut ctx = ctx();
    let (r, w) = pipe(true);
    fill(&w);
    assert_eq!(rustix::io::write(&w, &[]), Ok(0), "write() of 0 bytes");
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(w.as_fd(), &[], 0)).unwrap();
        let done = settle(aio, id, Duration::from_secs(2));
        assert!(
            done,
            "0-byte aio_write on a full pipe still EINPROGRESS after 2 s"
        );
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(0));
    })
    .unwrap();
    drop(r);
    Passed
}

/// write() on a listening socket fails at once (ENOTCONN). The module docs: "Requests that
/// could only wait for ever (a read on a write-only descriptor, a directory) are refused when
/// queued." A listening socket never polls writable, so aio_write waits for ever.
fn write_to_listening_socket_fails_like_write() -> Outcome {
    let mut ctx = ctx();
    let dir = std::env::temp_dir().join(format!("atk-listen-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let listener = UnixListener::bind(&dir).unwrap();
    let _ = std::fs::remove_file(&dir);
    let direct = rustix::io::write(listener.as_fd(), b"x");
    println!("write() on a listening socket: {direct:?}");
    assert!(direct.is_err());
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        match aio.aio_write(Aiocb::write(listener.as_fd(), b"x", 0)) {
            Err(e) => println!("aio_write refused at once: {e:?}"),
            Ok(id) => {
                let done = settle(aio, id, Duration::from_secs(2));
                assert!(
                    done,
                    "aio_write on a listening socket still EINPROGRESS after 2 s"
                );
                let res = aio.aio_return(id).unwrap().result;
                println!("aio_write result: {res:?}");
                assert!(res.is_err());
            }
        }
    })
    .unwrap();
    Passed
}

/// read() on a listening AF_UNIX socket fails at once (EINVAL); aio_read waits for a
/// connection instead (POLLIN on a listener means "connection pending").
fn read_on_listening_socket_fails_like_read() -> Outcome {
    let mut ctx = ctx();
    let dir = std::env::temp_dir().join(format!("atk-listen-r-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let listener = UnixListener::bind(&dir).unwrap();
    let _ = std::fs::remove_file(&dir);
    let mut one = [0u8; 1];
    let direct = rustix::io::read(listener.as_fd(), &mut one);
    println!("read() on a listening socket: {direct:?}");
    assert!(direct.is_err());
    let mut buf = [0u8; 8];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        match aio.aio_read(Aiocb::read(listener.as_fd(), &mut buf, 0)) {
            Err(e) => println!("aio_read refused at once: {e:?}"),
            Ok(id) => {
                let done = settle(aio, id, Duration::from_secs(2));
                assert!(
                    done,
                    "aio_read on a listening socket still EINPROGRESS after 2 s"
                );
                assert!(aio.aio_return(id).unwrap().result.is_err());
            }
        }
    })
    .unwrap();
    Passed
}

/// A socket is full duplex: a read() blocked in one thread does not stop a write() in another.
/// The layer runs "one request per descriptor at a time", reads and writes alike, so a
/// request/response exchange posted as (read the answer, then write the question) deadlocks:
/// the peer answers only after it gets the question, which the layer never sends.
fn socket_write_not_stuck_behind_pending_read() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let (a, mut b) = UnixStream::pair().unwrap();
    let peer = std::thread::spawn(move || {
        let mut q = [0u8; 4];
        b.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        if b.read_exact(&mut q).is_ok() {
            b.write_all(b"pong").unwrap();
            true
        } else {
            false
        }
    });
    let mut answer = [0u8; 4];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let read = aio.aio_read(Aiocb::read(a.as_fd(), &mut answer, 0)).unwrap();
        let write = aio.aio_write(Aiocb::write(a.as_fd(), b"ping", 0)).unwrap();
        let wrote = settle(aio, write, Duration::from_secs(2));
        assert!(wrote, "aio_write of 4 bytes on an idle socket still EINPROGRESS after 2 s (stuck behind the read)");
        assert!(settle(aio, read, Duration::from_secs(2)));
        assert_eq!(aio.aio_return(read).unwrap().result, Ok(4));
    })
    .unwrap();
    assert!(peer.join().unwrap());
    assert_eq!(&answer, b"pong");
    Passed
}

/// A pty pair, or SKIPPED where there is none (no /dev/ptmx or devpts).
fn pty_pair() -> Result<(OwnedFd, OwnedFd), Outcome> {
    // SAFETY: plain libc calls creating a pty pair we own.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if m < 0 {
            let e = std::io::Error::last_os_error();
            return Err(Skipped(format!(
                "no pseudo-terminal here (posix_openpt: {e})"
            )));
        }
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let name = libc::ptsname(m);
        assert!(!name.is_null());
        let s = libc::open(name, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(s >= 0);
        Ok((OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)))
    }
}

/// Diagnostic (always passes): what the kernel answers to POLL and writes on a FIFO.
fn fifo_probe() -> Outcome {
    use linux_aio::{Request, RwFlags};
    let Ok(mut ctx) = Context::new(8) else {
        return Skipped("no kernel AIO".into());
    };
    let path = std::env::temp_dir().join(format!("atk-fifo3-{}", std::process::id()));
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
    let w = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let _ = std::fs::remove_file(&path);
    ctx.scope::<1, _>(|s| {
        let show = |what: &str, r: Result<linux_aio::Ticket, linux_aio::Rejected<'_>>| {
            let res = match r {
                Err(rej) => format!("io_submit: {:?}", rej.error),
                Ok(_) => format!(
                    "event: {:?}",
                    s.wait(1, None).unwrap().next().unwrap().event.result()
                ),
            };
            println!("FIFO {what}: {res}");
        };
        show(
            "poll OUT",
            s.submit(Request::poll(w.as_fd(), rustix::event::PollFlags::OUT)),
        );
        show(
            "write NOWAIT",
            s.submit(Request::write(w.as_fd(), b"abc", 0).flags(RwFlags::NOWAIT)),
        );
        show("write", s.submit(Request::write(w.as_fd(), b"abc", 0)));
    });
    let mut pctx = posix::context(8).unwrap();
    for len in [70_000usize, 200_000, 1 << 20] {
        // The reader drains the FIFO until told to stop, and is always joined: a reader left
        // behind would compete with the reads below, and a transfer the layer makes right after
        // a readiness report (no RWF_NOWAIT for FIFOs here) would block if it took the data
        // first (the descriptor is not O_NONBLOCK): the hang the i686 6.1 guest once showed.
        use std::os::unix::fs::OpenOptionsExt;
        let r2 = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/proc/self/fd/".to_string() + &w.as_raw_fd().to_string())
            .unwrap();
        let data = vec![1u8; len];
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut got = 0;
                let mut buf = vec![0u8; 30_000];
                loop {
                    match rustix::io::read(&r2, &mut buf) {
                        Ok(n) => got += n,
                        Err(Errno::AGAIN) if stop.load(std::sync::atomic::Ordering::SeqCst) => {
                            break got
                        }
                        Err(Errno::AGAIN) => std::thread::sleep(Duration::from_millis(1)),
                        Err(e) => panic!("reader: {e}"),
                    }
                }
            }
        });
        let r = posix::with::<2, _>(pctx.as_mut(), |aio| {
            let id = aio.aio_write(Aiocb::write(w.as_fd(), &data, 0)).unwrap();
            settle(aio, id, Duration::from_secs(5));
            aio.aio_return(id).map(|r| r.result)
        });
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let drained = reader.join().unwrap();
        println!(
            "posix aio_write of {len} to the FIFO with a reader thread: {r:?} ({drained} read)"
        );
        if r != Ok(Ok(Ok(len))) {
            break;
        }
    }
    for len in [3usize, 4096, 4097, 10000] {
        let data = vec![1u8; len];
        let mut sink = vec![0u8; 20000];
        let r = posix::with::<2, _>(pctx.as_mut(), |aio| {
            let id = aio.aio_write(Aiocb::write(w.as_fd(), &data, 0)).unwrap();
            settle(aio, id, Duration::from_secs(2));
            let res = aio.aio_return(id).unwrap().result;
            let rd = aio.aio_read(Aiocb::read(w.as_fd(), &mut sink, 0)).unwrap();
            settle(aio, rd, Duration::from_secs(2));
            (res, aio.aio_return(rd).unwrap().result)
        });
        println!("posix aio_write of {len} to the FIFO, then aio_read: {r:?}");
    }
    Passed
}

/// Diagnostic (always passes): what the kernel answers to RWF_NOWAIT writes on a pty master.
fn pty_nowait_probe() -> Outcome {
    use linux_aio::{Request, RwFlags};
    let Ok(mut ctx) = Context::new(8) else {
        return Skipped("no kernel AIO".into());
    };
    let (m, _s) = match pty_pair() {
        Ok(p) => p,
        Err(skip) => return skip,
    };
    let chunk = [b'x'; 4096];
    ctx.scope::<1, _>(|s| {
        for i in 0..40 {
            let r = s.submit(Request::write(m.as_fd(), &chunk, 0).flags(RwFlags::NOWAIT));
            let res = match r {
                Err(rej) => format!("io_submit: {:?}", rej.error),
                Ok(_) => format!(
                    "event: {:?}",
                    s.wait(1, None).unwrap().next().unwrap().event.result()
                ),
            };
            println!("RWF_NOWAIT write {i} of 4096 to a pty master: {res}");
            if !res.contains("Ok(4096)") {
                break;
            }
        }
    });
    Passed
}

/// "Sockets and pipes ... wait for readiness with a kernel POLL and transfer with RWF_NOWAIT
/// ... so no call blocks." A pty is a character device ("stream"). Every layer call must return
/// promptly even when nobody reads the other side.
fn pty_write_never_blocks_a_call() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let (master, slave) = match pty_pair() {
        Ok(p) => p,
        Err(skip) => return skip,
    };
    // Probe whether the kernel takes RWF_NOWAIT on a pty, for the report.
    println!("pty: writing 1 MiB to the master, nobody reads the slave");
    let big = scratch::pattern(1 << 20, 3);
    let slow = Cell::new(Duration::ZERO);
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        slow.set(slow.get().max(t.elapsed()));
    };
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = Cell::new(None);
        time(&|| {
            id.set(Some(
                aio.aio_write(Aiocb::write(master.as_fd(), &big, 0))
                    .unwrap(),
            ))
        });
        let id = id.get().unwrap();
        println!("aio_write returned");
        for _ in 0..50 {
            time(&|| {
                let _ = aio.aio_error(id);
            });
            time(&|| {
                let _ = aio.aio_suspend(&[id], Some(Duration::from_millis(5)));
            });
        }
        println!("slowest call so far: {:?}", slow.get());
        time(&|| {
            let c = aio.aio_cancel(master.as_fd(), Some(id));
            println!("aio_cancel: {c:?}");
        });
    })
    .unwrap();
    drop(slave);
    assert!(
        slow.get() < Duration::from_secs(1),
        "a layer call took {:?}",
        slow.get()
    );
    Passed
}

/// read() on a FIFO that no writer has opened yet returns 0 (end of file) at once, blocking or
/// not. Linux's poll() reports nothing on such a FIFO until a writer has come and gone, so the
/// layer's aio_read waits, as any poll-based event loop does (a documented limit): here it must
/// stay in progress, and end with 0 once a writer has come and gone.
fn fifo_read_without_writer_waits_for_one() -> Outcome {
    let mut ctx = ctx();
    let path = std::env::temp_dir().join(format!("atk-fifo-{}", std::process::id()));
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
    use std::os::unix::fs::OpenOptionsExt;
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .unwrap();
    let mut one = [0u8; 4];
    let direct = rustix::io::read(fifo.as_fd(), &mut one);
    println!("read() on a FIFO without writer: {direct:?}");
    let mut buf = [0u8; 4];
    posix::with::<2, _>(ctx.as_mut(), |aio| {
        let id = aio
            .aio_read(Aiocb::read(fifo.as_fd(), &mut buf, 0))
            .unwrap();
        if aio.is_asynchronous() {
            assert!(
                !settle(aio, id, Duration::from_millis(200)),
                "no writer came yet"
            );
        }
        // A writer comes and goes: end of file.
        drop(std::fs::OpenOptions::new().write(true).open(&path).unwrap());
        assert!(
            settle(aio, id, Duration::from_secs(2)),
            "still waiting after the writer left"
        );
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(0));
    })
    .unwrap();
    let _ = std::fs::remove_file(&path);
    Passed
}

fn fifo_rdwr() -> OwnedFd {
    let path = std::env::temp_dir().join(format!("atk-fifo-rw-{}", std::process::id()));
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let _ = std::fs::remove_file(&path);
    f.into()
}

/// A FIFO opened O_RDWR (the usual way to hold one open without a peer): read() blocks until
/// data comes. The kernel refuses an aio POLL on a file that sleeps on two wait queues
/// (pipe_poll waits on rd_wait and wr_wait for an O_RDWR file), so the layer cannot wait for
/// it: a read with no data fails at once with EOPNOTSUPP (a documented limit), never hangs and
/// never reports EINVAL; with data there, it is read.
fn fifo_rdwr_read_without_data_fails_clearly() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let fifo = fifo_rdwr();
    let (mut buf, mut buf2) = ([0u8; 8], [0u8; 8]);
    posix::with::<2, _>(ctx.as_mut(), |aio| {
        let id = aio
            .aio_read(Aiocb::read(fifo.as_fd(), &mut buf, 0))
            .unwrap();
        assert!(
            settle(aio, id, Duration::from_secs(2)),
            "waited for an unpollable FIFO"
        );
        let early = aio.aio_return(id).unwrap().result;
        println!("aio_read on an empty O_RDWR FIFO: {early:?}");
        assert_eq!(early, Err(Errno::OPNOTSUPP));
        rustix::io::write(&fifo, b"data").unwrap();
        let id = aio
            .aio_read(Aiocb::read(fifo.as_fd(), &mut buf2, 0))
            .unwrap();
        assert!(settle(aio, id, Duration::from_secs(2)));
        let r = aio.aio_return(id).unwrap().result;
        println!("aio_read on an O_RDWR FIFO holding data: {r:?}");
        assert!(r == Ok(4) || r == Err(Errno::OPNOTSUPP), "{r:?}");
    })
    .unwrap();
    Passed
}

/// Same cause, worse effect: a write that has already transferred part of its data, then finds
/// the FIFO full, completes with EINVAL, although write() "shall return the number of bytes
/// written" (and the module docs: "then it completes with the count written, if any"). The
/// caller is told nothing was written; the bytes are in the FIFO.
fn fifo_rdwr_partial_write_reports_count() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let fifo = fifo_rdwr();
    let data = scratch::pattern(200_000, 45);
    let res = posix::with::<2, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(fifo.as_fd(), &data, 0)).unwrap();
        let deadline = Instant::now() + Duration::from_millis(500);
        while aio.aio_error(id) == Err(Errno::INPROGRESS) && Instant::now() < deadline {
            let _ = aio.aio_suspend(&[id], Some(Duration::from_millis(10)));
        }
        let e = aio.aio_error(id);
        println!("nobody reads: after 500 ms aio_error = {e:?}");
        if e == Err(Errno::INPROGRESS) {
            assert_eq!(
                aio.aio_cancel(fifo.as_fd(), Some(id)),
                Ok(CancelStatus::NotCanceled)
            );
        }
        // Drain the FIFO (non-blocking) so that an in-progress write can finish.
        rustix::fs::fcntl_setfl(&fifo, rustix::fs::OFlags::NONBLOCK).unwrap();
        let mut got = 0;
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(5);
        while aio.aio_error(id) == Err(Errno::INPROGRESS) && Instant::now() < deadline {
            while let Ok(n) = rustix::io::read(&fifo, &mut buf) {
                got += n;
            }
            let _ = aio.aio_suspend(&[id], Some(Duration::from_millis(5)));
        }
        while let Ok(n) = rustix::io::read(&fifo, &mut buf) {
            got += n;
        }
        (aio.aio_return(id).unwrap().result, got)
    })
    .unwrap();
    println!(
        "aio_write of {} bytes -> {:?}; bytes that reached the FIFO: {}",
        data.len(),
        res.0,
        res.1
    );
    assert_eq!(res.0, Ok(res.1), "the result must be the count written");
    Passed
}

/// A terminal: n_tty_poll sleeps on read_wait and write_wait, so (as for the O_RDWR FIFO) the
/// kernel refuses the layer's POLL, and an aio_read on a terminal fails at once with
/// EOPNOTSUPP (a documented limit) instead of hanging or claiming EINVAL.
fn pty_read_fails_clearly() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let (master, slave) = match pty_pair() {
        Ok(p) => p,
        Err(skip) => return skip,
    };
    let mut buf = [0u8; 64];
    posix::with::<2, _>(ctx.as_mut(), |aio| {
        let id = aio
            .aio_read(Aiocb::read(master.as_fd(), &mut buf, 0))
            .unwrap();
        assert!(
            settle(aio, id, Duration::from_secs(2)),
            "waited for an unpollable terminal"
        );
        let r = aio.aio_return(id).unwrap().result;
        println!("aio_read on a pty master without input: {r:?}");
        assert!(
            r == Err(Errno::OPNOTSUPP) || r == Err(Errno::INVAL),
            "{r:?}"
        );
        drop(slave);
    })
    .unwrap();
    Passed
}

/// POSIX aio_fsync: "all I/O operations associated with the file indicated by the file
/// descriptor aio_fildes ... and queued at the time of the call to aio_fsync() shall be
/// completed as if by a call to fsync()". An O_DIRECT aio_write queued before the aio_fsync is
/// still in flight when the layer reports the fsync done.
fn fsync_waits_for_earlier_direct_write() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let s = Scratch::new("fsync-order");
    {
        // Allocated blocks inside i_size: the O_DIRECT overwrites below are truly asynchronous
        // (ext4 waits inside io_submit for writes that extend the file).
        let mut f = &s.file;
        let zeros = vec![0u8; 64 << 20];
        for _ in 0..5 {
            f.write_all(&zeros).unwrap();
        }
        f.sync_all().unwrap();
    }
    let Some(file) = open_direct(&s.path) else {
        return Skipped("O_DIRECT unsupported in the temp directory".into());
    };
    let mut storage = Vec::new();
    let buf = aligned(&mut storage, 64 << 20);
    buf.fill(7);
    let buf = &*buf;
    let mut violations = 0;
    for round in 0..5u64 {
        let out = posix::with::<4, _>(ctx.as_mut(), |aio| {
            let w = aio
                .aio_write(Aiocb::write(file.as_fd(), buf, round * (64 << 20)))
                .unwrap();
            let mode = if round % 2 == 0 {
                SyncMode::DataSync
            } else {
                SyncMode::Sync
            };
            let f = aio.aio_fsync(Aiocb::sync(file.as_fd(), mode)).unwrap();
            println!("right after aio_fsync: write {:?}", aio.aio_error(w));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let (we, fe) = (aio.aio_error(w), aio.aio_error(f));
                if fe != Err(Errno::INPROGRESS) {
                    return (we, fe);
                }
                assert!(Instant::now() < deadline);
                let _ = aio.aio_suspend(&[f], Some(Duration::from_millis(50)));
            }
        })
        .unwrap();
        println!(
            "round {round}: when the fsync was done: write {:?}, fsync {:?}",
            out.0, out.1
        );
        if out.0 == Err(Errno::INPROGRESS) {
            violations += 1;
        }
    }
    assert_eq!(
        violations, 0,
        "aio_fsync completed before the earlier aio_write"
    );
    Passed
}

/// POSIX aio_fsync: "[EBADF] The aio_fildes member of the aiocb structure ... is not a valid
/// file descriptor open for writing."
fn fsync_on_read_only_fd_is_ebadf() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("fsync-ro");
    let ro = std::fs::File::open(&s.path).unwrap();
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let r = match aio.aio_fsync(Aiocb::sync(ro.as_fd(), SyncMode::Sync)) {
            Err(e) => Err(e.error),
            Ok(id) => {
                assert!(settle(aio, id, Duration::from_secs(5)));
                aio.aio_return(id).unwrap().result.map(drop)
            }
        };
        println!("aio_fsync on an O_RDONLY fd: {r:?}");
        assert_eq!(r, Err(Errno::BADF));
    })
    .unwrap();
    Passed
}

/// fsync() of a directory is how a program makes a rename durable, and Linux accepts it on an
/// O_RDONLY directory descriptor; POSIX aio_fsync lists "[EBADF] ... not a valid file
/// descriptor open for writing". The layer answers EISDIR, which is neither (its directory
/// check, meant for reads and writes that could only wait for ever, also catches syncs).
fn fsync_of_a_directory_works() -> Outcome {
    let mut ctx = ctx();
    let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
    assert_eq!(rustix::fs::fsync(&dir), Ok(()), "fsync() of the directory");
    posix::with::<2, _>(ctx.as_mut(), |aio| {
        let r = match aio.aio_fsync(Aiocb::sync(dir.as_fd(), SyncMode::Sync)) {
            Err(e) => Err(e.error),
            Ok(id) => {
                assert!(settle(aio, id, Duration::from_secs(5)));
                aio.aio_return(id).unwrap().result.map(drop)
            }
        };
        println!("aio_fsync of a directory: {r:?}");
        assert!(r == Ok(()) || r == Err(Errno::BADF), "got {r:?}");
    })
    .unwrap();
    Passed
}

/// The module docs: a stream write "goes on ... until all of it is written ... as a blocking
/// write does", and in synchronous mode "everything else behaves the same". With an O_NONBLOCK
/// pipe (as every test of the suite uses), the synchronous mode completes a 256 KiB write with
/// one pipe's worth (or EAGAIN), the asynchronous mode writes it all.
fn nonblocking_pipe_write_whole_in_every_mode() -> Outcome {
    let mut ctx = ctx();
    let mode = if ctx.is_some() {
        "asynchronous"
    } else {
        "synchronous"
    };
    let (r, w) = pipe(true);
    let big = scratch::pattern(256 * 1024, 5);
    let reader = std::thread::spawn(move || {
        let mut got = 0usize;
        let mut buf = [0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match rustix::io::read(&r, &mut buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Errno::AGAIN) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("{e}"),
            }
        }
        got
    });
    let res = posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(w.as_fd(), &big, 0)).unwrap();
        assert!(settle(aio, id, Duration::from_secs(10)));
        aio.aio_return(id).unwrap().result
    })
    .unwrap();
    drop(w);
    let got = reader.join().unwrap();
    println!(
        "{mode} mode: aio_write of {} bytes -> {res:?}, reader got {got}",
        big.len()
    );
    assert_eq!(res, Ok(big.len()), "{mode} mode");
    Passed
}

/// A notification callback that panics inside the aio_read call that queues the request (the
/// request failed at submission, or synchronous mode): the caller never gets the id, and the
/// control block stays taken for the rest of the layer (capacity N-1, no way to free it).
fn panicking_callback_in_aio_read_leaks_slot() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("cb-leak");
    let file = &s.file;
    file.set_len(4096).unwrap();
    let boom = |_: Id| panic!("callback panics");
    let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
    quiet_boom();
    posix::with::<1, _>(ctx.as_mut(), |aio| {
        // Offset beyond i64::MAX: io_submit refuses it (EINVAL) inside aio_read; in
        // synchronous mode the pread fails inside aio_read. Either way the callback runs there.
        let cb = Aiocb::read(file.as_fd(), &mut a, u64::MAX - 10).notify(Notify::Callback(&boom));
        let caught = catch_unwind(AssertUnwindSafe(move || aio.aio_read(cb)));
        println!("first aio_read: panicked = {}", caught.is_err());
        let second = aio.aio_read(Aiocb::read(file.as_fd(), &mut b, 0));
        println!("second aio_read on the 1-slot layer: {second:?}");
        assert!(
            second.is_ok(),
            "the slot of the request whose id was never returned is lost"
        );
    })
    .unwrap();
    Passed
}

/// POSIX aio_read/aio_write: "[EINVAL] ... aio_reqprio is not a valid value". The layer
/// silently caps any value above 7 (AIO_PRIO_DELTA_MAX is not published either).
fn reqprio_out_of_range_is_einval() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("prio");
    let file = &s.file;
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let r = aio.aio_write(Aiocb::write(file.as_fd(), b"x", 0).reqprio(200));
        println!("aio_write with reqprio 200: {r:?}");
        assert_eq!(r.err().map(|r| r.error), Some(Errno::INVAL));
    })
    .unwrap();
    Passed
}

/// aio_cancel: "If there are requests that cannot be canceled, then the normal asynchronous
/// completion process shall take place for those requests when they are completed." The
/// layer's end cancels what it can (and notifies those), and waits for the rest, but a request
/// that completes during that wait (an O_DIRECT read) is never notified.
fn in_flight_at_layer_end_still_notified() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let s = Scratch::new("end-notify");
    let len = 32 << 20;
    {
        let mut f = &s.file;
        f.write_all(&vec![1u8; len]).unwrap();
        f.sync_all().unwrap();
    }
    let Some(file) = open_direct(&s.path) else {
        return Skipped("O_DIRECT unsupported".into());
    };
    let mut storage = Vec::new();
    let (r, _w) = pipe(true);
    // The read must still be in flight when the closure returns; on a loaded machine this
    // thread can lose the CPU for as long as the read takes, so up to five tries.
    for _ in 0..5 {
        let buf = aligned(&mut storage, len);
        let mut small = [0u8; 4];
        let calls = RefCell::new(Vec::new());
        let note = |id: Id| calls.borrow_mut().push(id);
        let (read, queued, in_flight) = posix::with::<2, _>(ctx.as_mut(), |aio| {
            let read = aio
                .aio_read(Aiocb::read(file.as_fd(), buf, 0).notify(Notify::Callback(&note)))
                .unwrap();
            let queued = aio
                .aio_read(Aiocb::read(r.as_fd(), &mut small, 0).notify(Notify::Callback(&note)))
                .unwrap();
            (read, queued, aio.aio_error(read) == Err(Errno::INPROGRESS))
        })
        .unwrap();
        let calls = calls.into_inner();
        println!(
            "notified after the layer ended: {} of 2 (cancelled one: {}, completed one: {}; \
             the read was {}in flight at the end)",
            calls.len(),
            calls.contains(&queued),
            calls.contains(&read),
            if in_flight { "" } else { "no longer " }
        );
        assert!(calls.contains(&queued), "the cancelled request");
        assert!(
            calls.contains(&read),
            "the request that completed while the layer ended was never notified"
        );
        if in_flight {
            return Passed;
        }
    }
    Skipped("the 32 MiB O_DIRECT read completed before the closure returned, five times".into())
}

// ---------------------------------------------------------------------------------------------
// Probes that held up

fn big_write(kind: &str, len: usize) -> Outcome {
    let mut ctx = ctx();
    let (rfd, wfd): (OwnedFd, OwnedFd) = match kind {
        "pipe" => pipe(false),
        _ => {
            let (a, b) = UnixStream::pair().unwrap();
            (b.into(), a.into())
        }
    };
    let first = scratch::pattern(len, 21);
    let second = scratch::pattern(3000, 22);
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 50_000];
        let mut n_reads = 0u32;
        loop {
            n_reads += 1;
            if n_reads % 8 == 0 {
                std::thread::sleep(Duration::from_millis(1)); // a slow reader
            }
            match rustix::io::read(&rfd, &mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("reader: {e}"),
            }
        }
    });
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let a = aio.aio_write(Aiocb::write(wfd.as_fd(), &first, 0)).unwrap();
        let b = aio
            .aio_write(Aiocb::write(wfd.as_fd(), &second, 0))
            .unwrap();
        assert!(
            settle(aio, a, Duration::from_secs(15)),
            "first write did not finish"
        );
        assert!(
            settle(aio, b, Duration::from_secs(5)),
            "second write did not finish"
        );
        assert_eq!(aio.aio_return(a).unwrap().result, Ok(first.len()));
        assert_eq!(aio.aio_return(b).unwrap().result, Ok(second.len()));
    })
    .unwrap();
    drop(wfd);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), first.len() + second.len());
    assert!(
        got == [first, second].concat(),
        "bytes altered or out of order"
    );
    Passed
}

fn big_writes_pipe_1m() -> Outcome {
    big_write("pipe", 1 << 20)
}
fn big_writes_pipe_16m() -> Outcome {
    big_write("pipe", 16 << 20)
}
fn big_writes_socket_1m() -> Outcome {
    big_write("socket", 1 << 20)
}
fn big_writes_socket_16m() -> Outcome {
    big_write("socket", 16 << 20)
}

/// write(): after part of the data, an error "returns the number of bytes written". A reader
/// that reads 100000 bytes and closes: the aio_write ends with a count (not EPIPE), at least
/// what the reader got and at most that plus what the pipe/socket buffers held.
fn reader_closes(kind: &str) -> Outcome {
    let mut ctx = ctx();
    let (rfd, wfd): (OwnedFd, OwnedFd) = match kind {
        "pipe" => pipe(false),
        _ => {
            let (a, b) = UnixStream::pair().unwrap();
            (b.into(), a.into())
        }
    };
    if kind == "pipe" {
        set_pipe_size(&wfd, 4096);
    }
    let data = scratch::pattern(4 << 20, 31);
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 1000];
        while got.len() < 100_000 {
            match rustix::io::read(&rfd, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("{e}"),
            }
        }
        drop(rfd);
        got
    });
    let res = posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(wfd.as_fd(), &data, 0)).unwrap();
        assert!(settle(aio, id, Duration::from_secs(15)));
        aio.aio_return(id).unwrap().result
    })
    .unwrap();
    let got = reader.join().unwrap();
    println!("{kind}: reader got {}, aio_write -> {res:?}", got.len());
    assert!(data.starts_with(&got));
    let n = res.expect("a count, not an error, after a partial write");
    assert!(n >= got.len() && n < data.len());
    if kind == "pipe" {
        assert!(
            n - got.len() <= 4096 + 1000,
            "count {n} more than the pipe could hold"
        );
    }
    Passed
}

fn reader_closes_mid_write_pipe() -> Outcome {
    reader_closes("pipe")
}
fn reader_closes_mid_write_socket() -> Outcome {
    reader_closes("socket")
}

/// A datagram socket: each aio_write is one datagram, whole. Passes on 6.18 (RWF_NOWAIT taken);
/// FAILS on Linux 6.1 (`cargo xtask vm --arch x86_64`), where the layer falls back to PIPE_BUF
/// chunks: the receiver gets a 4096-byte datagram (then 4096, then 1808).
fn datagram_boundaries_kept() -> Outcome {
    let mut ctx = ctx();
    let (a, b) = UnixDatagram::pair().unwrap();
    let msg = scratch::pattern(10_000, 41);
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(a.as_fd(), &msg, 0)).unwrap();
        assert!(settle(aio, id, Duration::from_secs(5)));
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(msg.len()));
    })
    .unwrap();
    let mut buf = vec![0u8; 20_000];
    b.set_nonblocking(true).unwrap();
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(n, msg.len(), "the datagram was split");
    assert_eq!(&buf[..n], &msg[..]);
    Passed
}

/// SOCK_SEQPACKET: each aio_write is one record, whole (no split into PIPE_BUF pieces). As the
/// datagram test: passes on 6.18, FAILS on Linux 6.1 (records of 4096 bytes).
fn seqpacket_boundaries_kept() -> Outcome {
    let mut ctx = ctx();
    let mut fds = [0i32; 2];
    // SAFETY: socketpair into a local array.
    assert_eq!(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        },
        0
    );
    // SAFETY: the two new descriptors are ours.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let msg = scratch::pattern(10_000, 43);
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(a.as_fd(), &msg, 0)).unwrap();
        assert!(settle(aio, id, Duration::from_secs(5)));
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(msg.len()));
    })
    .unwrap();
    let mut buf = vec![0u8; 20_000];
    let n = rustix::io::read(&b, &mut buf).unwrap();
    assert_eq!(n, msg.len(), "the record was split");
    assert_eq!(&buf[..n], &msg[..]);
    Passed
}

/// A FIFO opened read-write: a 4 MiB write with a reader on another descriptor. The kernel
/// cannot POLL the O_RDWR descriptor, so once the FIFO is full the write cannot wait: it must
/// end with exactly the count that reached the reader (never an error after a partial write,
/// never a hang).
fn fifo_big_write_reports_its_count() -> Outcome {
    let mut ctx = ctx();
    let path = std::env::temp_dir().join(format!("atk-fifo2-{}", std::process::id()));
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
    let w = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let r = std::fs::File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let data = scratch::pattern(4 << 20, 44);
    let want = data.len();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 30_000];
        while got.len() < want {
            match rustix::io::read(&r, &mut buf).unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    });
    let n = posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(w.as_fd(), &data, 0)).unwrap();
        assert!(settle(aio, id, Duration::from_secs(15)));
        aio.aio_return(id).unwrap().result
    })
    .unwrap();
    drop(w); // the last writer: the reader sees the end
    let got = reader.join().unwrap();
    println!(
        "4 MiB aio_write on an O_RDWR FIFO: {n:?}, the reader got {}",
        got.len()
    );
    let n = n.expect("a count, not an error");
    assert_eq!(got.len(), n, "the count is what was written");
    assert!(got[..] == data[..n]);
    Passed
}

fn dev_null_and_zero() -> Outcome {
    let mut ctx = ctx();
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let big = vec![1u8; 16 << 20];
    let mut into = vec![9u8; 1 << 20];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let w = aio.aio_write(Aiocb::write(null.as_fd(), &big, 0)).unwrap();
        let r = aio
            .aio_read(Aiocb::read(zero.as_fd(), &mut into, 0))
            .unwrap();
        assert!(settle(aio, w, Duration::from_secs(10)));
        assert!(settle(aio, r, Duration::from_secs(10)));
        assert_eq!(aio.aio_return(w).unwrap().result, Ok(big.len()));
        assert_eq!(aio.aio_return(r).unwrap().result, Ok(1 << 20));
    })
    .unwrap();
    assert!(into.iter().all(|&b| b == 0));
    Passed
}

/// aio_cancel(fd, None) over: a done request, a partly written write (in progress), a request
/// queued behind it. NOTCANCELED; the queued one is ECANCELED and notified; the partial write
/// is not modified and completes whole; the done one keeps its result.
fn cancel_none_mixed_states() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let (r, w) = pipe(true);
    let big = scratch::pattern(512 * 1024, 51);
    let small = [7u8; 10];
    let notified = RefCell::new(Vec::new());
    let note = |id: Id| notified.borrow_mut().push(id);
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let done = aio.aio_write(Aiocb::write(w.as_fd(), b"abc", 0)).unwrap();
        assert!(settle(aio, done, Duration::from_secs(2)));
        let partial = aio
            .aio_write(Aiocb::write(w.as_fd(), &big, 0).notify(Notify::Callback(&note)))
            .unwrap();
        let queued = aio
            .aio_write(Aiocb::write(w.as_fd(), &small, 0).notify(Notify::Callback(&note)))
            .unwrap();
        let _ = aio.aio_error(partial);
        assert_eq!(
            aio.aio_cancel(w.as_fd(), None),
            Ok(CancelStatus::NotCanceled)
        );
        assert_eq!(aio.aio_error(done), Ok(()));
        assert_eq!(aio.aio_error(queued), Err(Errno::CANCELED));
        assert_eq!(aio.aio_error(partial), Err(Errno::INPROGRESS));
        assert_eq!(*notified.borrow(), [queued]);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 65536];
        while aio.aio_error(partial) == Err(Errno::INPROGRESS) {
            assert!(Instant::now() < deadline);
            while let Ok(n) = rustix::io::read(&r, &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            let _ = aio.aio_suspend(&[partial], Some(Duration::from_millis(5)));
        }
        while let Ok(n) = rustix::io::read(&r, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(aio.aio_return(partial).unwrap().result, Ok(big.len()));
        assert_eq!(aio.aio_return(queued).unwrap().result, Err(Errno::CANCELED));
        assert_eq!(aio.aio_return(done).unwrap().result, Ok(3));
        assert!(got == [&b"abc"[..], &big].concat());
        assert_eq!(*notified.borrow(), [queued, partial]);
    })
    .unwrap();
    Passed
}

/// Cancel a read waiting for data, return it, post a new one at the same slot, write data:
/// many times over on a one-slot layer. No data may be lost or go to a cancelled request.
fn cancel_reissue_loop_no_lost_data() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let (r, w) = pipe(true);
    let mut store = [0u8; 4];
    posix::with::<1, _>(ctx.as_mut(), |aio| {
        let mut buf: &mut [u8] = &mut store;
        for i in 0..500u32 {
            let id = aio.aio_read(Aiocb::read(r.as_fd(), buf, 0)).unwrap();
            let back = if i % 2 == 0 {
                assert_eq!(
                    aio.aio_cancel(r.as_fd(), Some(id)),
                    Ok(CancelStatus::Canceled)
                );
                let back = aio.aio_return(id).unwrap();
                assert_eq!(back.result, Err(Errno::CANCELED));
                back
            } else {
                rustix::io::write(&w, &i.to_ne_bytes()).unwrap();
                assert!(settle(aio, id, Duration::from_secs(2)), "iteration {i}");
                let back = aio.aio_return(id).unwrap();
                assert_eq!(back.result, Ok(4), "iteration {i}");
                back
            };
            let b = back.buffer.into_read().unwrap();
            if i % 2 == 1 {
                assert_eq!(u32::from_ne_bytes(b[..4].try_into().unwrap()), i);
            }
            buf = b;
        }
    })
    .unwrap();
    let mut rest = [0u8; 8];
    assert_eq!(
        rustix::io::read(&r, &mut rest),
        Err(Errno::AGAIN),
        "data left behind"
    );
    Passed
}

fn return_twice_and_id_reuse() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("ret2");
    let file = &s.file;
    posix::with::<1, _>(ctx.as_mut(), |aio| {
        let a = aio
            .aio_write(Aiocb::write(file.as_fd(), b"aaaa", 0))
            .unwrap();
        assert!(settle(aio, a, Duration::from_secs(2)));
        assert_eq!(aio.aio_return(a).unwrap().result, Ok(4));
        assert_eq!(aio.aio_return(a).err(), Some(Errno::INVAL));
        assert_eq!(aio.aio_error(a), Err(Errno::INVAL));
        let b = aio.aio_write(Aiocb::write(file.as_fd(), b"bb", 4)).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            aio.aio_error(a),
            Err(Errno::INVAL),
            "old id names the new request"
        );
        assert_eq!(
            aio.aio_cancel(file.as_fd(), Some(a)),
            Ok(CancelStatus::AllDone)
        );
        assert!(settle(aio, b, Duration::from_secs(2)));
        assert_eq!(aio.aio_return(a).err(), Some(Errno::INVAL));
        assert_eq!(aio.aio_return(b).unwrap().result, Ok(2));
    })
    .unwrap();
    Passed
}

fn suspend_timeout_accuracy() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let (r, _w) = pipe(true);
    let mut buf = [0u8; 4];
    posix::with::<2, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut buf, 0)).unwrap();
        for ms in [0u64, 1, 50, 300] {
            let t = Instant::now();
            let res = aio.aio_suspend(&[id], Some(Duration::from_millis(ms)));
            let took = t.elapsed();
            println!("timeout {ms} ms: {res:?} after {took:?}");
            assert_eq!(res, Err(Errno::AGAIN));
            assert!(took >= Duration::from_millis(ms));
            assert!(took < Duration::from_millis(ms + 100));
        }
    })
    .unwrap();
    Passed
}

/// Silences the panics the tests provoke on purpose ("boom"), keeps the others.
fn quiet_boom() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
        if !msg.contains("boom") && !msg.contains("callback panics") {
            default(info);
        }
    }));
}

fn install_handler(restart: bool) {
    extern "C" fn on_usr1(_: i32) {}
    // SAFETY: a handler that does nothing, in this child process only.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as extern "C" fn(i32) as usize;
        if restart {
            sa.sa_flags = libc::SA_RESTART;
        }
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

fn signal_me_in(ms: u64) {
    let me = thread::Thread::current();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        me.signal(libc::SIGUSR1); // the test thread outlives the wait it is signalled in
    });
}

/// aio_suspend: "[EINTR] A signal interrupted the aio_suspend() function" (also with
/// SA_RESTART: aio_suspend is never restarted).
fn suspend_eintr_with_sa_restart() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    install_handler(true);
    let (r, _w) = pipe(true);
    let mut buf = [0u8; 4];
    posix::with::<2, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut buf, 0)).unwrap();
        signal_me_in(200);
        let t = Instant::now();
        let res = aio.aio_suspend(&[id], None);
        println!("aio_suspend: {res:?} after {:?}", t.elapsed());
        assert_eq!(res, Err(Errno::INTR));
        assert_eq!(aio.aio_error(id), Err(Errno::INPROGRESS));
    })
    .unwrap();
    Passed
}

fn lio_wait_eintr_with_sa_restart() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    install_handler(true);
    let (r, w) = pipe(true);
    let mut buf = [0u8; 4];
    let s = Scratch::new("lio");
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        signal_me_in(200);
        let t = Instant::now();
        let list = [
            Aiocb::write(s.file.as_fd(), b"zz", 0),
            Aiocb::read(r.as_fd(), &mut buf, 0),
        ];
        let listed = aio.lio_listio(ListMode::Wait, list);
        let res = listed.result;
        println!("lio_listio: {res:?} after {:?}", t.elapsed());
        assert_eq!(res, Err(Errno::INTR));
        assert!(t.elapsed() < Duration::from_secs(2));
        let read = *listed.status[1].as_ref().unwrap();
        assert_eq!(aio.aio_error(read), Err(Errno::INPROGRESS));
        rustix::io::write(&w, b"late").unwrap();
        assert!(settle(aio, read, Duration::from_secs(2)));
        assert_eq!(aio.aio_return(read).unwrap().result, Ok(4));
    })
    .unwrap();
    Passed
}

/// More control blocks than the kernel context has room for: 300 reads on 300 pipes over
/// io_setup(1). The kernel refuses some with EAGAIN; they must wait in the layer and complete.
fn kernel_ring_full_requests_queue() -> Outcome {
    let mut ctx = posix::context(1).unwrap();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    println!("ring slots: {:?}", ctx.as_ref().unwrap().ring_slots());
    let pipes: Vec<_> = (0..300).map(|_| pipe(true)).collect();
    let mut bufs = vec![[0u8; 2]; 300];
    posix::with::<300, _>(ctx.as_mut(), |aio| {
        let ids: Vec<Id> = bufs
            .iter_mut()
            .zip(&pipes)
            .map(|(b, (r, _))| aio.aio_read(Aiocb::read(r.as_fd(), b, 0)).unwrap())
            .collect();
        for (i, (_, w)) in pipes.iter().enumerate() {
            rustix::io::write(w, &(i as u16).to_ne_bytes()).unwrap();
        }
        for (i, id) in ids.iter().enumerate() {
            assert!(settle(aio, *id, Duration::from_secs(5)), "request {i}");
            assert_eq!(aio.aio_return(*id).unwrap().result, Ok(2));
        }
    })
    .unwrap();
    for (i, b) in bufs.iter().enumerate() {
        assert_eq!(u16::from_ne_bytes(*b), i as u16);
    }
    Passed
}

/// A callback that panics inside aio_suspend (caught by the caller): the layer goes on, and a
/// second request completed in the same batch is still reported.
fn panicking_callback_in_suspend_then_continue() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    quiet_boom();
    let (r1, w1) = pipe(true);
    let (r2, w2) = pipe(true);
    let boom = |_: Id| panic!("boom");
    let calls = Cell::new(0);
    let count = |_: Id| calls.set(calls.get() + 1);
    let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let x = aio
            .aio_read(Aiocb::read(r1.as_fd(), &mut a, 0).notify(Notify::Callback(&boom)))
            .unwrap();
        let y = aio
            .aio_read(Aiocb::read(r2.as_fd(), &mut b, 0).notify(Notify::Callback(&count)))
            .unwrap();
        rustix::io::write(&w1, b"1111").unwrap();
        rustix::io::write(&w2, b"2222").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut panics = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            if Instant::now() > deadline {
                let st = catch_unwind(AssertUnwindSafe(|| (aio.aio_error(x), aio.aio_error(y))));
                panic!("stuck after a panicking callback: panics {panics}, x/y {st:?}, the other callback ran {} times", calls.get());
            }
            // Every layer call may run the callback: all of them under catch_unwind.
            let step = catch_unwind(AssertUnwindSafe(|| {
                let pending = aio.aio_error(x) == Err(Errno::INPROGRESS)
                    || aio.aio_error(y) == Err(Errno::INPROGRESS);
                if pending {
                    let _ = aio.aio_suspend(&[x, y], Some(Duration::from_millis(20)));
                }
                pending
            }));
            match step {
                Ok(false) => break,
                Ok(true) => {}
                Err(_) => panics += 1,
            }
        }
        assert_eq!(panics, 1);
        assert_eq!(calls.get(), 1);
        assert_eq!(aio.aio_return(x).unwrap().result, Ok(4));
        assert_eq!(aio.aio_return(y).unwrap().result, Ok(4));
    })
    .unwrap();
    assert_eq!((&a, &b), (b"1111", b"2222"));
    Passed
}

/// A callback that panics while the layer ends (it cancels a queued request): the panic comes
/// out of `with`, after every request has been reaped.
fn panicking_callback_at_layer_end() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    quiet_boom();
    let (r, w) = pipe(true);
    let boom = |_: Id| panic!("boom");
    let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
    let res = catch_unwind(AssertUnwindSafe(|| {
        posix::with::<4, _>(ctx.as_mut(), |aio| {
            aio.aio_read(Aiocb::read(r.as_fd(), &mut a, 0).notify(Notify::Callback(&boom)))
                .unwrap();
            aio.aio_read(Aiocb::read(r.as_fd(), &mut b, 0).notify(Notify::Callback(&boom)))
                .unwrap();
        })
    }));
    assert!(res.is_err());
    // Nothing of the layer is left in the kernel: data written now stays in the pipe.
    rustix::io::write(&w, b"late").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!((a, b), ([0; 4], [0; 4]));
    let mut back = [0u8; 8];
    assert_eq!(rustix::io::read(&r, &mut back), Ok(4));
    // And the context is still usable.
    let s = Scratch::new("after");
    posix::with::<1, _>(ctx.as_mut(), |aio| {
        let id = aio
            .aio_write(Aiocb::write(s.file.as_fd(), b"ok", 0))
            .unwrap();
        assert!(settle(aio, id, Duration::from_secs(2)));
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(2));
    })
    .unwrap();
    Passed
}

/// "Normal asynchronous notification shall occur for asynchronously completed I/O operations
/// that are successfully canceled": once each, also when the layer's end does the cancelling.
fn cancelled_requests_notified_once() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let (r, _w) = pipe(true);
    let calls = RefCell::new(Vec::new());
    let note = |id: Id| calls.borrow_mut().push(id);
    let (mut a, mut b, mut c) = ([0u8; 4], [0u8; 4], [0u8; 4]);
    let ids = posix::with::<4, _>(ctx.as_mut(), |aio| {
        let x = aio
            .aio_read(Aiocb::read(r.as_fd(), &mut a, 0).notify(Notify::Callback(&note)))
            .unwrap();
        let y = aio
            .aio_read(Aiocb::read(r.as_fd(), &mut b, 0).notify(Notify::Callback(&note)))
            .unwrap();
        let z = aio
            .aio_read(Aiocb::read(r.as_fd(), &mut c, 0).notify(Notify::Callback(&note)))
            .unwrap();
        assert_eq!(
            aio.aio_cancel(r.as_fd(), Some(y)),
            Ok(CancelStatus::Canceled)
        );
        assert_eq!(
            aio.aio_cancel(r.as_fd(), Some(y)),
            Ok(CancelStatus::AllDone)
        );
        let _ = aio.aio_error(x);
        (x, y, z)
    })
    .unwrap();
    let mut got = calls.into_inner();
    got.sort_by_key(|id| format!("{id:?}"));
    let mut want = vec![ids.0, ids.1, ids.2];
    want.sort_by_key(|id| format!("{id:?}"));
    assert_eq!(got, want, "each cancelled request notified exactly once");
    Passed
}

/// An O_DIRECT read of 64 MiB in flight when the closure returns: `with` returns only after
/// it completed; the buffer never changes afterwards.
fn direct_read_in_flight_at_layer_end() -> Outcome {
    let mut ctx = ctx();
    if let Some(skip) = need_async(&ctx) {
        return skip;
    }
    let s = Scratch::new("direct-end");
    let len = 64 << 20;
    s.file.set_len(len as u64).unwrap();
    {
        let mut f = &s.file;
        f.write_all(&vec![0xabu8; len]).unwrap();
        f.sync_all().unwrap();
    }
    let Some(file) = open_direct(&s.path) else {
        return Skipped("O_DIRECT unsupported".into());
    };
    let mut storage = Vec::new();
    let buf = aligned(&mut storage, len);
    let start = buf.as_ptr() as usize;
    posix::with::<2, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_read(Aiocb::read(file.as_fd(), buf, 0)).unwrap();
        println!("right after aio_read: {:?}", aio.aio_error(id));
    })
    .unwrap();
    let _ = start;
    let buf = aligned(&mut storage, len);
    assert!(
        buf.iter().all(|&b| b == 0xab),
        "with returned before the read completed"
    );
    buf.fill(0);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        buf.iter().all(|&b| b == 0),
        "the kernel wrote after with returned"
    );
    Passed
}
