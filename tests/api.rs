//! The safe API against a real kernel: every opcode, eventfd notification, cancellation, signals,
//! ring pressure, and a differential test of ring reaping against `io_getevents`.
//!
//! Every test needs kernel AIO and reports SKIPPED (with the reason) where `io_setup` answers
//! ENOSYS: qemu-user, kernels without CONFIG_AIO, the ENOSYS module.

#[path = "support/reexec.rs"]
mod reexec;
#[path = "support/runner.rs"]
mod runner;
#[path = "support/scratch.rs"]
mod scratch;
#[path = "support/thread.rs"]
mod thread;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use linux_aio::{
    Buffer, Cancel, Context, Errno, Event, IoPriority, IoPriorityClass, Request, RwFlags,
    ScopedCancel, SigSet,
};
use runner::{skipped, Outcome, Passed};
use rustix::event::PollFlags;
use rustix::io::{IoSlice, IoSliceMut};
use scratch::{eventfd, pattern, Scratch};

const SIGUSR1: i32 = libc::SIGUSR1; // 10 on all seven architecture modules

fn main() {
    if std::env::var("LINUX_AIO_TEST_CHILD").as_deref() == Ok("eintr") {
        child_eintr();
    }
    runner::run(
        "api",
        &[
            ("every_opcode_scoped", every_opcode_scoped),
            ("eventfd_notification", eventfd_notification),
            ("priority_and_rw_flags", priority_and_rw_flags),
            ("scoped_poll_cancel", scoped_poll_cancel),
            (
                "scoped_cancel_of_completed_read",
                scoped_cancel_of_completed_read,
            ),
            ("unscoped_cancel", unscoped_cancel),
            ("scope_end_cancels_and_reaps", scope_end_cancels_and_reaps),
            ("scope_drains_on_panic", scope_drains_on_panic),
            ("buffers_come_back_for_reuse", buffers_come_back_for_reuse),
            (
                "partial_submission_reported_exactly",
                partial_submission_reported_exactly,
            ),
            ("slots_exhausted_is_eagain", slots_exhausted_is_eagain),
            ("wait_argument_errors", wait_argument_errors),
            ("wait_with_sigmask", wait_with_sigmask),
            ("signal_during_wait_is_eintr", signal_during_wait_is_eintr),
            ("submit_from_other_threads", submit_from_other_threads),
            ("ring_pressure", ring_pressure),
            ("differential_ring_vs_syscall", differential_ring_vs_syscall),
            ("destroy_reports_and_frees", destroy_reports_and_frees),
            ("event_decoding_never_panics", event_decoding_never_panics),
            (
                "scope_ignores_a_stale_event_at_a_slot_address",
                scope_ignores_a_stale_event_at_a_slot_address,
            ),
            (
                "fork_child_cannot_take_parent_events",
                fork_child_cannot_take_parent_events,
            ),
            ("fork_inside_a_scope", fork_inside_a_scope),
            ("aligned_buffer_for_direct_io", aligned_buffer_for_direct_io),
            (
                "tickets_belong_to_their_scope",
                tickets_belong_to_their_scope,
            ),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn context(n: u32) -> Result<Context, Outcome> {
    match Context::new(n) {
        Ok(c) => Ok(c),
        Err(Errno::NOSYS) => Err(skipped(format!(
            "kernel AIO unavailable: io_setup gives ENOSYS (arch module {})",
            linux_aio::raw::ARCH
        ))),
        Err(e) => panic!("Context::new({n}): {e}"),
    }
}

macro_rules! need_aio {
    ($n:expr) => {
        match context($n) {
            Ok(c) => c,
            Err(why) => return why,
        }
    };
}

fn signal(efd: &OwnedFd) {
    rustix::io::write(efd, &1u64.to_ne_bytes()).unwrap();
}

fn counter(efd: &OwnedFd) -> u64 {
    let mut b = [0u8; 8];
    match rustix::io::read(efd, &mut b) {
        Ok(_) => u64::from_ne_bytes(b),
        Err(Errno::AGAIN) => 0,
        Err(e) => panic!("eventfd read: {e}"),
    }
}

/// Returns SKIPPED from the calling test when the kernel has no IOCB_CMD_POLL.
macro_rules! need_poll {
    ($ctx:expr) => {
        if !poll_supported(&mut $ctx) {
            return skipped("IOCB_CMD_POLL unsupported (kernel before 4.19)");
        }
    };
}

fn poll_supported(ctx: &mut Context) -> bool {
    let efd = eventfd();
    signal(&efd);
    ctx.scope::<1, _>(|s| s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).is_ok())
}

// ---------------------------------------------------------------------------------------------
// Opcodes

fn every_opcode_scoped() -> Outcome {
    let mut ctx = need_aio!(16);
    let f = Scratch::new("ops");
    let fd = f.file.as_fd();
    let out = pattern(4096, 3);
    let (mut a, mut b) = (pattern(100, 1), pattern(300, 2));
    let mut back = vec![0u8; 4096];
    let (mut x, mut y) = (vec![0u8; 250], vec![0u8; 150]);
    // The iovec arrays are declared before the scope, like any buffer a scope borrows.
    let wv = [IoSlice::new(&a), IoSlice::new(&b)];
    let mut rv = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
    let efd = eventfd();
    signal(&efd);
    let results: BTreeMap<u64, Result<usize, Errno>> = ctx.scope::<8, _>(|s| {
        let mut results = BTreeMap::new();
        let mut collect = |min| {
            for c in s.wait(min, Some(Duration::from_secs(5))).unwrap() {
                results.insert(c.event.user_data(), c.event.result());
            }
        };
        s.submit(Request::write(fd, &out, 0).user_data(1)).unwrap();
        collect(1);
        s.submit(Request::read(fd, &mut back, 0).user_data(2))
            .unwrap();
        s.submit(Request::writev(fd, &wv, 8192).user_data(3))
            .unwrap();
        collect(2);
        s.submit(Request::readv(fd, &mut rv, 8192).user_data(4))
            .unwrap();
        s.submit(Request::fsync(fd).user_data(5)).unwrap();
        s.submit(Request::fdsync(fd).user_data(6)).unwrap();
        s.submit(Request::poll(efd.as_fd(), PollFlags::IN).user_data(7))
            .unwrap();
        collect(4);
        results
    });
    let expect: BTreeMap<u64, Result<usize, Errno>> = [
        (1, Ok(4096)),
        (2, Ok(4096)),
        (3, Ok(400)),
        (4, Ok(400)),
        (5, Ok(0)),
        (6, Ok(0)),
        (7, Ok(1)),
    ]
    .into();
    if results.get(&7) == Some(&Err(Errno::INVAL)) {
        return skipped("IOCB_CMD_POLL unsupported (kernel before 4.19)");
    }
    assert_eq!(results, expect);
    assert!(back == out, "pread data differs");
    let written = [std::mem::take(&mut a), std::mem::take(&mut b)].concat();
    assert!(
        [x, y].concat() == written,
        "preadv data differs from pwritev data"
    );
    Passed
}

fn eventfd_notification() -> Outcome {
    let mut ctx = need_aio!(16);
    let f = Scratch::new("efd");
    let note = eventfd();
    let data = pattern(512, 9);
    let n = ctx.scope::<8, _>(|s| {
        for i in 0..5 {
            s.submit(
                Request::write(f.file.as_fd(), &data, i * 512)
                    .eventfd(note.as_fd())
                    .user_data(i),
            )
            .unwrap();
        }
        s.wait(5, Some(Duration::from_secs(5))).unwrap().count()
    });
    assert_eq!(n, 5);
    assert_eq!(counter(&note), 5, "the eventfd counts one per completion");
    Passed
}

fn priority_and_rw_flags() -> Outcome {
    let mut ctx = need_aio!(8);
    let f = Scratch::new("prio");
    let data = [7u8; 64];
    ctx.scope::<4, _>(|s| {
        let prio = IoPriority::new(IoPriorityClass::BestEffort, 4).unwrap();
        s.submit(
            Request::write(f.file.as_fd(), &data, 0)
                .priority(prio)
                .flags(RwFlags::DSYNC),
        )
        .unwrap();
        let c = s
            .wait(1, Some(Duration::from_secs(5)))
            .unwrap()
            .next()
            .unwrap();
        assert_eq!(c.event.result(), Ok(64));
        let unknown = RwFlags::from_bits_retain(1 << 30);
        let refused = s
            .submit(Request::write(f.file.as_fd(), &data, 0).flags(unknown))
            .unwrap_err();
        assert_eq!(refused.error, Errno::OPNOTSUPP);
        assert!(!refused.scope_full(), "the kernel refused it");
        assert_eq!(
            format!("{:?}", RwFlags::NOWAIT | RwFlags::DSYNC),
            "ReadWriteFlags(DSYNC | NOWAIT)"
        );
        assert!((RwFlags::NOWAIT | RwFlags::DSYNC).contains(RwFlags::NOWAIT));
        assert_eq!(RwFlags::empty() & RwFlags::HIPRI, RwFlags::empty());
        assert!(
            matches!(refused.request.into_buffer(), Buffer::Write(b) if b.len() == 64),
            "buffer handed back"
        );
        assert_eq!(IoPriority::new(IoPriorityClass::BestEffort, 8), None);
        let bad = IoPriority::from_bits_retain(7 << 13); // no such class
        assert_eq!(
            s.submit(Request::write(f.file.as_fd(), &data, 0).priority(bad))
                .unwrap_err()
                .error,
            Errno::INVAL
        );
    });
    Passed
}

// ---------------------------------------------------------------------------------------------
// Cancellation

fn scoped_poll_cancel() -> Outcome {
    let mut ctx = need_aio!(8);
    need_poll!(ctx);
    let idle = eventfd();
    ctx.scope::<4, _>(|s| {
        let t = s
            .submit(Request::poll(idle.as_fd(), PollFlags::IN).user_data(42))
            .unwrap();
        assert_eq!(
            s.wait(0, Some(Duration::from_millis(20))).unwrap().count(),
            0
        );
        let first = s.cancel(t).unwrap();
        assert!(
            matches!(first, ScopedCancel::InProgress | ScopedCancel::Canceled),
            "{first:?}"
        );
        let c = s
            .wait(1, Some(Duration::from_secs(5)))
            .unwrap()
            .next()
            .unwrap();
        assert_eq!(
            (c.ticket, c.event.user_data(), c.event.result()),
            (t, 42, Ok(0))
        );
        assert_eq!(s.cancel(t).unwrap(), ScopedCancel::AlreadyComplete);
        assert_eq!(s.in_flight(), 0);
    });
    Passed
}

fn scoped_cancel_of_completed_read() -> Outcome {
    let mut ctx = need_aio!(8);
    let f = Scratch::new("cr");
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    ctx.scope::<4, _>(|s| {
        // Buffered reads complete inside io_submit: the first is reaped, the second waits in the ring.
        let t1 = s.submit(Request::read(f.file.as_fd(), &mut a, 0)).unwrap();
        assert_eq!(s.wait(1, Some(Duration::from_secs(5))).unwrap().count(), 1);
        let t2 = s.submit(Request::read(f.file.as_fd(), &mut b, 0)).unwrap();
        assert_eq!(s.cancel(t1).unwrap(), ScopedCancel::AlreadyComplete);
        assert_eq!(
            s.cancel(t2).unwrap(),
            ScopedCancel::AlreadyComplete,
            "completed, unreaped read"
        );
    });
    Passed
}

fn unscoped_cancel() -> Outcome {
    let mut ctx = need_aio!(8);
    need_poll!(ctx);
    let idle = eventfd();
    let f = Scratch::new("uc");
    let mut buf = [0u8; 16];
    let mut poll = Request::poll(idle.as_fd(), PollFlags::IN).user_data(1);
    let mut read = Request::read(f.file.as_fd(), &mut buf, 0).user_data(2);
    // SAFETY: the poll names no memory; the read's buffer lives until the end of this function,
    // after its completion has been reaped below.
    assert_eq!(unsafe { ctx.submit(&mut [&mut poll, &mut read]) }, Ok(2));
    assert_eq!(ctx.cancel(read.iocb()), Ok(Cancel::NotCanceled));
    let mut events = [Event::default(); 4];
    let got = match ctx.cancel(poll.iocb()).unwrap() {
        Cancel::InProgress => ctx
            .wait(&mut events, 2, Some(Duration::from_secs(5)))
            .unwrap(),
        Cancel::Canceled(ev) => {
            events[1] = ev;
            ctx.wait(&mut events[..1], 1, Some(Duration::from_secs(5)))
                .unwrap()
                + 1
        }
        Cancel::NotCanceled => panic!("a pending poll could not be cancelled"),
    };
    assert_eq!(got, 2);
    let mut seen: Vec<(u64, Result<usize, Errno>)> = events[..2]
        .iter()
        .map(|e| (e.user_data(), e.result()))
        .collect();
    seen.sort_by_key(|e| e.0);
    assert_eq!(seen, vec![(1, Ok(0)), (2, Ok(0))]);
    Passed
}

fn scope_end_cancels_and_reaps() -> Outcome {
    let mut ctx = need_aio!(8);
    need_poll!(ctx);
    let idle = [eventfd(), eventfd(), eventfd()];
    ctx.scope::<4, _>(|s| {
        for fd in &idle {
            s.submit(Request::poll(fd.as_fd(), PollFlags::IN)).unwrap();
        }
        assert_eq!(s.in_flight(), 3);
        // Returning with three polls pending: the scope cancels and reaps them.
    });
    let mut ev = [Event::default(); 4];
    assert_eq!(
        ctx.wait(&mut ev, 0, Some(Duration::from_millis(20))),
        Ok(0),
        "leftover events after the scope"
    );
    Passed
}

fn scope_drains_on_panic() -> Outcome {
    let mut ctx = need_aio!(8);
    need_poll!(ctx);
    let idle = eventfd();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ctx.scope::<2, ()>(|s| {
            s.submit(Request::poll(idle.as_fd(), PollFlags::IN))
                .unwrap();
            panic!("inside the scope");
        })
    }));
    std::panic::set_hook(hook);
    assert!(r.is_err());
    let mut ev = [Event::default(); 2];
    assert_eq!(ctx.wait(&mut ev, 0, Some(Duration::from_millis(20))), Ok(0));
    Passed
}

