//! The POSIX layer, with one test (at least) for every normative sentence of POSIX
//! `aio_cancel` (quoted above each test), plus `aio_suspend`, `lio_listio`, and files, pipes
//! and sockets.
//!
//! Without kernel AIO (ENOSYS: qemu-user, or a build with `LINUX_AIO_FORCE_ENOSYS=1`) the layer
//! runs every request synchronously: tests that need a request held in progress then report
//! SKIPPED with that reason, and the rest run unchanged.

#[path = "support/reexec.rs"]
mod reexec;
#[path = "support/runner.rs"]
mod runner;
#[path = "support/scratch.rs"]
mod scratch;
#[path = "support/thread.rs"]
mod thread;

use std::cell::Cell;

use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use linux_aio::posix::{self, Aio, Aiocb, CancelStatus, ListMode, Notify, SyncMode};
use linux_aio::{Buffer, Context, Errno};
use runner::{skipped, Outcome, Passed};
use scratch::Scratch;

fn main() {
    if std::env::var("LINUX_AIO_TEST_CHILD").as_deref() == Ok("lio-eintr") {
        child_lio_listio_eintr();
    }
    runner::run(
        "posix",
        &[
            ("cancel_one", cancel_one),
            ("cancel_all_with_none", cancel_all_with_none),
            (
                "canceled_requests_are_notified",
                canceled_requests_are_notified,
            ),
            (
                "canceled_is_ecanceled_and_minus_one",
                canceled_is_ecanceled_and_minus_one,
            ),
            (
                "not_canceled_is_not_modified_and_completes",
                not_canceled_is_not_modified_and_completes,
            ),
            ("mismatched_fd_is_einval", mismatched_fd_is_einval),
            ("all_done", all_done),
            ("ebadf_checked_first", ebadf_checked_first),
            ("files_read_write_fsync", files_read_write_fsync),
            (
                "pipe_full_write_waits_then_completes",
                pipe_full_write_waits_then_completes,
            ),
            (
                "stream_requests_complete_in_order",
                stream_requests_complete_in_order,
            ),
            ("socket_read_waits_for_data", socket_read_waits_for_data),
            ("suspend_timeout", suspend_timeout),
            ("lio_listio_partial_failure", lio_listio_partial_failure),
            ("lio_listio_wait_reports_eio", lio_listio_wait_reports_eio),
            (
                "impossible_requests_fail_at_once",
                impossible_requests_fail_at_once,
            ),
            ("return_once_and_in_progress", return_once_and_in_progress),
            ("capacity_exceeded_is_eagain", capacity_exceeded_is_eagain),
            (
                "refused_control_blocks_come_back",
                refused_control_blocks_come_back,
            ),
            ("scope_end_cancels_pending", scope_end_cancels_pending),
            (
                "stream_write_is_written_whole",
                stream_write_is_written_whole,
            ),
            (
                "partly_written_write_is_not_canceled",
                partly_written_write_is_not_canceled,
            ),
            (
                "finishing_during_cancel_is_all_done",
                finishing_during_cancel_is_all_done,
            ),
            (
                "lio_listio_wait_interrupted_is_eintr",
                lio_listio_wait_interrupted_is_eintr,
            ),
            ("ids_belong_to_their_layer", ids_belong_to_their_layer),
            ("fork_inside_the_layer", fork_inside_the_layer),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The context for the layer: `None` (synchronous mode) without kernel AIO.
fn ctx() -> Option<Context> {
    posix::context(16).expect("io_setup")
}

const SYNC_MODE: &str =
    "without kernel AIO (ENOSYS) requests run synchronously, so none can be held in progress";

macro_rules! need_async {
    ($ctx:expr) => {
        if $ctx.is_none() {
            return skipped(SYNC_MODE);
        }
    };
}

fn pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK)
        .unwrap()
}

/// Fills a (non-blocking) pipe until the kernel refuses more.
fn fill(w: &OwnedFd) -> usize {
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

fn drain(r: &OwnedFd) -> usize {
    let mut buf = [0u8; 65536];
    let mut total = 0;
    loop {
        match rustix::io::read(r, &mut buf) {
            Ok(0) | Err(Errno::AGAIN) => return total,
            Ok(n) => total += n,
            Err(e) => panic!("drain: {e}"),
        }
    }
}

/// Waits (suspending on the layer) until `id` is no longer in progress.
fn settle<const N: usize>(aio: &Aio<'_, '_, '_, N>, id: posix::Id) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while aio.aio_error(id) == Err(Errno::INPROGRESS) {
        assert!(
            Instant::now() < deadline,
            "request still in progress after 5 s"
        );
        match aio.aio_suspend(&[id], Some(Duration::from_millis(100))) {
            Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(e) => panic!("aio_suspend: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// aio_cancel, sentence by sentence

/// "The aio_cancel() function shall attempt to cancel one or more asynchronous I/O requests
/// currently outstanding against file descriptor fildes. The aiocbp argument points to the
/// asynchronous I/O control block for a particular request to be canceled."
/// "shall return the value AIO_CANCELED ... if the requested operation(s) were canceled."
fn cancel_one() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, _w) = pipe();
    let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let first = aio.aio_read(Aiocb::read(r.as_fd(), &mut a, 0)).unwrap(); // waits for data
        let second = aio.aio_read(Aiocb::read(r.as_fd(), &mut b, 0)).unwrap(); // queued behind it
        assert_eq!(aio.aio_error(first), Err(Errno::INPROGRESS));
        assert_eq!(
            aio.aio_cancel(r.as_fd(), Some(second)),
            Ok(CancelStatus::Canceled),
            "queued request"
        );
        assert_eq!(
            aio.aio_error(first),
            Err(Errno::INPROGRESS),
            "the other request was touched"
        );
        assert_eq!(
            aio.aio_cancel(r.as_fd(), Some(first)),
            Ok(CancelStatus::Canceled),
            "request waiting in POLL"
        );
        assert_eq!(aio.aio_error(first), Err(Errno::CANCELED));
        assert_eq!(aio.aio_error(second), Err(Errno::CANCELED));
    })
    .unwrap();
    Passed
}

/// "If aiocbp is NULL, then all outstanding cancelable asynchronous I/O requests against
/// fildes shall be canceled."
fn cancel_all_with_none() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, _w) = pipe();
    let (other_r, _other_w) = pipe();
    let mut bufs = [[0u8; 4]; 4];
    let [b0, b1, b2, b3] = &mut bufs;
    posix::with::<8, _>(ctx.as_mut(), |aio| {
        let ids = [
            aio.aio_read(Aiocb::read(r.as_fd(), b0, 0)).unwrap(),
            aio.aio_read(Aiocb::read(r.as_fd(), b1, 0)).unwrap(),
            aio.aio_read(Aiocb::read(r.as_fd(), b2, 0)).unwrap(),
        ];
        let other = aio.aio_read(Aiocb::read(other_r.as_fd(), b3, 0)).unwrap();
        assert_eq!(aio.aio_cancel(r.as_fd(), None), Ok(CancelStatus::Canceled));
        for id in ids {
            assert_eq!(aio.aio_error(id), Err(Errno::CANCELED));
        }
        assert_eq!(
            aio.aio_error(other),
            Err(Errno::INPROGRESS),
            "a request on another fd was cancelled"
        );
        // Nothing left on fd: all done.
        assert_eq!(aio.aio_cancel(r.as_fd(), None), Ok(CancelStatus::AllDone));
    })
    .unwrap();
    Passed
}

