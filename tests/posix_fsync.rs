//! The POSIX layer's aio_fsync barrier: an fsync waits for every request queued before it on
//! the same file (through the same descriptor, a `dup` of it or a second `open`), is reported
//! in progress meanwhile, can be cancelled while held, and is run, not dropped, when the layer
//! ends. Written as an attack on 590cf40/ed6bc3d by a reviewer who had not seen the code.
//! `cargo test --test posix_fsync [filter]`.

#[path = "support/runner.rs"]
mod runner;
#[path = "support/scratch.rs"]
mod scratch;

use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use linux_aio::posix::{self, Aiocb, CancelStatus, Id, ListMode, Notify, SyncMode};
use linux_aio::{Context, Errno};
use runner::Outcome::Skipped;
use runner::{Outcome, Passed};
use scratch::{aligned, open_direct, Scratch};

const TESTS: &[runner::Test] = &[
    (
        "dup_fd_fsync_covers_earlier_write",
        dup_fd_fsync_covers_earlier_write,
    ),
    (
        "second_open_fsync_covers_earlier_write",
        second_open_fsync_covers_earlier_write,
    ),
    ("other_file_fsync_not_held", other_file_fsync_not_held),
    (
        "held_fsync_status_and_suspend",
        held_fsync_status_and_suspend,
    ),
    ("cancel_held_fsync", cancel_held_fsync),
    ("layer_end_runs_held_fsync", layer_end_runs_held_fsync),
    ("lio_writes_then_two_fsyncs", lio_writes_then_two_fsyncs),
    (
        "fsync_behind_cancelled_stream_write",
        fsync_behind_cancelled_stream_write,
    ),
    (
        "cancel_none_with_held_fsync_on_pipe",
        cancel_none_with_held_fsync_on_pipe,
    ),
    (
        "layer_end_with_held_fsync_on_full_pipe",
        layer_end_with_held_fsync_on_full_pipe,
    ),
    ("fsync_behind_ring_full_queue", fsync_behind_ring_full_queue),
    ("fsync_after_refused_write", fsync_after_refused_write),
    (
        "other_descriptors_of_a_file_are_held",
        other_descriptors_of_a_file_are_held,
    ),
    (
        "streams_tie_an_fsync_by_descriptor_number_only",
        streams_tie_an_fsync_by_descriptor_number_only,
    ),
    (
        "many_held_fsyncs_at_layer_end",
        many_held_fsyncs_at_layer_end,
    ),
];

fn main() {
    runner::run("posix_fsync", TESTS)
}

fn ctx(n: u32) -> Option<Context> {
    posix::context(n).expect("io_setup")
}

/// [`big_direct`], or the test is skipped with its reason.
macro_rules! need_direct {
    ($tag:expr) => {
        match big_direct($tag) {
            Ok(x) => x,
            Err(why) => return Skipped(why),
        }
    };
}

/// A context of 16 (as `Some`, for `posix::with`), or the test is skipped: no kernel AIO.
macro_rules! need_ctx {
    () => {
        match ctx(16) {
            Some(c) => Some(c),
            None => return Skipped("no kernel AIO (ENOSYS)".into()),
        }
    };
}

const BIG: usize = 64 << 20;

/// A preallocated file of 2 x 64 MiB (O_DIRECT overwrites then are truly asynchronous) opened
/// O_DIRECT; the reason to skip where that cannot give a request in flight.
fn big_direct(tag: &str) -> Result<(Scratch, std::fs::File), String> {
    const TMPFS_MAGIC: u32 = 0x0102_1994;
    let s = Scratch::new(tag);
    // f_type is a signed or unsigned word depending on the architecture; the magic is 32 bits.
    #[allow(clippy::unnecessary_cast)]
    if rustix::fs::fstatfs(&s.file).map(|f| f.f_type as u64 as u32) == Ok(TMPFS_MAGIC) {
        // Checked before writing 128 MiB, which takes minutes in the emulated guests.
        return Err(
            "the temp directory is tmpfs: an O_DIRECT write there is a memory copy \
                    inside io_submit, never in flight (set TMPDIR to a disk's directory)"
                .into(),
        );
    }
    {
        let mut f = &s.file;
        let zeros = vec![0u8; BIG];
        for _ in 0..2 {
            f.write_all(&zeros).unwrap();
        }
        f.sync_all().unwrap();
    }
    let file = open_direct(&s.path).ok_or("O_DIRECT unsupported here")?;
    Ok((s, file))
}