fn buffers_come_back_for_reuse() -> Outcome {
    let mut ctx = need_aio!(8);
    let f = Scratch::new("reuse");
    std::fs::write(&f.path, pattern(64, 5)).unwrap();
    let mut buf = [0u8; 16];
    let sums = ctx.scope::<1, _>(|s| {
        let mut sums = Vec::new();
        let mut buf: &mut [u8] = &mut buf;
        for i in 0..4 {
            s.submit(Request::read(f.file.as_fd(), buf, i * 16))
                .unwrap();
            let c = s
                .wait(1, Some(Duration::from_secs(5)))
                .unwrap()
                .next()
                .unwrap();
            let Buffer::Read(back) = c.buffer else {
                panic!("wrong buffer kind")
            };
            sums.push(back.iter().map(|&b| b as u32).sum::<u32>());
            buf = back;
        }
        sums
    });
    let expected: Vec<u32> = pattern(64, 5)
        .chunks(16)
        .map(|c| c.iter().map(|&b| b as u32).sum())
        .collect();
    assert_eq!(sums, expected);
    Passed
}

// ---------------------------------------------------------------------------------------------
// Errors

fn partial_submission_reported_exactly() -> Outcome {
    let mut ctx = need_aio!(8);
    let f = Scratch::new("partial");
    let bad = File::open("/dev/null").unwrap(); // readable only: a write gives EBADF
    let data = [1u8; 32];
    ctx.scope::<4, _>(|s| {
        s.prepare(Request::write(f.file.as_fd(), &data, 0).user_data(1))
            .unwrap();
        s.prepare(Request::write(bad.as_fd(), &data, 0).user_data(2))
            .unwrap();
        s.prepare(Request::write(f.file.as_fd(), &data, 64).user_data(3))
            .unwrap();
        let e = s.submit_prepared().unwrap_err();
        assert_eq!((e.submitted, e.error), (1, Errno::BADF));
        assert_eq!(Errno::from(e), Errno::BADF);
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().contains("accepted 1"), "{boxed}");
        assert_eq!(s.in_flight(), 1);
        let done: Vec<u64> = s
            .wait(1, Some(Duration::from_secs(5)))
            .unwrap()
            .map(|c| c.event.user_data())
            .collect();
        assert_eq!(done, vec![1]);
        // The refused request and the one after it are still prepared.
        let again = s.submit_prepared().unwrap_err();
        assert_eq!((again.submitted, again.error), (0, Errno::BADF));
        s.discard_prepared();
        assert_eq!(s.submit_prepared(), Ok(0));
    });
    Passed
}