/// "Normal asynchronous notification shall occur for asynchronous I/O operations that are
/// successfully canceled."
fn canceled_requests_are_notified() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, _w) = pipe();
    let note = rustix::event::eventfd(0, rustix::event::EventfdFlags::NONBLOCK).unwrap();
    let called = Cell::new(None);
    let callback = |id| called.set(Some(id));
    let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let by_callback = aio
            .aio_read(Aiocb::read(r.as_fd(), &mut a, 0).notify(Notify::Callback(&callback)))
            .unwrap();
        let by_eventfd = aio
            .aio_read(Aiocb::read(r.as_fd(), &mut b, 0).notify(Notify::Eventfd(note.as_fd())))
            .unwrap();
        assert_eq!(called.get(), None);
        assert_eq!(aio.aio_cancel(r.as_fd(), None), Ok(CancelStatus::Canceled));
        assert_eq!(
            called.get(),
            Some(by_callback),
            "callback not called for the cancelled request"
        );
        let mut c = [0u8; 8];
        assert_eq!(
            rustix::io::read(&note, &mut c),
            Ok(8),
            "eventfd not signalled"
        );
        assert_eq!(u64::from_ne_bytes(c), 1);
        assert_eq!(aio.aio_error(by_eventfd), Err(Errno::CANCELED));
    })
    .unwrap();
    Passed
}

/// "For requested operations that are successfully canceled, the associated error status shall
/// be set to [ECANCELED] and the return status shall be -1."
fn canceled_is_ecanceled_and_minus_one() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, _w) = pipe();
    let mut a = [0u8; 4];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut a, 0)).unwrap();
        assert_eq!(
            aio.aio_cancel(r.as_fd(), Some(id)),
            Ok(CancelStatus::Canceled)
        );
        assert_eq!(aio.aio_error(id), Err(Errno::CANCELED));
        let ret = aio.aio_return(id).unwrap();
        assert_eq!(
            ret.result,
            Err(Errno::CANCELED),
            "the return status of a cancelled request is -1 (an error)"
        );
        assert!(
            matches!(ret.buffer, Buffer::Read(b) if b.len() == 4),
            "buffer handed back"
        );
    })
    .unwrap();
    Passed
}