fn pipe_full() -> (OwnedFd, OwnedFd) {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
    let chunk = [0u8; 65536];
    while rustix::io::write(&w, &chunk).is_ok() {}
    (r, w)
}

/// Waits until `f` is no longer in progress; returns (write status then, fsync status).
fn race_fsync_vs_write(
    make_sync_fd: impl Fn(&Scratch, &std::fs::File) -> OwnedFd,
    tag: &str,
) -> Outcome {
    let mut ctx = need_ctx!();
    let (s, file) = need_direct!(tag);
    let other = make_sync_fd(&s, &file);
    let mut storage = Vec::new();
    let buf = aligned(&mut storage, BIG);
    buf.fill(3);
    let buf = &*buf;
    let (mut tried, mut violations) = (0, 0);
    for round in 0..5u64 {
        let r = posix::with::<4, _>(ctx.as_mut(), |aio| {
            let w = aio
                .aio_write(Aiocb::write(file.as_fd(), buf, (round % 2) * BIG as u64))
                .unwrap();
            if aio.aio_error(w) != Err(Errno::INPROGRESS) {
                return None; // the write was too fast: no window
            }
            let f = aio
                .aio_fsync(Aiocb::sync(other.as_fd(), SyncMode::Sync))
                .unwrap();
            loop {
                let (we, fe) = (aio.aio_error(w), aio.aio_error(f));
                if fe != Err(Errno::INPROGRESS) {
                    return Some((we, fe));
                }
                let _ = aio.aio_suspend(&[f], Some(Duration::from_millis(20)));
            }
        })
        .unwrap();
        println!("round {round}: {r:?}");
        if let Some((we, _)) = r {
            tried += 1;
            violations += (we == Err(Errno::INPROGRESS)) as u32;
        }
    }
    if tried == 0 {
        return Skipped("every 64 MiB O_DIRECT write finished inside io_submit".into());
    }
    assert_eq!(
        violations, 0,
        "aio_fsync on another descriptor of the same file completed while the earlier \
         aio_write on that file was still in progress ({violations}/{tried} rounds)"
    );
    Passed
}

/// POSIX: "I/O operations associated with the file indicated by ... aio_fildes". A dup()
/// of the descriptor is the same open file.
fn dup_fd_fsync_covers_earlier_write() -> Outcome {
    race_fsync_vs_write(|_, f| rustix::io::dup(f).unwrap(), "dup")
}

/// The same file opened a second time.
fn second_open_fsync_covers_earlier_write() -> Outcome {
    race_fsync_vs_write(
        |s, _| OwnedFd::from(open_direct(&s.path).unwrap()),
        "second",
    )
}

/// A write in flight on file A does not hold an fsync of file B.
fn other_file_fsync_not_held() -> Outcome {
    let mut ctx = need_ctx!();
    let (_s, file) = need_direct!("other-a");
    let b = Scratch::new("other-b");
    let mut storage = Vec::new();
    let buf = aligned(&mut storage, BIG);
    let buf = &*buf;
    let mut held = 0;
    let mut tried = 0;
    for round in 0..3u64 {
        let r = posix::with::<4, _>(ctx.as_mut(), |aio| {
            let w = aio
                .aio_write(Aiocb::write(file.as_fd(), buf, (round % 2) * BIG as u64))
                .unwrap();
            if aio.aio_error(w) != Err(Errno::INPROGRESS) {
                return None;
            }
            let f = aio
                .aio_fsync(Aiocb::sync(b.file.as_fd(), SyncMode::Sync))
                .unwrap();
            let r = aio.aio_suspend(&[f], None);
            Some((r, aio.aio_error(f), aio.aio_error(w)))
        })
        .unwrap();
        println!("round {round}: {r:?}");
        if let Some((_, fe, we)) = r {
            tried += 1;
            assert_eq!(fe, Ok(()));
            held += (we != Err(Errno::INPROGRESS)) as u32;
        }
    }
    if tried == 0 {
        return Skipped("no window".into());
    }
    println!("fsync of B finished after A's write in {held}/{tried} rounds (timing only)");
    Passed
}