fn slots_exhausted_is_eagain() -> Outcome {
    let mut ctx = need_aio!(8);
    let f = Scratch::new("slots");
    let data = [1u8; 8];
    ctx.scope::<2, _>(|s| {
        s.submit(Request::write(f.file.as_fd(), &data, 0)).unwrap();
        s.submit(Request::write(f.file.as_fd(), &data, 8)).unwrap();
        let full = s
            .submit(Request::write(f.file.as_fd(), &data, 16))
            .unwrap_err();
        assert_eq!(full.error, Errno::AGAIN);
        assert!(full.scope_full(), "a full scope is told from a full ring");
        assert!(full.to_string().contains("every slot"), "{full}");
        let as_error: &dyn std::error::Error = &full;
        assert!(!as_error.to_string().is_empty());
        assert_eq!(s.free_slots(), 0);
        assert_eq!(s.wait(2, Some(Duration::from_secs(5))).unwrap().count(), 2);
        s.submit(Request::write(f.file.as_fd(), &data, 16)).unwrap();
    });
    Passed
}

fn wait_argument_errors() -> Outcome {
    let mut ctx = need_aio!(8);
    let mut ev = [Event::default(); 2];
    assert_eq!(
        ctx.wait(&mut ev, 3, None),
        Err(Errno::INVAL),
        "min > events.len()"
    );
    assert_eq!(ctx.wait(&mut [], 0, Some(Duration::ZERO)), Ok(0));
    assert_eq!(ctx.try_wait(&mut ev), Ok(0));
    // A huge timeout is clamped, not wrapped into a negative (which would block for ever).
    assert_eq!(ctx.wait(&mut ev, 0, Some(Duration::MAX)), Ok(0));
    ctx.scope::<2, _>(|s| {
        assert_eq!(
            s.wait(1, None).err(),
            Some(Errno::INVAL),
            "waiting for more than in flight"
        )
    });
    Passed
}