/// "For requested operations that are not successfully canceled, the aiocbp shall not be
/// modified by aio_cancel()."
/// "If there are requests that cannot be canceled, then the normal asynchronous completion
/// process shall take place for those requests when they are completed."
/// "The value AIO_NOTCANCELED shall be returned if at least one of the requested operation(s)
/// cannot be canceled because it is in progress."
fn not_canceled_is_not_modified_and_completes() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    // An fsync runs in a kernel worker and cannot be cancelled: with enough dirty data it is
    // still in progress when aio_cancel looks at it. Not on tmpfs, where it returns at once.
    // The qemu-system guests mount a small ext4 image there (their /tmp is tmpfs).
    let direct = std::env::var_os("LINUX_AIO_DIRECT_DIR").map(std::path::PathBuf::from);
    let (dir, size) = match direct {
        Some(dir) => (dir, 4 << 20),
        None => (std::env::temp_dir(), 32 << 20),
    };
    let mut scratch = Scratch::new_in(&dir, "fsync");
    let file = &mut scratch.file;
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    if rustix::fs::fstatfs(&file).is_ok_and(|st| st.f_type as u64 == TMPFS_MAGIC) {
        return skipped("the temp directory is tmpfs, where fsync completes at once and is never seen in progress");
    }
    let data = vec![0xa5u8; size];
    let called = Cell::new(0);
    let callback = |_| called.set(called.get() + 1);
    for _attempt in 0..5 {
        file.write_all(&data).unwrap();
        let seen = posix::with::<4, _>(ctx.as_mut(), |aio| {
            let id = aio
                .aio_fsync(
                    Aiocb::sync(file.as_fd(), SyncMode::Sync).notify(Notify::Callback(&callback)),
                )
                .unwrap();
            let status = aio.aio_cancel(file.as_fd(), Some(id)).unwrap();
            if status != CancelStatus::NotCanceled {
                assert_eq!(
                    status,
                    CancelStatus::AllDone,
                    "an fsync cannot be cancelled"
                );
                settle(aio, id);
                return false;
            }
            assert_eq!(
                aio.aio_error(id),
                Err(Errno::INPROGRESS),
                "aio_cancel modified the request"
            );
            settle(aio, id);
            assert_eq!(aio.aio_error(id), Ok(()));
            assert_eq!(aio.aio_return(id).unwrap().result, Ok(0));
            true
        })
        .unwrap();
        if seen {
            assert!(
                called.get() >= 1,
                "no notification for the request that completed normally"
            );
            return Passed;
        }
    }
    skipped(
        "every fsync finished before aio_cancel could see it in progress (5 attempts, 32 MiB each)",
    )
}

/// "If aiocbp is not NULL, then if fildes does not have the same value as the file descriptor
/// with which the asynchronous operation was initiated, unspecified results occur." Here: EINVAL,
/// and nothing is cancelled.
fn mismatched_fd_is_einval() -> Outcome {
    let mut ctx = ctx();
    let (r, w) = pipe();
    let s = Scratch::new("mismatch");
    let file = &s.file;
    let mut a = [0u8; 4];
    let sync = ctx.is_none();
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        if sync {
            rustix::io::write(&w, b"data").unwrap(); // so the synchronous read cannot block
        }
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut a, 0)).unwrap();
        let before = aio.aio_error(id);
        assert_eq!(aio.aio_cancel(file.as_fd(), Some(id)), Err(Errno::INVAL));
        assert_eq!(aio.aio_error(id), before, "the request changed");
    })
    .unwrap();
    Passed
}

/// "The value AIO_ALLDONE is returned if all of the operations have already completed."
fn all_done() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("alldone");
    let file = &s.file;
    std::fs::write(&s.path, b"0123456789").unwrap();
    let mut a = [0u8; 10];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        // Nothing outstanding at all.
        assert_eq!(
            aio.aio_cancel(file.as_fd(), None),
            Ok(CancelStatus::AllDone)
        );
        let id = aio.aio_read(Aiocb::read(file.as_fd(), &mut a, 0)).unwrap();
        settle(aio, id);
        assert_eq!(
            aio.aio_cancel(file.as_fd(), Some(id)),
            Ok(CancelStatus::AllDone)
        );
        assert_eq!(
            aio.aio_cancel(file.as_fd(), None),
            Ok(CancelStatus::AllDone)
        );
        assert_eq!(
            aio.aio_return(id).unwrap().result,
            Ok(10),
            "AllDone must not alter the result"
        );
        // An id already returned is done too.
        assert_eq!(
            aio.aio_cancel(file.as_fd(), Some(id)),
            Ok(CancelStatus::AllDone)
        );
    })
    .unwrap();
    assert_eq!(&a, b"0123456789");
    Passed
}

/// "EBADF The fildes argument is not a valid file descriptor." Checked first, even when
/// nothing is outstanding, and even with a valid aiocb.
fn ebadf_checked_first() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("ebadf");
    let file = &s.file;
    let mut a = [0u8; 4];
    // SAFETY: a descriptor number this process never opens; used only for the EBADF check.
    let closed: BorrowedFd<'static> = unsafe { BorrowedFd::borrow_raw(999_999) };
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        assert_eq!(aio.aio_cancel(closed, None), Err(Errno::BADF));
        let id = aio.aio_read(Aiocb::read(file.as_fd(), &mut a, 0)).unwrap();
        assert_eq!(
            aio.aio_cancel(closed, Some(id)),
            Err(Errno::BADF),
            "EBADF before EINVAL"
        );
        settle(aio, id);
    })
    .unwrap();
    Passed
}

