//! Adversarial review of the safe API (`Context::scope`, `Scope`, `Request`, `Buffer`,
//! `ReadVecs`, `Completion`), at run time. The compile-time half is `tests/compile_fail/` (`cargo xtask probes`).
//!
//! Each test tries to make the kernel write into memory the program has got back (after a
//! scope ended normally, by `?`, by a panic, with completions forgotten...), using O_DIRECT
//! reads on a real filesystem (the only reads that stay in flight after io_submit), then
//! overwrites the buffer and checks that nothing writes it afterwards.
#![allow(clippy::forget_non_drop)] // forgetting what the API hands out is the attack

#[path = "support/runner.rs"]
mod runner;
#[path = "support/scratch.rs"]
mod scratch;

use std::io::Write as _;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use linux_aio::{Buffer, Context, Errno, ReadVecs, Request, ScopedCancel};
use runner::{skipped, Outcome, Passed};
use rustix::io::IoSliceMut;
use scratch::{aligned, Scratch};

fn main() {
    runner::run(
        "soundness",
        &[
            ("direct_read_scope_end_normal", direct_read_scope_end_normal),
            (
                "direct_read_scope_end_question_mark",
                direct_read_scope_end_question_mark,
            ),
            ("direct_read_scope_end_panic", direct_read_scope_end_panic),
            (
                "direct_read_completions_forgotten",
                direct_read_completions_forgotten,
            ),
            ("direct_readv_scope_end_panic", direct_readv_scope_end_panic),
            (
                "readvecs_reused_after_completion",
                readvecs_reused_after_completion,
            ),
            ("cancel_answers", cancel_answers),
            ("stale_and_foreign_tickets", stale_and_foreign_tickets),
            ("zero_slot_scope", zero_slot_scope),
            ("completion_sent_to_thread", completion_sent_to_thread),
            ("prepared_then_panic", prepared_then_panic),
            ("nested_scopes_panic_inner", nested_scopes_panic_inner),
        ],
    )
}

/// 32 MiB on the host; 4 MiB in the qemu-system guests, whose ext4 image is small.
static LEN_CELL: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
    if std::env::var_os("LINUX_AIO_DIRECT_DIR").is_some() {
        4 << 20
    } else {
        32 << 20
    }
});
macro_rules! LEN_ {
    () => {
        *LEN_CELL
    };
}
const FILL: u8 = 0xc3;

/// A file of LEN bytes of FILL, opened with O_DIRECT, and an aligned buffer store.
struct Direct {
    _s: Scratch,
    file: std::fs::File,
}

fn direct() -> Result<Direct, Outcome> {
    // In the qemu-system guests /tmp is tmpfs (no O_DIRECT); vm-init names an ext4 directory.
    let s = match std::env::var_os("LINUX_AIO_DIRECT_DIR") {
        Some(dir) => Scratch::new_in(std::path::Path::new(&dir), "direct"),
        None => Scratch::new("direct"),
    };
    {
        let mut f = &s.file;
        f.write_all(&vec![FILL; LEN_!()]).unwrap();
        f.sync_all().unwrap();
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&s.path)
        .map_err(|e| skipped(format!("O_DIRECT: {e}")))?;
    Ok(Direct { _s: s, file })
}

fn ctx() -> Result<Context, Outcome> {
    match Context::new(64) {
        Ok(c) => Ok(c),
        Err(Errno::NOSYS) => Err(skipped("no kernel AIO (ENOSYS)")),
        Err(e) => panic!("io_setup: {e}"),
    }
}

/// After the scope: the read must be complete (all FILL), and nothing may write afterwards.
fn check_quiet(buf: &mut [u8]) {
    assert!(
        buf.iter().all(|&b| b == FILL),
        "the scope ended before the read completed"
    );
    buf.fill(0);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        buf.iter().all(|&b| b == 0),
        "the kernel wrote after the scope ended"
    );
}

macro_rules! setup {
    () => {
        match (ctx(), direct()) {
            (Ok(c), Ok(d)) => (c, d),
            (Err(o), _) | (_, Err(o)) => return o,
        }
    };
}

fn direct_read_scope_end_normal() -> Outcome {
    let (mut ctx, d) = setup!();
    let mut store = Vec::new();
    let buf = aligned(&mut store, LEN_!());
    let in_flight = ctx.scope::<2, _>(|s| {
        s.submit(Request::read(d.file.as_fd(), buf, 0)).unwrap();
        s.in_flight()
    });
    assert_eq!(in_flight, 1);
    check_quiet(aligned(&mut store, LEN_!()));
    Passed
}

fn direct_read_scope_end_question_mark() -> Outcome {
    let (mut ctx, d) = setup!();
    let mut store = Vec::new();
    let buf = aligned(&mut store, LEN_!());
    let r: Result<(), Errno> = ctx.scope::<2, _>(|s| {
        s.submit(Request::read(d.file.as_fd(), buf, 0))?;
        Err(Errno::IO)?;
        Ok(())
    });
    assert_eq!(r, Err(Errno::IO));
    check_quiet(aligned(&mut store, LEN_!()));
    Passed
}