fn wait_with_sigmask() -> Outcome {
    let mut ctx = need_aio!(8);
    let f = Scratch::new("mask");
    let data = [3u8; 8];
    let mut w = Request::write(f.file.as_fd(), &data, 0).user_data(9);
    // SAFETY: `data` outlives the reaping below.
    assert_eq!(unsafe { ctx.submit(&mut [&mut w]) }, Ok(1));
    let mut ev = [Event::default(); 2];
    ctx.set_user_space_reaping(false); // make the wait a real io_pgetevents
    match ctx.wait_with_sigmask(&mut ev, 1, Some(Duration::from_secs(5)), &SigSet::full()) {
        Err(Errno::NOSYS) => {
            ctx.set_user_space_reaping(true);
            assert_eq!(ctx.wait(&mut ev, 1, Some(Duration::from_secs(5))), Ok(1));
            return skipped("io_pgetevents unavailable (kernel before 4.18)");
        }
        r => assert_eq!(r, Ok(1)),
    }
    assert_eq!((ev[0].user_data(), ev[0].result()), (9, Ok(8)));
    assert!(SigSet::empty().with(SIGUSR1).contains(SIGUSR1));
    assert!(!SigSet::empty().with(99).contains(99));
    Passed
}

/// Runs in a child process (the test binary re-executed), so the signal never reaches the runner.
fn child_eintr() -> ! {
    extern "C" fn on_usr1(_: i32) {}
    // SAFETY: installing a handler that does nothing, without SA_RESTART, in a process of our
    // own; kill targets this process only.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as extern "C" fn(i32) as usize;
        assert_eq!(libc::sigaction(SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let mut ctx = Context::new(4).expect("io_setup in child");
    let code = std::thread::scope(|t| {
        let main = thread::Thread::current();
        t.spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            main.signal(SIGUSR1); // the main thread is in its wait below, or about to be
        });
        let mut ev = [Event::default(); 1];
        let plain = ctx.wait(&mut ev, 1, Some(Duration::from_secs(10)));
        let masked = {
            let t0 = std::time::Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            // The signal arrives while SIGUSR1 is unblocked by the (empty) mask: EINTR as well.
            let main2 = thread::Thread::current();
            let r = std::thread::scope(|t2| {
                t2.spawn(move || {
                    std::thread::sleep(Duration::from_millis(200));
                    main2.signal(SIGUSR1);
                });
                ctx.wait_with_sigmask(&mut ev, 1, Some(Duration::from_secs(10)), &SigSet::empty())
            });
            (r, t0.elapsed())
        };
        println!("plain={plain:?} masked={:?}", masked.0);
        let masked_ok = matches!(masked.0, Err(Errno::INTR) | Err(Errno::NOSYS));
        // A wait that no signal interrupted would end with its 10 s timeout as Ok(0), so the
        // results alone tell; no timing is asserted.
        if plain == Err(Errno::INTR) && masked_ok {
            0
        } else {
            1
        }
    });
    std::process::exit(code)
}

fn signal_during_wait_is_eintr() -> Outcome {
    let _probe = need_aio!(1);
    let out = reexec::self_command()
        .env("LINUX_AIO_TEST_CHILD", "eintr")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child: {:?} {text} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Passed
}

fn submit_from_other_threads() -> Outcome {
    let mut ctx = need_aio!(64);
    need_poll!(ctx);
    let ready = eventfd();
    signal(&ready);
    let (submitter, mut reaper) = ctx.split();
    let total = std::thread::scope(|t| {
        for th in 0..4u64 {
            let fd = ready.as_fd();
            t.spawn(move || {
                for i in 0..8 {
                    let mut p = Request::poll(fd, PollFlags::IN).user_data(th * 100 + i);
                    // SAFETY: a poll names no memory; `ready` outlives the thread scope.
                    assert_eq!(unsafe { submitter.submit(&mut [&mut p]) }, Ok(1));
                }
            });
        }
        let mut ev = [Event::default(); 32];
        let mut got = 0;
        while got < 32 {
            got += reaper
                .wait(&mut ev[got..], 1, Some(Duration::from_secs(5)))
                .unwrap();
        }
        let mut ids: Vec<u64> = ev.iter().map(Event::user_data).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    });
    assert_eq!(total, 32);
    Passed
}

// ---------------------------------------------------------------------------------------------
// Ring pressure and the differential test