// ---------------------------------------------------------------------------------------------
// Files, pipes, sockets

fn files_read_write_fsync() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("rw");
    let file = &s.file;
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7) as u8).collect();
    let mut back = vec![0u8; 8192];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let w = aio
            .aio_write(Aiocb::write(file.as_fd(), &data, 100))
            .unwrap();
        settle(aio, w);
        assert_eq!(aio.aio_return(w).unwrap().result, Ok(8192));
        for mode in [SyncMode::Sync, SyncMode::DataSync] {
            let f = aio.aio_fsync(Aiocb::sync(file.as_fd(), mode)).unwrap();
            settle(aio, f);
            assert_eq!(aio.aio_return(f).unwrap().result, Ok(0));
        }
        let r = aio
            .aio_read(Aiocb::read(file.as_fd(), &mut back, 100).reqprio(2))
            .unwrap();
        settle(aio, r);
        assert_eq!(aio.aio_return(r).unwrap().result, Ok(8192));
        // The wrong operation for the function is refused.
        assert_eq!(
            aio.aio_read(Aiocb::sync(file.as_fd(), SyncMode::Sync))
                .err()
                .map(|r| r.error),
            Some(Errno::INVAL)
        );
    })
    .unwrap();
    assert!(back == data, "data read back differs");
    assert_eq!(std::fs::read(&s.path).unwrap()[100..], data[..]);
    Passed
}

/// A control block the layer does not queue comes back (`Refused`), buffer and all, as
/// `Scope::submit` hands back a rejected request: retried once a block is free, it succeeds,
/// and a refused block's buffer can be used again at once, inside `with`.
fn refused_control_blocks_come_back() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, w) = pipe();
    let (mut first, mut second) = ([0u8; 4], [0u8; 4]);
    posix::with::<1, _>(ctx.as_mut(), |aio| {
        let pending = aio.aio_read(Aiocb::read(r.as_fd(), &mut first, 0)).unwrap();
        let refused = aio
            .aio_read(Aiocb::read(r.as_fd(), &mut second, 0).reqprio(3))
            .unwrap_err();
        assert_eq!(refused.error, Errno::AGAIN, "one control block, in use");
        assert_eq!(
            std::os::fd::AsRawFd::as_raw_fd(&refused.aiocb.fd()),
            std::os::fd::AsRawFd::as_raw_fd(&r)
        );
        rustix::io::write(&w, b"abcdefgh").unwrap();
        settle(aio, pending);
        assert_eq!(aio.aio_return(pending).unwrap().result, Ok(4));
        // Retried as it came back: queued now, and it reads the rest.
        let retried = aio.aio_read(refused.aiocb).unwrap();
        settle(aio, retried);
        let done = aio.aio_return(retried).unwrap();
        assert_eq!(done.result, Ok(4));
        let again = done.buffer.into_read().unwrap();
        assert_eq!(again, b"efgh");
        // Refused for a reason of its own (a read on the write end): the buffer is free again.
        let refused = aio.aio_read(Aiocb::read(w.as_fd(), again, 0)).unwrap_err();
        assert_eq!(refused.error, Errno::BADF);
        let buf = refused.aiocb.into_buffer().into_read().unwrap();
        buf[0] = 9;
        assert_eq!(buf, &[9, b'f', b'g', b'h']);
    })
    .unwrap();
    assert_eq!(&first, b"abcd");
    Passed
}

fn pipe_full_write_waits_then_completes() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, w) = pipe();
    let filled = fill(&w);
    let msg = [0x42u8; 100];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(w.as_fd(), &msg, 0)).unwrap();
        // The pipe is full: the write waits (without blocking this thread) ...
        assert_eq!(
            aio.aio_suspend(&[id], Some(Duration::from_millis(50))),
            Err(Errno::AGAIN)
        );
        assert_eq!(aio.aio_error(id), Err(Errno::INPROGRESS));
        // ... until room is made.
        assert_eq!(drain(&r), filled);
        settle(aio, id);
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(100));
    })
    .unwrap();
    assert_eq!(drain(&r), 100);
    Passed
}

fn stream_requests_complete_in_order() -> Outcome {
    let mut ctx = ctx();
    let (r, w) = pipe();
    let sync = ctx.is_none();
    let (mut a, mut b, mut c) = ([0u8; 3], [0u8; 3], [0u8; 3]);
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        if sync {
            rustix::io::write(&w, b"onetwothr").unwrap();
        }
        let ids = [
            aio.aio_read(Aiocb::read(r.as_fd(), &mut a, 0)).unwrap(),
            aio.aio_read(Aiocb::read(r.as_fd(), &mut b, 0)).unwrap(),
            aio.aio_read(Aiocb::read(r.as_fd(), &mut c, 0)).unwrap(),
        ];
        if !sync {
            rustix::io::write(&w, b"onetwothr").unwrap();
        }
        for id in ids {
            settle(aio, id);
            assert_eq!(aio.aio_return(id).unwrap().result, Ok(3));
        }
    })
    .unwrap();
    assert_eq!((&a, &b, &c), (b"one", b"two", b"thr"));
    Passed
}