/// A held fsync: aio_error and aio_return say EINPROGRESS; aio_suspend honours 0 and a short
/// timeout, and wakes for its completion.
fn held_fsync_status_and_suspend() -> Outcome {
    let mut ctx = need_ctx!();
    let (_s, file) = need_direct!("status");
    let mut storage = Vec::new();
    let buf = aligned(&mut storage, BIG);
    let buf = &*buf;
    let mut tried = 0;
    for round in 0..5u64 {
        let ok = posix::with::<4, _>(ctx.as_mut(), |aio| {
            let w = aio
                .aio_write(Aiocb::write(file.as_fd(), buf, (round % 2) * BIG as u64))
                .unwrap();
            let f = aio
                .aio_fsync(Aiocb::sync(file.as_fd(), SyncMode::DataSync))
                .unwrap();
            if aio.aio_error(w) != Err(Errno::INPROGRESS) {
                return false;
            }
            assert_eq!(aio.aio_error(f), Err(Errno::INPROGRESS));
            assert_eq!(aio.aio_return(f).err(), Some(Errno::INPROGRESS));
            let t = Instant::now();
            assert_eq!(
                aio.aio_suspend(&[f], Some(Duration::ZERO)),
                Err(Errno::AGAIN)
            );
            assert!(t.elapsed() < Duration::from_millis(5), "{:?}", t.elapsed());
            let t = Instant::now();
            let r = aio.aio_suspend(&[f], Some(Duration::from_millis(3)));
            let e = t.elapsed();
            println!(
                "suspend 3 ms: {r:?} after {e:?}, write {:?}",
                aio.aio_error(w)
            );
            if r == Err(Errno::AGAIN) {
                assert!(e >= Duration::from_millis(3), "early timeout {e:?}");
                assert!(e < Duration::from_millis(50), "late timeout {e:?}");
            }
            let t = Instant::now();
            while aio.aio_error(f) == Err(Errno::INPROGRESS) {
                aio.aio_suspend(&[f], None).unwrap();
                assert!(t.elapsed() < Duration::from_secs(10));
            }
            assert_eq!(aio.aio_error(f), Ok(()));
            assert_eq!(aio.aio_error(w), Ok(()));
            assert_eq!(aio.aio_return(f).unwrap().result, Ok(0));
            true
        })
        .unwrap();
        tried += ok as u32;
    }
    if tried == 0 {
        return Skipped("no window".into());
    }
    Passed
}

/// aio_cancel of the held fsync: AIO_CANCELED, ECANCELED, notified exactly once; the earlier
/// write goes on.
fn cancel_held_fsync() -> Outcome {
    let mut ctx = need_ctx!();
    let (_s, file) = need_direct!("cancel");
    let mut storage = Vec::new();
    let buf = aligned(&mut storage, BIG);
    let buf = &*buf;
    let calls = RefCell::new(Vec::new());
    let note = |id: Id| calls.borrow_mut().push(id);
    let mut tried = 0;
    for round in 0..5u64 {
        calls.borrow_mut().clear();
        let r = posix::with::<4, _>(ctx.as_mut(), |aio| {
            let w = aio
                .aio_write(Aiocb::write(file.as_fd(), buf, (round % 2) * BIG as u64))
                .unwrap();
            let f = aio
                .aio_fsync(
                    Aiocb::sync(file.as_fd(), SyncMode::Sync).notify(Notify::Callback(&note)),
                )
                .unwrap();
            if aio.aio_error(w) != Err(Errno::INPROGRESS) {
                return None;
            }
            let c = aio.aio_cancel(file.as_fd(), Some(f));
            assert_eq!(c, Ok(CancelStatus::Canceled));
            assert_eq!(aio.aio_error(f), Err(Errno::CANCELED));
            assert_eq!(calls.borrow().as_slice(), &[f]);
            assert_eq!(
                aio.aio_cancel(file.as_fd(), Some(f)),
                Ok(CancelStatus::AllDone)
            );
            aio.aio_suspend(&[w], None).unwrap();
            while aio.aio_error(w) == Err(Errno::INPROGRESS) {
                aio.aio_suspend(&[w], None).unwrap();
            }
            assert_eq!(aio.aio_return(f).unwrap().result, Err(Errno::CANCELED));
            Some(f)
        })
        .unwrap();
        if let Some(f) = r {
            tried += 1;
            assert_eq!(calls.borrow().as_slice(), &[f], "notified exactly once");
        }
    }
    if tried == 0 {
        return Skipped("no window".into());
    }
    Passed
}