/// libaio's harness style: fill a small context to ring-1, ring, ring+1, 2x and 4x its ring,
/// handling EAGAIN by reaping, and reap everything, by ring and by syscall.
fn ring_pressure() -> Outcome {
    let probe = need_aio!(4);
    let Some(ring) = probe.ring_slots() else {
        return skipped("the ring is not readable from user space");
    };
    drop(probe);
    for user_space in [true, false] {
        let mut ctx = Context::new(4).unwrap();
        need_poll!(ctx);
        ctx.set_user_space_reaping(user_space);
        let ready = eventfd();
        signal(&ready);
        let r = ring as u64;
        for total in [r - 1, r, r + 1, 2 * r, 4 * r] {
            let mut requests: Vec<Request> = (0..total)
                .map(|i| Request::poll(ready.as_fd(), PollFlags::IN).user_data(i))
                .collect();
            let mut seen = vec![0u32; total as usize];
            let mut ev = vec![Event::default(); 64];
            let mut next = 0;
            let mut eagain = 0;
            let mut reaped = 0;
            while reaped < total as usize {
                // Submit until everything is in or the kernel says the ring is full...
                let mut full = false;
                while next < requests.len() && !full {
                    let end = (next + 32).min(requests.len());
                    let mut batch: Vec<&mut Request> = requests[next..end].iter_mut().collect();
                    // SAFETY: polls name no memory; the eventfd outlives the loop.
                    match unsafe { ctx.submit(&mut batch) } {
                        Ok(k) => next += k,
                        Err(e) => {
                            assert_eq!(e.error, Errno::AGAIN, "submit: {e}");
                            next += e.submitted;
                            eagain += 1;
                            full = true;
                        }
                    }
                }
                // ...then reap at least one.
                let n = ctx.wait(&mut ev, 1, Some(Duration::from_secs(5))).unwrap();
                assert!(
                    n > 0,
                    "{total}: nothing to reap with {} in flight",
                    next - reaped
                );
                for e in &ev[..n] {
                    assert_eq!(e.result(), Ok(1));
                    seen[e.user_data() as usize] += 1;
                }
                reaped += n;
            }
            assert!(
                seen.iter().all(|&c| c == 1),
                "{total}: an event was lost or duplicated"
            );
            if total > 2 * r {
                assert!(
                    eagain > 0,
                    "{total} polls into a {r}-slot ring never gave EAGAIN"
                );
            }
        }
    }
    Passed
}

/// How many AIO rings this process has mapped (`/[aio]` lines of /proc/self/maps): the
/// process's own contexts, whatever other processes on the machine do (the system-wide
/// fs.aio-nr is not a proof of anything, since another process may set up or destroy
/// contexts meanwhile). `None` without /proc.
fn own_rings() -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    Some(maps.lines().filter(|l| l.contains("/[aio]")).count())
}

/// A small deterministic generator (xorshift), so both runs see the same workload.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One seeded run of reads, writes, polls and cancels through a scope; returns every
/// completion as (user data, result, checksum of the buffer read).
///
/// Every choice comes from the seeded generator and never from timing (when a completion
/// happens to arrive), so both runs submit the same requests in the same order and every read
/// sees the same file contents; only how the completions are batched differs.
fn workload(user_space: bool, requests: u64) -> Vec<(u64, Result<usize, Errno>, u64)> {
    let mut ctx = Context::new(32).unwrap();
    ctx.set_user_space_reaping(user_space);
    assert_eq!(ctx.user_space_reaping(), user_space);
    let f = Scratch::new(if user_space { "diff-ring" } else { "diff-sys" });
    std::fs::write(&f.path, pattern(1 << 16, 1)).unwrap();
    let ready = eventfd();
    signal(&ready);
    let idle = eventfd();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut read_bufs: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; 512]).collect();
    let write_bufs: Vec<Vec<u8>> = (0..8).map(|i| vec![i as u8 + 1; 512]).collect();
    let mut out = Vec::with_capacity(requests as usize);
    ctx.scope::<16, _>(|s| {
        let reads: RefCell<Vec<&mut [u8]>> =
            RefCell::new(read_bufs.iter_mut().map(|b| b.as_mut_slice()).collect());
        // Write buffer i is filled with i + 1; which one a write uses is a seeded choice too.
        let writes: RefCell<Vec<Option<&[u8]>>> =
            RefCell::new(write_bufs.iter().map(|b| Some(b.as_slice())).collect());
        let mut idle_polls = Vec::new();
        let mut collect = |min: usize| {
            for c in s.wait(min, Some(Duration::from_secs(5))).unwrap() {
                let sum = match c.buffer {
                    Buffer::Read(b) => {
                        let sum = b.iter().map(|&x| x as u64).sum();
                        reads.borrow_mut().push(b);
                        sum
                    }
                    Buffer::Write(b) => {
                        writes.borrow_mut()[b[0] as usize - 1] = Some(b);
                        0
                    }
                    _ => 0,
                };
                out.push((c.event.user_data(), c.event.result(), sum));
            }
        };
        let cancel_idle = |idle_polls: &mut Vec<linux_aio::Ticket>| {
            for t in idle_polls.drain(..) {
                let r = s.cancel(t).unwrap();
                assert!(r != ScopedCancel::NotCancelable, "{r:?}");
            }
        };
        for id in 0..requests {
            let kind = rng.below(10);
            let off = rng.below(120) * 512;
            let which = rng.below(8) as usize;
            let flush = rng.below(4) == 0;
            let cancel = rng.below(6) == 0;
            // Wait for what this request needs: a slot, and a buffer for reads and writes.
            loop {
                let buffer_ok = match kind {
                    0..=3 => !reads.borrow().is_empty(),
                    4..=6 => writes.borrow()[which].is_some(),
                    _ => true,
                };
                if buffer_ok && s.free_slots() > 0 {
                    break;
                }
                s.submit_prepared().unwrap();
                cancel_idle(&mut idle_polls);
                collect(1);
            }
            let req = match kind {
                0..=3 => Request::read(f.file.as_fd(), reads.borrow_mut().pop().unwrap(), off),
                4..=6 => Request::write(
                    f.file.as_fd(),
                    writes.borrow_mut()[which].take().unwrap(),
                    off,
                ),
                7 | 8 => Request::poll(ready.as_fd(), PollFlags::IN),
                _ => Request::poll(idle.as_fd(), PollFlags::IN),
            };
            let ticket = s.prepare(req.user_data(id)).unwrap();
            if kind == 9 {
                idle_polls.push(ticket);
            }
            if flush {
                s.submit_prepared().unwrap();
                collect(0);
            }
            if cancel {
                s.submit_prepared().unwrap();
                cancel_idle(&mut idle_polls);
            }
        }
        s.submit_prepared().unwrap();
        cancel_idle(&mut idle_polls);
        while s.in_flight() > 0 {
            collect(1);
        }
        collect(0);
    });
    out.sort_by_key(|e| e.0);
    out
}