fn socket_read_waits_for_data() -> Outcome {
    let mut ctx = ctx();
    let (mut left, right) = UnixStream::pair().unwrap();
    let sync = ctx.is_none();
    let mut buf = [0u8; 5];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        if sync {
            left.write_all(b"hello").unwrap();
        }
        let id = aio
            .aio_read(Aiocb::read(right.as_fd(), &mut buf, 0))
            .unwrap();
        if !sync {
            assert_eq!(aio.aio_error(id), Err(Errno::INPROGRESS));
            left.write_all(b"hello").unwrap();
        }
        settle(aio, id);
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(5));
    })
    .unwrap();
    assert_eq!(&buf, b"hello");
    Passed
}

fn suspend_timeout() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, w) = pipe();
    let mut a = [0u8; 4];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut a, 0)).unwrap();
        let t0 = Instant::now();
        assert_eq!(
            aio.aio_suspend(&[id], Some(Duration::from_millis(80))),
            Err(Errno::AGAIN)
        );
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(75),
            "returned after {waited:?}"
        );
        assert_eq!(
            aio.aio_suspend(&[id], Some(Duration::ZERO)),
            Err(Errno::AGAIN),
            "zero timeout polls"
        );
        std::thread::scope(|t| {
            t.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                rustix::io::write(&w, b"data").unwrap();
            });
            assert_eq!(aio.aio_suspend(&[id], Some(Duration::from_secs(5))), Ok(()));
        });
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(4));
    })
    .unwrap();
    Passed
}

fn lio_listio_partial_failure() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("lio");
    let file = &s.file;
    let data = [[1u8; 16], [2; 16], [3; 16], [4; 16]];
    posix::with::<3, _>(ctx.as_mut(), |aio| {
        let list = data
            .each_ref()
            .map(|d| Aiocb::write(file.as_fd(), d, u64::from(d[0]) * 16));
        let listed = aio.lio_listio(ListMode::NoWait, list);
        assert_eq!(listed.result, Err(Errno::AGAIN));
        let [a, b, c, Err(refused)] = listed.status else {
            panic!("the fourth entry was queued: {:?}", listed.status)
        };
        assert_eq!(refused.error, Errno::AGAIN, "beyond capacity");
        // The refused control block comes back whole, buffer and all.
        assert_eq!(refused.aiocb.into_buffer().into_write(), Some(&data[3][..]));
        for id in [a, b, c].map(|s| s.unwrap()) {
            settle(aio, id);
            assert_eq!(aio.aio_return(id).unwrap().result, Ok(16));
        }
    })
    .unwrap();
    Passed
}

fn lio_listio_wait_reports_eio() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("lio-eio");
    let file = &s.file;
    let read_only = std::fs::File::open("/dev/null").unwrap();
    let (a, b, c) = ([5u8; 8], [6u8; 8], [7u8; 8]);
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        // The second entry is refused when queued (a write on a descriptor open for reading);
        // the third fails in the kernel (a negative offset once converted: EINVAL).
        let list = [
            Aiocb::write(file.as_fd(), &a, 0),
            Aiocb::write(read_only.as_fd(), &b, 0),
            Aiocb::write(file.as_fd(), &c, u64::MAX),
        ];
        let listed = aio.lio_listio(ListMode::Wait, list);
        assert_eq!(listed.result, Err(Errno::IO));
        let status = listed.status;
        assert_eq!(
            status[1].as_ref().err().map(|r| r.error),
            Some(Errno::BADF),
            "the refused entry's status"
        );
        let (good, bad) = (*status[0].as_ref().unwrap(), *status[2].as_ref().unwrap());
        assert_eq!(aio.aio_error(good), Ok(()), "the good write's own status");
        assert_eq!(
            aio.aio_error(bad),
            Err(Errno::INVAL),
            "the failed write's own status"
        );
    })
    .unwrap();
    Passed
}