fn direct_read_scope_end_panic() -> Outcome {
    let (mut ctx, d) = setup!();
    let mut store = Vec::new();
    let buf = aligned(&mut store, LEN_!());
    let r = catch_unwind(AssertUnwindSafe(|| {
        ctx.scope::<2, _>(|s| {
            s.submit(Request::read(d.file.as_fd(), buf, 0)).unwrap();
            panic!("boom with a read in flight");
        })
    }));
    assert!(r.is_err());
    check_quiet(aligned(&mut store, LEN_!()));
    Passed
}

/// Completions taken and forgotten (mem::forget of the iterator and of single completions),
/// a wait that timed out, and a second read still in flight.
fn direct_read_completions_forgotten() -> Outcome {
    let (mut ctx, d) = setup!();
    let (mut s1, mut s2) = (Vec::new(), Vec::new());
    let (a, b) = (aligned(&mut s1, LEN_!()), aligned(&mut s2, LEN_!()));
    ctx.scope::<2, _>(|s| {
        s.submit(Request::read(d.file.as_fd(), a, 0)).unwrap();
        let mut it = s.wait(1, Some(Duration::from_secs(5))).unwrap();
        if let Some(c) = it.next() {
            std::mem::forget(c);
        }
        std::mem::forget(it);
        s.submit(Request::read(d.file.as_fd(), b, 0)).unwrap();
        std::mem::forget(s.wait(0, Some(Duration::ZERO)).unwrap());
    });
    check_quiet(aligned(&mut s1, LEN_!()));
    check_quiet(aligned(&mut s2, LEN_!()));
    Passed
}

fn direct_readv_scope_end_panic() -> Outcome {
    let (mut ctx, d) = setup!();
    let (mut s1, mut s2) = (Vec::new(), Vec::new());
    let (a, b) = (aligned(&mut s1, LEN_!() / 2), aligned(&mut s2, LEN_!() / 2));
    let mut iov = [IoSliceMut::new(a), IoSliceMut::new(b)];
    let r = catch_unwind(AssertUnwindSafe(|| {
        ctx.scope::<2, _>(|s| {
            s.submit(Request::readv(d.file.as_fd(), &mut iov, 0))
                .unwrap();
            panic!("boom with a readv in flight");
        })
    }));
    assert!(r.is_err());
    check_quiet(aligned(&mut s1, LEN_!() / 2));
    check_quiet(aligned(&mut s2, LEN_!() / 2));
    Passed
}

/// The ReadVecs a completion hands back, used for a second readv at once, then read through.
fn readvecs_reused_after_completion() -> Outcome {
    let (mut ctx, d) = setup!();
    let (mut s1, mut s2) = (Vec::new(), Vec::new());
    let (a, b) = (aligned(&mut s1, 4096), aligned(&mut s2, 8192));
    let mut iov = [IoSliceMut::new(a), IoSliceMut::new(b)];
    let total = ctx.scope::<2, _>(|s| {
        s.submit(Request::readv(d.file.as_fd(), &mut iov, 0))
            .unwrap();
        let c = s.wait(1, None).unwrap().next().unwrap();
        assert_eq!(c.event.result(), Ok(12288));
        let mut v: ReadVecs<'_> = c.buffer.into_read_vecs().unwrap();
        v.get_mut(0).unwrap().fill(0);
        s.submit(Request::readv(d.file.as_fd(), v, 4096)).unwrap();
        let c = s.wait(1, None).unwrap().next().unwrap();
        let v = c.buffer.into_read_vecs().unwrap();
        assert!(v.iter().all(|b| b.iter().all(|&x| x == FILL)));
        Buffer::ReadV(v).len()
    });
    assert_eq!(total, 12288);
    Passed
}

/// ScopedCancel for each state: an O_DIRECT read in flight (NotCancelable), the same read
/// done but not handed out (AlreadyComplete), a poll (InProgress, then its completion).
fn cancel_answers() -> Outcome {
    let (mut ctx, d) = setup!();
    let mut store = Vec::new();
    let buf = aligned(&mut store, LEN_!());
    let (r, _w) = rustix::pipe::pipe().unwrap();
    ctx.scope::<4, _>(|s| {
        let t = s.submit(Request::read(d.file.as_fd(), buf, 0)).unwrap();
        let first = s.cancel(t);
        println!("cancel of an O_DIRECT read just submitted: {first:?}");
        assert!(matches!(
            first,
            Ok(ScopedCancel::NotCancelable) | Ok(ScopedCancel::AlreadyComplete)
        ));
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(s.cancel(t), Ok(ScopedCancel::AlreadyComplete));
        let p = s
            .submit(Request::poll(r.as_fd(), rustix::event::PollFlags::IN))
            .unwrap();
        assert_eq!(s.cancel(p), Ok(ScopedCancel::InProgress));
        let again = s.cancel(p);
        println!("second cancel of the same poll: {again:?}");
        let done: Vec<_> = s.wait(2, Some(Duration::from_secs(5))).unwrap().collect();
        assert_eq!(done.len(), 2);
        let poll = done.iter().find(|c| c.ticket == p).unwrap();
        assert_eq!(poll.event.result(), Ok(0));
        assert_eq!(s.cancel(p), Ok(ScopedCancel::AlreadyComplete));
    });
    Passed
}