fn differential_ring_vs_syscall() -> Outcome {
    let probe = need_aio!(4);
    if probe.ring_slots().is_none() {
        return skipped("the ring is not readable from user space");
    }
    drop(probe);
    let before = own_rings();
    // Fewer inside the emulated (TCG) guests of `cargo xtask vm`, which set
    // LINUX_AIO_DIRECT_DIR: the same mix, wrap-around included (the ring has 127 slots).
    let n = if std::env::var_os("LINUX_AIO_DIRECT_DIR").is_some() {
        20_000
    } else {
        100_000
    };
    let by_ring = workload(true, n);
    let by_syscall = workload(false, n);
    assert_eq!(
        by_ring.len() as u64,
        n,
        "ring run lost or duplicated events"
    );
    assert_eq!(
        by_syscall.len() as u64,
        n,
        "syscall run lost or duplicated events"
    );
    assert!(
        by_ring.iter().enumerate().all(|(i, e)| e.0 == i as u64),
        "ring run: ids not exactly 0..n"
    );
    if let Some(i) = (0..by_ring.len()).find(|&i| by_ring[i] != by_syscall[i]) {
        panic!(
            "runs differ at {i}: ring {:?}, syscall {:?}",
            by_ring[i], by_syscall[i]
        );
    }
    assert_eq!(
        own_rings(),
        before,
        "the process's ring mappings did not return to their starting number"
    );
    Passed
}

fn destroy_reports_and_frees() -> Outcome {
    let before = own_rings();
    let ctx = need_aio!(64);
    if let (Some(b), Some(now)) = (before, own_rings()) {
        assert_eq!(now, b + 1, "the new context's ring is not mapped");
    }
    assert_eq!(ctx.destroy(), Ok(()));
    assert_eq!(own_rings(), before, "io_destroy left the ring mapped");
    Passed
}

/// Ring memory is untrusted: any `res` decodes, and printing an event never panics.
fn event_decoding_never_panics() -> Outcome {
    use linux_aio::raw::io_event;
    for (res, expected) in [
        (5, Ok(5)),
        (0, Ok(0)),
        (-9, Err(Errno::BADF)),
        (-4095, Err(Errno::from_raw_os_error(4095))),
        (-4096, Err(Errno::IO)),
        (i64::MIN, Err(Errno::IO)),
    ] {
        let e = Event::from_raw(io_event {
            data: 1,
            obj: 2,
            res,
            res2: -1,
        });
        assert_eq!(e.result(), expected, "res {res}");
        assert_eq!(e.res2(), -1);
        assert!(!format!("{e:?}").is_empty());
    }
    Passed
}

#[repr(C, align(4096))]
struct DirectBuf([u8; 1 << 20]);

/// Runs a one-slot scope with an O_DIRECT read of `len` bytes. With `wait`, returns the slot's
/// iocb address; without, returns as soon as the read is submitted (the scope drains it).
/// The scope runs a few KiB below this frame (wherever the compiler puts the slots within
/// its frame), so that `plant_poll_at`'s scratch area, in a frame at this one's depth, covers
/// the slot.
#[inline(never)]
fn one_slot_scope(
    ctx: &mut Context,
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut DirectBuf,
    len: usize,
    wait: bool,
) -> u64 {
    let pad = [0u8; 8192];
    std::hint::black_box(&pad);
    one_slot_scope_below(ctx, fd, buf, len, wait)
}

#[inline(never)]
fn one_slot_scope_below(
    ctx: &mut Context,
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut DirectBuf,
    len: usize,
    wait: bool,
) -> u64 {
    ctx.scope::<1, _>(|s| {
        s.submit(Request::read(fd, &mut buf.0[..len], 0)).unwrap();
        if wait {
            s.wait(1, Some(Duration::from_secs(5)))
                .unwrap()
                .next()
                .unwrap()
                .event
                .iocb_address()
        } else {
            0
        }
    })
}

/// Submits a POLL from an iocb placed at `addr`, in a stack frame that then dies (as the
/// unsafe API allows). False if `addr` is not inside that frame's scratch area.
#[inline(never)]
fn plant_poll_at(ctx: &Context, addr: u64, fd: std::os::fd::BorrowedFd<'_>) -> bool {
    let mut area = [0u8; 256 * 1024];
    let start = area.as_mut_ptr() as u64;
    if addr < start || addr + 64 > start + area.len() as u64 {
        return false;
    }
    let req = Request::poll(fd, PollFlags::IN).user_data(0xdead);
    // SAFETY: the iocb is written inside `area`; a POLL names no memory, so the kernel needs
    // nothing of this frame after io_submit returns.
    unsafe {
        let p = area
            .as_mut_ptr()
            .add((addr - start) as usize)
            .cast::<linux_aio::raw::iocb>();
        p.write_unaligned(*req.iocb());
        ctx.submit_raw([p].as_mut_ptr(), 1).unwrap();
    }
    std::hint::black_box(&mut area);
    true
}

/// A completion whose iocb address equals a scope slot's but which belongs to another request
/// (a stale request of the unsafe API) must not be taken for the slot's: the scope would end
/// while its own O_DIRECT read still writes into the buffer. Found in review; the scope now
/// also checks a per-scope stamp in `aio_data`.
fn scope_ignores_a_stale_event_at_a_slot_address() -> Outcome {
    use std::os::unix::fs::OpenOptionsExt;
    let mut ctx = need_aio!(64);
    let dir = std::env::var_os("LINUX_AIO_DIRECT_DIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let s = Scratch::new_in(&dir, "stale");
    std::fs::write(&s.path, vec![0xabu8; 1 << 20]).unwrap();
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&s.path)
    {
        Ok(f) => f,
        Err(e) => return skipped(format!("O_DIRECT unavailable in {}: {e}", dir.display())),
    };
    let (r, w) = rustix::pipe::pipe().unwrap();
    let mut buf = Box::new(DirectBuf([0; 1 << 20]));
    let slot = one_slot_scope(&mut ctx, file.as_fd(), &mut buf, 4096, true);
    if !plant_poll_at(&ctx, slot, r.as_fd()) {
        return skipped("could not place a stale iocb at the scope slot's address in this build");
    }
    rustix::io::write(&w, b"x").unwrap(); // the stale POLL completes, with obj == the slot
    std::thread::sleep(Duration::from_millis(20));
    buf.0.fill(0);
    one_slot_scope(&mut ctx, file.as_fd(), &mut buf, 1 << 20, false);
    // The scope has returned, so the buffer is ours: nothing may write into it any more.
    buf.0.fill(0);
    std::thread::sleep(Duration::from_millis(200));
    let written = buf.0.iter().filter(|&&b| b != 0).count();
    assert_eq!(
        written, 0,
        "the kernel wrote {written} bytes into the buffer after the scope ended"
    );
    let mut ev = [Event::default(); 4];
    assert_eq!(
        ctx.wait(&mut ev, 0, Some(Duration::from_millis(50))),
        Ok(0),
        "a scope request completed after the scope"
    );
    Passed
}