/// Requests that could only wait for ever are refused when queued (found in review): a read on
/// a pipe's write end, a write on its read end, a directory; fsync on a pipe fails at once; an
/// empty `aio_suspend` list is EINVAL; an eventfd notification never blocks, and one that is
/// not an eventfd (a full blocking pipe, a regular file) is refused, never written to.
fn impossible_requests_fail_at_once() -> Outcome {
    let mut ctx = ctx();
    let (r, w) = pipe();
    let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
    let (mut a, mut d) = ([0u8; 4], [0u8; 4]);
    let msg = [1u8; 4];
    // A full, blocking pipe passed off as an eventfd: notifying through it must not block.
    let (_fr, fw) = rustix::pipe::pipe().unwrap();
    rustix::fs::fcntl_setfl(&fw, rustix::fs::OFlags::NONBLOCK).unwrap();
    fill(&fw);
    rustix::fs::fcntl_setfl(&fw, rustix::fs::OFlags::empty()).unwrap();
    let s = Scratch::new("impossible");
    let victim = Scratch::new("impossible-victim");
    // An eventfd one short of overflowing: a notification would block (or fail) there.
    let full = scratch::eventfd();
    rustix::io::write(&full, &(u64::MAX - 1).to_ne_bytes()).unwrap();
    let t0 = Instant::now();
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        assert_eq!(
            aio.aio_read(Aiocb::read(w.as_fd(), &mut a, 0))
                .err()
                .map(|r| r.error),
            Some(Errno::BADF)
        );
        assert_eq!(
            aio.aio_write(Aiocb::write(r.as_fd(), &msg, 0))
                .err()
                .map(|r| r.error),
            Some(Errno::BADF)
        );
        assert_eq!(
            aio.aio_read(Aiocb::read(dir.as_fd(), &mut d, 0))
                .err()
                .map(|r| r.error),
            Some(Errno::ISDIR)
        );
        let f = aio
            .aio_fsync(Aiocb::sync(w.as_fd(), SyncMode::Sync))
            .unwrap();
        settle(aio, f);
        assert_eq!(aio.aio_error(f), Err(Errno::INVAL), "fsync on a pipe");
        assert_eq!(aio.aio_suspend(&[], None), Err(Errno::INVAL));
        for not_eventfd in [fw.as_fd(), victim.file.as_fd()] {
            let refused = aio.aio_write(
                Aiocb::write(s.file.as_fd(), &msg, 0).notify(Notify::Eventfd(not_eventfd)),
            );
            assert_eq!(
                refused.err().map(|r| r.error),
                Some(Errno::INVAL),
                "a notification fd that is no eventfd"
            );
        }
        let id = aio
            .aio_write(Aiocb::write(s.file.as_fd(), &msg, 0).notify(Notify::Eventfd(full.as_fd())))
            .unwrap();
        settle(aio, id);
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(4));
    })
    .unwrap();
    assert_eq!(
        std::fs::metadata(&victim.path).unwrap().len(),
        0,
        "the layer wrote into a regular file passed as an eventfd"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    Passed
}

fn return_once_and_in_progress() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("once");
    let file = &s.file;
    let mut a = [0u8; 4];
    let (r, _w) = pipe();
    let mut p = [0u8; 4];
    let sync = ctx.is_none();
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_read(Aiocb::read(file.as_fd(), &mut a, 0)).unwrap();
        settle(aio, id);
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(0));
        assert_eq!(
            aio.aio_return(id).err(),
            Some(Errno::INVAL),
            "aio_return twice"
        );
        assert_eq!(
            aio.aio_error(id),
            Err(Errno::INVAL),
            "aio_error after aio_return"
        );
        if !sync {
            let pending = aio.aio_read(Aiocb::read(r.as_fd(), &mut p, 0)).unwrap();
            assert_eq!(aio.aio_return(pending).err(), Some(Errno::INPROGRESS));
            assert_eq!(
                aio.aio_error(pending),
                Err(Errno::INPROGRESS),
                "aio_return touched a pending request"
            );
        }
    })
    .unwrap();
    Passed
}

fn capacity_exceeded_is_eagain() -> Outcome {
    let mut ctx = ctx();
    let s = Scratch::new("cap");
    let file = &s.file;
    let data = [9u8; 4];
    posix::with::<2, _>(ctx.as_mut(), |aio| {
        let a = aio.aio_write(Aiocb::write(file.as_fd(), &data, 0)).unwrap();
        let b = aio.aio_write(Aiocb::write(file.as_fd(), &data, 4)).unwrap();
        assert_eq!(
            aio.aio_write(Aiocb::write(file.as_fd(), &data, 8))
                .err()
                .map(|r| r.error),
            Some(Errno::AGAIN)
        );
        for id in [a, b] {
            settle(aio, id);
            aio.aio_return(id).unwrap();
        }
        aio.aio_write(Aiocb::write(file.as_fd(), &data, 8)).unwrap();
    })
    .unwrap();
    Passed
}

fn scope_end_cancels_pending() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, _w) = pipe();
    let called = Cell::new(0);
    let callback = |_| called.set(called.get() + 1);
    let mut a = [0u8; 4];
    let t0 = Instant::now();
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        aio.aio_read(Aiocb::read(r.as_fd(), &mut a, 0).notify(Notify::Callback(&callback)))
            .unwrap();
    })
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(
        called.get(),
        1,
        "the request cancelled at the end was not notified"
    );
    // The cancelled read is gone for good: data that arrives now is neither written into the
    // buffer nor taken from the pipe.
    rustix::io::write(&_w, b"late").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(a, [0u8; 4], "the cancelled read wrote into the buffer");
    let mut back = [0u8; 8];
    assert_eq!(
        rustix::io::read(&r, &mut back),
        Ok(4),
        "the cancelled read took data"
    );
    assert_eq!(&back[..4], b"late");
    Passed
}

// ---------------------------------------------------------------------------------------------
// Streams, cancellation races, signals, ids and fork (regressions found by outside review)