fn stale_and_foreign_tickets() -> Outcome {
    let mut ctx = match ctx() {
        Ok(c) => c,
        Err(o) => return o,
    };
    let mut other = Context::new(8).unwrap();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    let foreign = other.scope::<1, _>(|s| {
        s.submit(Request::poll(r.as_fd(), rustix::event::PollFlags::IN))
            .unwrap()
    });
    ctx.scope::<1, _>(|s| {
        assert_eq!(s.cancel(foreign), Err(Errno::INVAL));
        let t1 = s
            .submit(Request::poll(r.as_fd(), rustix::event::PollFlags::IN))
            .unwrap();
        assert_eq!(s.cancel(t1), Ok(ScopedCancel::InProgress));
        let c = s.wait(1, None).unwrap().next().unwrap();
        assert_eq!(c.ticket, t1);
        // Same slot again: the old ticket must not reach the new request.
        let t2 = s
            .submit(Request::poll(r.as_fd(), rustix::event::PollFlags::IN))
            .unwrap();
        assert_ne!(t1, t2);
        assert_eq!(s.cancel(t1), Ok(ScopedCancel::AlreadyComplete));
        assert_eq!(
            s.in_flight(),
            1,
            "the stale ticket cancelled the new request"
        );
        assert_eq!(s.cancel(foreign), Err(Errno::INVAL));
    });
    Passed
}

fn zero_slot_scope() -> Outcome {
    let mut ctx = match ctx() {
        Ok(c) => c,
        Err(o) => return o,
    };
    let (r, _w) = rustix::pipe::pipe().unwrap();
    ctx.scope::<0, _>(|s| {
        let rej = s
            .submit(Request::poll(r.as_fd(), rustix::event::PollFlags::IN))
            .unwrap_err();
        assert_eq!(rej.error, Errno::AGAIN);
        assert_eq!(s.wait(0, None).unwrap().count(), 0);
        assert_eq!(s.wait(1, None).err(), Some(Errno::INVAL));
        assert_eq!(s.submit_prepared(), Ok(0));
    });
    Passed
}

fn completion_sent_to_thread() -> Outcome {
    let (mut ctx, d) = setup!();
    let mut store = Vec::new();
    let buf = aligned(&mut store, 1 << 20);
    ctx.scope::<2, _>(|s| {
        s.submit(Request::read(d.file.as_fd(), buf, 0)).unwrap();
        let c = s.wait(1, None).unwrap().next().unwrap();
        let sum = std::thread::scope(|t| {
            t.spawn(move || {
                c.buffer
                    .into_read()
                    .unwrap()
                    .iter()
                    .map(|&b| b as u64)
                    .sum::<u64>()
            })
            .join()
            .unwrap()
        });
        assert_eq!(sum, FILL as u64 * (1 << 20));
    });
    Passed
}

/// Prepared (never submitted) requests and a panic: nothing reaches the kernel, nothing hangs.
fn prepared_then_panic() -> Outcome {
    let (mut ctx, d) = setup!();
    let mut store = Vec::new();
    let buf = aligned(&mut store, LEN_!());
    let r = catch_unwind(AssertUnwindSafe(|| {
        ctx.scope::<2, _>(|s| {
            s.prepare(Request::read(d.file.as_fd(), buf, 0)).unwrap();
            panic!("boom with a prepared request");
        })
    }));
    assert!(r.is_err());
    let buf = aligned(&mut store, LEN_!());
    assert!(
        buf.iter().all(|&b| b == 0),
        "a prepared request was submitted"
    );
    Passed
}

/// Two nested scopes on two contexts, reads in flight in both, a panic in the inner closure.
fn nested_scopes_panic_inner() -> Outcome {
    let (mut ctx, d) = setup!();
    let mut inner_ctx = Context::new(8).unwrap();
    let (mut s1, mut s2) = (Vec::new(), Vec::new());
    let (a, b) = (aligned(&mut s1, LEN_!()), aligned(&mut s2, LEN_!()));
    let r = catch_unwind(AssertUnwindSafe(|| {
        ctx.scope::<2, _>(|outer| {
            outer.submit(Request::read(d.file.as_fd(), a, 0)).unwrap();
            inner_ctx.scope::<2, _>(|inner| {
                inner.submit(Request::read(d.file.as_fd(), b, 0)).unwrap();
                panic!("boom in the inner scope");
            })
        })
    }));
    assert!(r.is_err());
    check_quiet(aligned(&mut s1, LEN_!()));
    check_quiet(aligned(&mut s2, LEN_!()));
    Passed
}