// ---------------------------------------------------------------------------------------------
// fork, and objects that cross scopes

/// Forks. The child runs `child` and exits with its result, without unwinding into the harness
/// or running any destructor; the parent gets that exit code (or fails the test if the child
/// does not end within 20 s).
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs only `child` (this crate's calls, no locks another thread of the
    // harness could hold) and then _exit.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            // SAFETY: ends the child at once, as fork's child should.
            unsafe { libc::_exit(code) }
        }
        pid => wait_child(pid),
    }
}

/// Waits up to 20 s for child `pid`; its exit code, or a failure if it hangs or dies by a signal.
fn wait_child(pid: libc::pid_t) -> i32 {
    let start = std::time::Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            assert!(
                libc::WIFEXITED(status),
                "child died by signal {}",
                libc::WTERMSIG(status)
            );
            return libc::WEXITSTATUS(status);
        }
        if start.elapsed() > Duration::from_secs(20) {
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The ring is shared with a forked child, the kernel context is not. Every call on the
/// inherited `Context`, `Reaper` and `Submitter` gives the child EINVAL (what the kernel gives it
/// for that context id); none may take the parent's completions, which the parent then gets,
/// all of them, in order. Before the fix the child's `try_wait` took all four.
fn fork_child_cannot_take_parent_events() -> Outcome {
    let mut ctx = need_aio!(16);
    let spare = Context::new(4).unwrap();
    let f = Scratch::new("fork-ctx");
    std::fs::write(&f.path, pattern(4096, 4)).unwrap();
    let mut bufs = [[0u8; 64]; 4];
    let mut reqs: Vec<Request> = bufs
        .iter_mut()
        .enumerate()
        .map(|(i, b)| Request::read(f.file.as_fd(), b, i as u64 * 64).user_data(i as u64))
        .collect();
    let mut batch: Vec<&mut Request> = reqs.iter_mut().collect();
    // SAFETY: the buffers outlive the wait below, which reaps all four reads.
    assert_eq!(unsafe { ctx.submit(&mut batch) }, Ok(4));
    let first_iocb: *const linux_aio::raw::iocb = reqs[0].iocb();
    if let Some(ready) = ctx.ready() {
        assert_eq!(ready, 4, "buffered reads complete inside io_submit");
    }
    let ctx_ref = &mut ctx;
    let fd = f.file.as_fd();
    let code = in_child(move || {
        let mut ev = [Event::default(); 8];
        if ctx_ref.try_wait(&mut ev) != Err(Errno::INVAL) {
            return 1;
        }
        if ctx_ref.wait(&mut ev, 1, Some(Duration::from_millis(50))) != Err(Errno::INVAL) {
            return 2;
        }
        let mask = SigSet::empty();
        if ctx_ref.wait_with_sigmask(&mut ev, 0, Some(Duration::ZERO), &mask) != Err(Errno::INVAL) {
            return 3;
        }
        if ctx_ref.ready().is_some() {
            return 4;
        }
        if ctx_ref.cancel(first_iocb) != Err(Errno::INVAL) {
            return 5;
        }
        {
            let (submitter, mut reaper) = ctx_ref.split();
            if reaper.try_wait(&mut ev) != Err(Errno::INVAL) {
                return 6;
            }
            if submitter.cancel(first_iocb) != Err(Errno::INVAL) {
                return 7;
            }
            let mut more = [0u8; 8];
            let mut r = Request::read(fd, &mut more, 0);
            // SAFETY: refused (EINVAL); were it accepted, _exit follows before `more` dies.
            let refused = unsafe { submitter.submit(&mut [&mut r]) };
            if refused.map_err(|e| (e.submitted, e.error)) != Err((0, Errno::INVAL)) {
                return 8;
            }
        }
        ctx_ref.set_user_space_reaping(false);
        if ctx_ref.try_wait(&mut ev) != Err(Errno::INVAL) {
            return 9;
        }
        if spare.destroy() != Err(Errno::INVAL) {
            return 10;
        }
        // The child's own contexts work.
        match Context::new(4) {
            Ok(mut own) => match own.try_wait(&mut ev) {
                Ok(0) => 0,
                _ => 11,
            },
            Err(_) => 12,
        }
    });
    assert_eq!(code, 0, "check {code} failed in the forked child");
    let mut ev = [Event::default(); 8];
    let mut got = Vec::new();
    while got.len() < 4 {
        let n = ctx.wait(&mut ev, 1, Some(Duration::from_secs(5))).unwrap();
        assert!(n > 0, "the parent lost completions to the child");
        got.extend(ev[..n].iter().map(|e| (e.user_data(), e.result())));
    }
    assert_eq!(got, (0..4).map(|i| (i, Ok(64))).collect::<Vec<_>>());
    drop(reqs);
    let expected = pattern(4096, 4);
    for (i, b) in bufs.iter().enumerate() {
        assert!(b[..] == expected[i * 64..(i + 1) * 64], "buffer {i}");
    }
    Passed
}

/// A fork from inside a scope: the child's copy of the scope refuses everything with EINVAL
/// and ends without waiting for (or taking) the parent's requests; the parent gets every
/// completion, including the poll that completes after the fork.
fn fork_inside_a_scope() -> Outcome {
    let mut ctx = need_aio!(16);
    need_poll!(ctx);
    let f = Scratch::new("fork-scope");
    std::fs::write(&f.path, pattern(256, 6)).unwrap();
    let (r, w) = rustix::pipe::pipe().unwrap();
    let mut buf = [0u8; 64];
    let outcome = ctx.scope::<4, _>(|s| {
        s.submit(Request::read(f.file.as_fd(), &mut buf, 0).user_data(1))
            .unwrap();
        let poll = s
            .submit(Request::poll(r.as_fd(), PollFlags::IN).user_data(2))
            .unwrap();
        // SAFETY: the child only calls into the scope and returns from this closure; it ends
        // with _exit right after the scope (below).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = (|| {
                if s.wait(0, Some(Duration::ZERO)).err() != Some(Errno::INVAL) {
                    return 1;
                }
                if s.wait(1, Some(Duration::from_millis(50))).err() != Some(Errno::INVAL) {
                    return 2;
                }
                if s.cancel(poll) != Err(Errno::INVAL) {
                    return 3;
                }
                let refused = s.submit(Request::poll(w.as_fd(), PollFlags::OUT));
                if refused.map_err(|e| e.error).err() != Some(Errno::INVAL) {
                    return 4;
                }
                if s.submit_prepared().map_err(|e| e.error) != Err(Errno::INVAL) {
                    return 5;
                }
                0
            })();
            return Err(code); // the child ends its copy of the scope, then exits
        }
        rustix::io::write(&w, b"x").unwrap();
        let mut done: Vec<u64> = Vec::new();
        while done.len() < 2 {
            let batch = s.wait(1, Some(Duration::from_secs(5))).unwrap();
            done.extend(batch.map(|c| c.event.user_data()));
        }
        done.sort();
        Ok((pid, done))
    });
    let (pid, done) = match outcome {
        Ok(parent) => parent,
        // SAFETY: the forked child, past its scope's end: exit at once.
        Err(code) => unsafe { libc::_exit(code) },
    };
    assert_eq!(done, vec![1, 2], "the parent lost completions");
    assert_eq!(&buf[..], &pattern(256, 6)[..64]);
    let code = wait_child(pid);
    assert_eq!(code, 0, "check {code} failed in the forked child");
    Passed
}