/// "The aio_write() function shall write aiocbp->aio_nbytes to the file associated with
/// aiocbp->aio_fildes from the buffer pointed to by aiocbp->aio_buf" as write() does: a
/// blocking write on a pipe writes everything. Before the fix a 256 KiB write completed with
/// 65536 (one pipe's worth). The next write on the same pipe starts only after it.
fn stream_write_is_written_whole() -> Outcome {
    let mut ctx = ctx();
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap(); // blocking
    let big = scratch::pattern(256 * 1024, 11);
    let small = scratch::pattern(1000, 12);
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 7000];
        loop {
            std::thread::sleep(Duration::from_micros(200));
            match rustix::io::read(&r, &mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("reader: {e}"),
            }
        }
    });
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let first = aio.aio_write(Aiocb::write(w.as_fd(), &big, 0)).unwrap();
        let second = aio.aio_write(Aiocb::write(w.as_fd(), &small, 0)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        for (id, len) in [(first, big.len()), (second, small.len())] {
            while aio.aio_error(id) == Err(Errno::INPROGRESS) {
                assert!(Instant::now() < deadline, "the writes did not finish");
                let _ = aio.aio_suspend(&[id], Some(Duration::from_millis(100)));
            }
            assert_eq!(aio.aio_return(id).unwrap().result, Ok(len));
        }
    })
    .unwrap();
    drop(w);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), big.len() + small.len());
    assert!(
        got == [big, small].concat(),
        "bytes out of order or altered"
    );
    Passed
}

/// "If the requested operation(s) cannot be canceled" because they are in progress, the
/// answer is AIO_NOTCANCELED: a stream write that has transferred part of its data is in
/// progress. It then goes on, and completes with everything written.
fn partly_written_write_is_not_canceled() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, w) = pipe(); // nobody reads until later: the first transfer fills the pipe
                         // Four pipes' worth (a pipe holds 16 pages: 64 KiB here, 1 MiB with ppc64le's 64 KiB pages).
    let capacity = rustix::pipe::fcntl_getpipe_size(&w).unwrap();
    let big = scratch::pattern(4 * capacity, 13);
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(w.as_fd(), &big, 0)).unwrap();
        assert_eq!(aio.aio_error(id), Err(Errno::INPROGRESS));
        assert_eq!(
            aio.aio_cancel(w.as_fd(), Some(id)),
            Ok(CancelStatus::NotCanceled)
        );
        assert_eq!(
            aio.aio_cancel(w.as_fd(), None),
            Ok(CancelStatus::NotCanceled)
        );
        assert_eq!(aio.aio_error(id), Err(Errno::INPROGRESS), "not modified");
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while aio.aio_error(id) == Err(Errno::INPROGRESS) {
            assert!(Instant::now() < deadline, "the write did not finish");
            got += drain(&r);
            let _ = aio.aio_suspend(&[id], Some(Duration::from_millis(10)));
        }
        got += drain(&r);
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(big.len()));
        assert_eq!(got, big.len());
    })
    .unwrap();
    Passed
}

/// A request that completes while aio_cancel takes the kernel's latest completions is done:
/// "AIO_ALLDONE ... all of the operations have already completed", and aio_error agrees.
/// Before the fix, a stream read whose data arrived just before the call was reported
/// AIO_NOTCANCELED while aio_error said it was done.
fn finishing_during_cancel_is_all_done() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, w) = pipe();
    let mut buf = [0u8; 16];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut buf, 0)).unwrap();
        assert_eq!(aio.aio_error(id), Err(Errno::INPROGRESS));
        rustix::io::write(&w, b"hello").unwrap();
        std::thread::sleep(Duration::from_millis(20)); // the kernel completes the POLL
        assert_eq!(
            aio.aio_cancel(r.as_fd(), Some(id)),
            Ok(CancelStatus::AllDone)
        );
        assert_eq!(aio.aio_error(id), Ok(()));
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(5));
    })
    .unwrap();
    assert_eq!(&buf[..5], b"hello");
    Passed
}

/// Runs in a re-executed child: lio_listio(LIO_WAIT) on a read that cannot complete, with a
/// signal 200 ms later. Exit 0 if the call failed with EINTR and the request went on.
fn child_lio_listio_eintr() -> ! {
    extern "C" fn on_usr1(_: i32) {}
    // SAFETY: a handler that does nothing, without SA_RESTART, in this child process only.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as extern "C" fn(i32) as usize;
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let mut ctx = ctx();
    let (r, _w) = pipe();
    let mut buf = [0u8; 4];
    let main = thread::Thread::current();
    let code = std::thread::scope(|t| {
        t.spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            main.signal(libc::SIGUSR1); // the main thread waits in lio_listio below
        });
        posix::with::<4, _>(ctx.as_mut(), |aio| {
            let list = [Aiocb::read(r.as_fd(), &mut buf, 0)];
            let listed = aio.lio_listio(ListMode::Wait, list);
            let ret = listed.result;
            let still = listed.status[0]
                .as_ref()
                .map(|&id| aio.aio_error(id))
                .map_err(|r| r.error);
            println!("lio_listio: {ret:?}, then aio_error: {still:?}");
            i32::from(!(ret == Err(Errno::INTR) && still == Ok(Err(Errno::INPROGRESS))))
        })
        .unwrap()
    });
    std::process::exit(code)
}