/// ed6bc3d: the closure returns with the fsync held behind a 64 MiB write: the fsync goes to
/// the kernel after the write (the layer's eventfd counts two kernel completions), is notified
/// once, and with() returns.
fn layer_end_runs_held_fsync() -> Outcome {
    let mut ctx = need_ctx!();
    let (_s, file) = need_direct!("end");
    let mut storage = Vec::new();
    let buf = aligned(&mut storage, BIG);
    let buf = &*buf;
    let calls = Cell::new(0);
    let note = |_: Id| calls.set(calls.get() + 1);
    let mut tried = 0;
    for round in 0..5u64 {
        calls.set(0);
        let t = Instant::now();
        let efd = posix::with::<4, _>(ctx.as_mut(), |aio| {
            let efd = rustix::io::dup(aio.eventfd().unwrap()).unwrap();
            let w = aio
                .aio_write(Aiocb::write(file.as_fd(), buf, (round % 2) * BIG as u64))
                .unwrap();
            let _ = rustix::io::read(&efd, &mut [0u8; 8]);
            aio.aio_fsync(
                Aiocb::sync(file.as_fd(), SyncMode::Sync).notify(Notify::Callback(&note)),
            )
            .unwrap();
            (aio.aio_error(w) == Err(Errno::INPROGRESS)).then_some(efd)
        })
        .unwrap();
        let Some(efd) = efd else { continue };
        tried += 1;
        let mut b = [0u8; 8];
        let n = rustix::io::read(&efd, &mut b).map(|_| u64::from_ne_bytes(b));
        println!(
            "round {round}: end took {:?}, kernel completions {n:?}, notified {}",
            t.elapsed(),
            calls.get()
        );
        assert_eq!(calls.get(), 1, "the held fsync is notified once");
        assert_eq!(n, Ok(2), "write and fsync both completed in the kernel");
    }
    if tried == 0 {
        return Skipped("no window".into());
    }
    Passed
}

/// lio_listio(WAIT, [write, fdatasync, fsync]) on one file.
fn lio_writes_then_two_fsyncs() -> Outcome {
    let mut ctx = need_ctx!();
    let (_s, file) = need_direct!("lio");
    let mut storage = Vec::new();
    let buf = aligned(&mut storage, BIG);
    let buf = &*buf;
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let l = aio.lio_listio(
            ListMode::Wait,
            [
                Aiocb::write(file.as_fd(), buf, 0),
                Aiocb::sync(file.as_fd(), SyncMode::DataSync),
                Aiocb::sync(file.as_fd(), SyncMode::Sync),
                Aiocb::write(file.as_fd(), buf, BIG as u64),
            ],
        );
        assert_eq!(l.result, Ok(()));
        for s in &l.status {
            let id = *s.as_ref().unwrap();
            assert_eq!(aio.aio_error(id), Ok(()));
        }
        let ids: Vec<Id> = l.status.iter().map(|s| *s.as_ref().unwrap()).collect();
        assert_eq!(aio.aio_return(ids[0]).unwrap().result, Ok(BIG));
        assert_eq!(aio.aio_return(ids[1]).unwrap().result, Ok(0));
        assert_eq!(aio.aio_return(ids[2]).unwrap().result, Ok(0));
    })
    .unwrap();
    Passed
}

/// A stream write waits for room on a full pipe; an fsync of the pipe is held behind it;
/// cancelling the write releases the fsync, which fails EINVAL (the kernel has no fsync for a
/// pipe), as it does with nothing ahead.
fn fsync_behind_cancelled_stream_write() -> Outcome {
    let mut ctx = need_ctx!();
    let (_r, w) = pipe_full();
    let data = [1u8; 100];
    let calls = Cell::new(0);
    let note = |_: Id| calls.set(calls.get() + 1);
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let wr = aio.aio_write(Aiocb::write(w.as_fd(), &data, 0)).unwrap();
        let f = aio
            .aio_fsync(Aiocb::sync(w.as_fd(), SyncMode::Sync).notify(Notify::Callback(&note)))
            .unwrap();
        assert_eq!(aio.aio_error(wr), Err(Errno::INPROGRESS));
        assert_eq!(
            aio.aio_error(f),
            Err(Errno::INPROGRESS),
            "held behind the write"
        );
        assert_eq!(
            aio.aio_cancel(w.as_fd(), Some(wr)),
            Ok(CancelStatus::Canceled)
        );
        assert_eq!(aio.aio_error(wr), Err(Errno::CANCELED));
        assert_eq!(
            aio.aio_error(f),
            Err(Errno::INVAL),
            "fsync on a pipe, released"
        );
        assert_eq!(calls.get(), 1);
    })
    .unwrap();
    assert_eq!(calls.get(), 1);
    Passed
}