/// A ticket names one request of one scope. Before the fix, a ticket kept from an ended scope
/// cancelled the next scope's request at the same slot and generation, and tickets of
/// different scopes compared equal.
fn tickets_belong_to_their_scope() -> Outcome {
    let mut ctx = need_aio!(8);
    need_poll!(ctx);
    let mut other = Context::new(8).unwrap();
    let idle = eventfd();
    let old = ctx.scope::<2, _>(|s| {
        let t = s
            .submit(Request::poll(idle.as_fd(), PollFlags::IN))
            .unwrap();
        s.cancel(t).unwrap();
        let c = s
            .wait(1, Some(Duration::from_secs(5)))
            .unwrap()
            .next()
            .unwrap();
        assert_eq!(c.ticket, t);
        t
    });
    ctx.scope::<2, _>(|s| {
        let t = s
            .submit(Request::poll(idle.as_fd(), PollFlags::IN).user_data(7))
            .unwrap(); // slot 0, generation 1, as `old`
        assert_ne!(t, old, "tickets of two scopes compare equal");
        assert_eq!(s.cancel(old), Err(Errno::INVAL), "a stale scope's ticket");
        assert_eq!(
            s.wait(0, Some(Duration::from_millis(20))).unwrap().count(),
            0,
            "the foreign ticket cancelled this scope's poll"
        );
        assert_eq!(s.in_flight(), 1);
        other.scope::<2, _>(|s2| {
            let t2 = s2
                .submit(Request::poll(idle.as_fd(), PollFlags::IN))
                .unwrap();
            assert_ne!(t2, t);
            assert_eq!(
                s2.cancel(t),
                Err(Errno::INVAL),
                "another context's scope's ticket"
            );
            assert_eq!(s.cancel(t2), Err(Errno::INVAL));
            assert_eq!(s2.in_flight(), 1);
        });
        assert_eq!(s.in_flight(), 1);
        assert!(matches!(
            s.cancel(t),
            Ok(ScopedCancel::InProgress | ScopedCancel::Canceled)
        ));
        let c = s
            .wait(1, Some(Duration::from_secs(5)))
            .unwrap()
            .next()
            .unwrap();
        assert_eq!((c.ticket, c.event.user_data()), (t, 7));
    });
    Passed
}

/// `AlignedBuf::for_direct_io` gives a buffer an O_DIRECT read accepts: aligned as the file's
/// `STATX_DIOALIGN` says (or 4096), its length rounded up to the offset alignment.
fn aligned_buffer_for_direct_io() -> Outcome {
    use linux_aio::{AlignedBuf, DirectAlignment};
    use std::os::unix::fs::OpenOptionsExt;
    let mut ctx = need_aio!(8);
    let dir = std::env::var_os("LINUX_AIO_DIRECT_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
        std::path::PathBuf::from,
    );
    let s = Scratch::new_in(&dir, "aligned");
    std::fs::write(&s.path, pattern(1 << 16, 21)).unwrap();
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&s.path)
    {
        Ok(f) => f,
        Err(e) => return skipped(format!("O_DIRECT unavailable in {}: {e}", dir.display())),
    };
    let a = DirectAlignment::of(file.as_fd()).unwrap();
    println!("direct-I/O alignment: {a:?}");
    assert!(a.memory.is_power_of_two() && a.offset.is_power_of_two());
    let mut buf = AlignedBuf::for_direct_io(file.as_fd(), 5000).unwrap();
    assert_eq!(buf.len() % a.offset, 0);
    assert!(buf.len() >= 5000);
    assert_eq!(buf.as_ptr() as usize % a.memory, 0);
    let len = buf.len();
    let n = ctx.scope::<1, _>(|s| {
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
        s.wait(1, Some(Duration::from_secs(5)))
            .unwrap()
            .next()
            .unwrap()
            .event
            .result()
    });
    assert_eq!(n, Ok(len), "the O_DIRECT read of an aligned buffer");
    assert!(buf[..] == pattern(1 << 16, 21)[..len]);
    Passed
}