/// "[EINTR] A signal was delivered while waiting for all I/O requests to complete during an
/// LIO_WAIT operation." Before the fix lio_listio went on waiting (here: for ever).
fn lio_listio_wait_interrupted_is_eintr() -> Outcome {
    let ctx = ctx();
    need_async!(ctx);
    drop(ctx);
    let mut child = reexec::self_command()
        .env("LINUX_AIO_TEST_CHILD", "lio-eintr")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lio_listio(LIO_WAIT) was still waiting 10 s after the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "child: {status:?}: {out}");
    Passed
}

/// An id belongs to the layer that issued it. Before the fix, an id kept from an ended layer
/// named the next layer's request at the same slot and generation: aio_error, aio_cancel and
/// aio_return reached it, and aio_return handed over its result and buffer.
fn ids_belong_to_their_layer() -> Outcome {
    let (mut ctx, mut inner_ctx) = (ctx(), ctx());
    let s = Scratch::new("ids");
    let file = &s.file;
    let (a, b) = ([1u8; 8], [2u8; 8]);
    let old = posix::with::<2, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(file.as_fd(), &a, 0)).unwrap();
        settle(aio, id);
        id // not returned: still "done" in the ended layer
    })
    .unwrap();
    posix::with::<2, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_write(Aiocb::write(file.as_fd(), &b, 8)).unwrap(); // same slot
        assert_ne!(id, old);
        settle(aio, id);
        assert_eq!(aio.aio_error(old), Err(Errno::INVAL));
        assert_eq!(aio.aio_return(old).err(), Some(Errno::INVAL));
        assert_eq!(aio.aio_cancel(file.as_fd(), Some(old)), Err(Errno::INVAL));
        // A layer inside this one refuses this one's ids, and the other way round.
        let mut c = [3u8; 8];
        posix::with::<2, _>(inner_ctx.as_mut(), |inner| {
            assert_eq!(inner.aio_error(id), Err(Errno::INVAL));
            assert_eq!(inner.aio_return(id).err(), Some(Errno::INVAL));
            let other = inner
                .aio_read(Aiocb::read(file.as_fd(), &mut c, 0))
                .unwrap();
            settle(inner, other);
            assert_eq!(aio.aio_error(other), Err(Errno::INVAL));
            assert_eq!(inner.aio_return(other).unwrap().result, Ok(8));
        })
        .unwrap();
        // The layer's own request was not touched by any of that.
        let back = aio.aio_return(id).unwrap();
        assert_eq!(back.result, Ok(8));
        assert!(matches!(back.buffer, Buffer::Write(w) if w == b));
    })
    .unwrap();
    Passed
}

/// A fork from inside the layer: the child's copy refuses every call with EINVAL, ends
/// without waiting for or taking the parent's requests, and the parent completes them all.
fn fork_inside_the_layer() -> Outcome {
    let mut ctx = ctx();
    need_async!(ctx);
    let (r, w) = pipe();
    let s = Scratch::new("fork");
    let file = &s.file;
    let data = [9u8; 16];
    let mut buf = [0u8; 8];
    let mut other = [0u8; 8];
    let outcome = posix::with::<4, _>(ctx.as_mut(), |aio| {
        let read = aio.aio_read(Aiocb::read(r.as_fd(), &mut buf, 0)).unwrap();
        let write = aio.aio_write(Aiocb::write(file.as_fd(), &data, 0)).unwrap();
        // SAFETY: the child only calls into the layer, returns from this closure, and exits
        // right after the layer ends (below).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let checks = [
                aio.aio_error(read) == Err(Errno::INVAL),
                aio.aio_return(write).err() == Some(Errno::INVAL),
                aio.aio_suspend(&[read], Some(Duration::from_millis(50))) == Err(Errno::INVAL),
                aio.aio_cancel(r.as_fd(), None) == Err(Errno::INVAL),
                aio.aio_read(Aiocb::read(file.as_fd(), &mut other, 0))
                    .err()
                    .map(|r| r.error)
                    == Some(Errno::INVAL),
                aio.progress() == Err(Errno::INVAL),
                {
                    let list = [Aiocb::sync(file.as_fd(), SyncMode::Sync)];
                    let listed = aio.lio_listio(ListMode::NoWait, list);
                    listed.result == Err(Errno::INVAL)
                        && matches!(&listed.status[0], Err(r) if r.error == Errno::INVAL)
                },
            ];
            let failed = checks.iter().position(|ok| !ok).map_or(0, |i| i as i32 + 1);
            return Err(failed);
        }
        rustix::io::write(&w, b"fork").unwrap();
        settle(aio, read);
        settle(aio, write);
        Ok((
            pid,
            aio.aio_return(read).unwrap().result,
            aio.aio_return(write).unwrap().result,
        ))
    })
    .unwrap();
    let (pid, read, write) = match outcome {
        Ok(parent) => parent,
        // SAFETY: the forked child, past the layer's end: exit at once.
        Err(code) => unsafe { libc::_exit(code) },
    };
    assert_eq!((read, write), (Ok(4), Ok(16)), "the parent's requests");
    assert_eq!(&buf[..4], b"fork");
    let start = Instant::now();
    let status = loop {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung at the end of its copy of the layer");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(libc::WIFEXITED(status), "child killed by a signal");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "check failed in the forked child"
    );
    Passed
}