fn cancel_none_with_held_fsync_on_pipe() -> Outcome {
    let mut ctx = need_ctx!();
    let (_r, w) = pipe_full();
    let data = [1u8; 100];
    let calls = RefCell::new(Vec::new());
    let note = |id: Id| calls.borrow_mut().push(id);
    let ids = posix::with::<4, _>(ctx.as_mut(), |aio| {
        let wr = aio
            .aio_write(Aiocb::write(w.as_fd(), &data, 0).notify(Notify::Callback(&note)))
            .unwrap();
        let f1 = aio
            .aio_fsync(Aiocb::sync(w.as_fd(), SyncMode::Sync).notify(Notify::Callback(&note)))
            .unwrap();
        let f2 = aio
            .aio_fsync(Aiocb::sync(w.as_fd(), SyncMode::DataSync).notify(Notify::Callback(&note)))
            .unwrap();
        assert_eq!(aio.aio_cancel(w.as_fd(), None), Ok(CancelStatus::Canceled));
        for id in [wr, f1, f2] {
            assert_eq!(aio.aio_error(id), Err(Errno::CANCELED));
        }
        [wr, f1, f2]
    })
    .unwrap();
    let got = calls.into_inner();
    assert_eq!(got.len(), 3, "{got:?}");
    for id in ids {
        assert_eq!(got.iter().filter(|&&g| g == id).count(), 1);
    }
    Passed
}

/// The closure returns with an fsync held behind a stream write that can never complete (the
/// pipe stays full): the end must not hang; the write is cancelled, the fsync then runs (and
/// fails EINVAL): each notified once.
fn layer_end_with_held_fsync_on_full_pipe() -> Outcome {
    let mut ctx = need_ctx!();
    let (_r, w) = pipe_full();
    let data = [1u8; 100];
    let calls = Cell::new(0);
    let note = |_: Id| calls.set(calls.get() + 1);
    let t = Instant::now();
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        aio.aio_write(Aiocb::write(w.as_fd(), &data, 0).notify(Notify::Callback(&note)))
            .unwrap();
        aio.aio_fsync(Aiocb::sync(w.as_fd(), SyncMode::Sync).notify(Notify::Callback(&note)))
            .unwrap();
    })
    .unwrap();
    println!("end took {:?}", t.elapsed());
    assert_eq!(calls.get(), 2);
    Passed
}

/// The kernel ring is full (buffered reads complete inside io_submit and wait there): later
/// reads are queued for ring space, and an fsync behind them must still complete.
fn fsync_behind_ring_full_queue() -> Outcome {
    let mut ctx = ctx(1);
    if ctx.is_none() {
        return Skipped("ENOSYS".into());
    }
    let nr = ctx.as_ref().unwrap().ring_slots().unwrap_or(0) as usize;
    if nr + 8 > 300 {
        return Skipped(format!("ring of {nr} slots"));
    }
    let s = Scratch::new("ringfull");
    (&s.file).write_all(&[5u8; 4096]).unwrap();
    let mut bufs = vec![[0u8; 8]; 300];
    let calls = Cell::new(0);
    let note = |_: Id| calls.set(calls.get() + 1);
    posix::with::<301, _>(ctx.as_mut(), |aio| {
        let mut ids = Vec::new();
        for b in bufs.iter_mut() {
            ids.push(aio.aio_read(Aiocb::read(s.file.as_fd(), b, 0)).unwrap());
        }
        let f = aio
            .aio_fsync(Aiocb::sync(s.file.as_fd(), SyncMode::Sync).notify(Notify::Callback(&note)))
            .unwrap();
        let t = Instant::now();
        while aio.aio_error(f) == Err(Errno::INPROGRESS) {
            aio.aio_suspend(&[f], Some(Duration::from_secs(1))).unwrap();
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "fsync never completed"
            );
        }
        assert_eq!(aio.aio_error(f), Ok(()));
        for id in ids {
            assert_ne!(
                aio.aio_error(id),
                Err(Errno::INPROGRESS),
                "fsync done before an earlier read"
            );
        }
    })
    .unwrap();
    assert_eq!(calls.get(), 1);
    Passed
}

/// An O_DIRECT write the kernel refuses at submission (misaligned: EINVAL) does not hold the
/// fsync behind it.
fn fsync_after_refused_write() -> Outcome {
    let mut ctx = need_ctx!();
    let (_s, file) = need_direct!("refused");
    let data = [1u8; 3];
    let refused = posix::with::<4, _>(ctx.as_mut(), |aio| {
        let w = aio.aio_write(Aiocb::write(file.as_fd(), &data, 1)).unwrap();
        let f = aio
            .aio_fsync(Aiocb::sync(file.as_fd(), SyncMode::Sync))
            .unwrap();
        let _ = aio.aio_suspend(&[w], Some(Duration::from_secs(5)));
        let refused = aio.aio_error(w) == Err(Errno::INVAL);
        aio.aio_suspend(&[f], Some(Duration::from_secs(5))).unwrap();
        assert_eq!(aio.aio_error(f), Ok(()));
        refused
    })
    .unwrap();
    if !refused {
        // tmpfs (Linux 6.6 and later) takes O_DIRECT without any alignment.
        return Skipped("this file system accepts a misaligned O_DIRECT write".into());
    }
    Passed
}

/// The fix for the dup() gap, deterministically: a 64 MiB O_DIRECT write is in flight
/// through one descriptor; fsyncs through a second `open` of the file and through a `dup` of
/// the first are cancelled right after they are queued. If the write is still in flight once
/// both cancels have returned, it was in flight when the fsyncs were queued, so both were held
/// (not yet in the kernel): `Canceled`, not `NotCanceled`. Up to five tries for that window.
fn other_descriptors_of_a_file_are_held() -> Outcome {
    let mut ctx = need_ctx!();
    let (s, file) = need_direct!("other-descriptors");
    let second = std::fs::OpenOptions::new()
        .write(true)
        .open(&s.path)
        .unwrap();
    let dup = rustix::io::dup(&file).unwrap();
    let mut storage = Vec::new();
    let buf = &*aligned(&mut storage, BIG);
    for round in 0..5u64 {
        let seen = posix::with::<4, _>(ctx.as_mut(), |aio| {
            let w = aio
                .aio_write(Aiocb::write(file.as_fd(), buf, (round % 2) * BIG as u64))
                .unwrap();
            let f1 = aio
                .aio_fsync(Aiocb::sync(second.as_fd(), SyncMode::Sync))
                .unwrap();
            let f2 = aio
                .aio_fsync(Aiocb::sync(dup.as_fd(), SyncMode::DataSync))
                .unwrap();
            let c1 = aio.aio_cancel(second.as_fd(), Some(f1));
            let c2 = aio.aio_cancel(dup.as_fd(), Some(f2));
            let still = aio.aio_error(w) == Err(Errno::INPROGRESS);
            (still, c1, c2)
        })
        .unwrap();
        println!(
            "round {round}: write still in flight {}, cancels {:?} {:?}",
            seen.0, seen.1, seen.2
        );
        if seen.0 {
            assert_eq!(
                seen.1,
                Ok(CancelStatus::Canceled),
                "an fsync through a second open of the file went to the kernel before the write"
            );
            assert_eq!(
                seen.2,
                Ok(CancelStatus::Canceled),
                "an fsync through a dup() went to the kernel before the write"
            );
            return Passed;
        }
    }
    Skipped("the 64 MiB O_DIRECT write completed before the cancels, five times".into())
}

/// Only regular files (and block devices) are compared by identity: a pipe's two ends share an
/// inode and every eventfd or timerfd shares the anonymous inode, but an fsync of those fails
/// at once, and must not wait behind an unrelated request that may never complete. Through the
/// same descriptor number it is still held (the order POSIX asks for on one descriptor).
fn streams_tie_an_fsync_by_descriptor_number_only() -> Outcome {
    let mut ctx = need_ctx!();
    let (r, w) = pipe_full();
    let w2 = rustix::io::dup(&w).unwrap();
    let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
    // SAFETY: timerfd_create has no memory arguments.
    let tfd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) };
    assert!(tfd >= 0);
    // SAFETY: just created, owned from here on.
    let tfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(tfd) };
    let data = [1u8; 100];
    let mut rbuf = vec![0u8; 65536];
    let mut tbuf = [0u8; 8];
    posix::with::<8, _>(ctx.as_mut(), |aio| {
        let settle = |id: Id| {
            let t = Instant::now();
            while aio.aio_error(id) == Err(Errno::INPROGRESS)
                && t.elapsed() < Duration::from_secs(2)
            {
                let _ = aio.aio_suspend(&[id], Some(Duration::from_millis(20)));
            }
            aio.aio_error(id)
        };
        let wr = aio.aio_write(Aiocb::write(w.as_fd(), &data, 0)).unwrap();
        let rd = aio
            .aio_read(Aiocb::read(tfd.as_fd(), &mut tbuf, 0))
            .unwrap();
        let same = aio
            .aio_fsync(Aiocb::sync(w.as_fd(), SyncMode::Sync))
            .unwrap();
        let other_end = aio
            .aio_fsync(Aiocb::sync(w2.as_fd(), SyncMode::Sync))
            .unwrap();
        let anon = aio
            .aio_fsync(Aiocb::sync(efd.as_fd(), SyncMode::Sync))
            .unwrap();
        assert_eq!(
            settle(other_end),
            Err(Errno::INVAL),
            "fsync through a dup of a pipe"
        );
        assert_eq!(
            settle(anon),
            Err(Errno::INVAL),
            "fsync of an eventfd behind a timerfd read"
        );
        assert_eq!(
            aio.aio_error(same),
            Err(Errno::INPROGRESS),
            "held: the same number"
        );
        while rustix::io::read(&r, &mut rbuf).is_ok() {} // room: the write goes, then the fsync
        assert_eq!(settle(wr), Ok(()));
        assert_eq!(settle(same), Err(Errno::INVAL));
        assert_eq!(
            aio.aio_cancel(tfd.as_fd(), Some(rd)),
            Ok(CancelStatus::Canceled)
        );
    })
    .unwrap();
    Passed
}

/// Seven fsyncs held behind one 64 MiB write and one cancel(None) in between: the end runs the
/// rest, each notified once, with two kernel completions per fsync + write counted.
fn many_held_fsyncs_at_layer_end() -> Outcome {
    let mut ctx = need_ctx!();
    let (_s, file) = need_direct!("many");
    let mut storage = Vec::new();
    let buf = aligned(&mut storage, BIG);
    let buf = &*buf;
    let calls = RefCell::new(Vec::new());
    let note = |id: Id| calls.borrow_mut().push(id);
    let (efd, ids, window, st) = posix::with::<8, _>(ctx.as_mut(), |aio| {
        let efd = rustix::io::dup(aio.eventfd().unwrap()).unwrap();
        let w = aio
            .aio_write(Aiocb::write(file.as_fd(), buf, 0).notify(Notify::Callback(&note)))
            .unwrap();
        let _ = rustix::io::read(&efd, &mut [0u8; 8]);
        let ids: Vec<Id> = (0..7)
            .map(|k| {
                let m = if k % 2 == 0 {
                    SyncMode::Sync
                } else {
                    SyncMode::DataSync
                };
                aio.aio_fsync(Aiocb::sync(file.as_fd(), m).notify(Notify::Callback(&note)))
                    .unwrap()
            })
            .collect();
        let window = aio.aio_error(w) == Err(Errno::INPROGRESS);
        // cancel the 4th alone
        let st = aio.aio_cancel(file.as_fd(), Some(ids[3]));
        (efd, [vec![w], ids].concat(), window, st)
    })
    .unwrap();
    if !window {
        return Skipped("no window".into());
    }
    assert_eq!(st, Ok(CancelStatus::Canceled));
    let got = calls.into_inner();
    for id in &ids {
        assert_eq!(got.iter().filter(|g| *g == id).count(), 1, "{got:?}");
    }
    let mut b = [0u8; 8];
    let n = rustix::io::read(&efd, &mut b).map(|_| u64::from_ne_bytes(b));
    println!("kernel completions after the first write was submitted: {n:?}");
    assert_eq!(n, Ok(7), "the write and the six fsyncs not cancelled");
    Passed
}
