//! The scoped API's newer guarantees against a real kernel: slots lent by the caller
//! (`Context::scope_in`), cancelling a prepared request, `Scope::wait_with_sigmask`, POLL
//! results as `PollFlags`, completions handed out in reap order, and the shared scope
//! (`Context::shared_scope`): threads racing submissions into one scope, the one reaper,
//! panics and forgotten handles, tickets, fork.
//!
//! Every test needs kernel AIO and reports SKIPPED (with the reason) where `io_setup` answers
//! ENOSYS.

#[path = "support/reexec.rs"]
mod reexec;
#[path = "support/runner.rs"]
mod runner;
#[path = "support/scratch.rs"]
mod scratch;

use std::collections::{BTreeSet, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use linux_aio::{Context, Errno, Event, Request, ScopeSlots, ScopedCancel, SigSet};
use runner::{skipped, Outcome, Passed};
use rustix::event::PollFlags;
use scratch::{eventfd, pattern, Scratch};

const SIGUSR1: i32 = 10; // on x86_64, aarch64, riscv64 and powerpc64

fn main() {
    if std::env::var("LINUX_AIO_TEST_CHILD").as_deref() == Ok("sigmask") {
        child_sigmask();
    }
    runner::run(
        "scope",
        &[
            ("scope_in_reuses_lent_slots", scope_in_reuses_lent_slots),
            ("scope_in_off_the_stack", scope_in_off_the_stack),
            ("scope_in_after_a_panic", scope_in_after_a_panic),
            ("cancel_prepared_request", cancel_prepared_request),
            ("wait_with_sigmask_in_a_scope", wait_with_sigmask_in_a_scope),
            ("poll_flags_report_readiness", poll_flags_report_readiness),
            (
                "completions_in_reap_order_and_left_for_later",
                completions_in_reap_order_and_left_for_later,
            ),
            (
                "shared_scope_racing_submitters",
                shared_scope_racing_submitters,
            ),
            (
                "shared_scope_ends_with_requests_in_flight",
                shared_scope_ends_with_requests_in_flight,
            ),
            (
                "shared_scope_drains_after_a_panicking_submitter",
                shared_scope_drains_after_a_panicking_submitter,
            ),
            (
                "shared_scope_cancel_and_tickets",
                shared_scope_cancel_and_tickets,
            ),
            (
                "shared_scope_refused_requests_come_back",
                shared_scope_refused_requests_come_back,
            ),
            (
                "shared_scope_in_a_forked_child",
                shared_scope_in_a_forked_child,
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

/// Returns SKIPPED from the calling test when the kernel has no IOCB_CMD_POLL (before 4.19).
macro_rules! need_poll {
    ($ctx:expr) => {
        let efd = eventfd();
        signal(&efd);
        if !$ctx.scope::<1, _>(|s| s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).is_ok()) {
            return skipped("IOCB_CMD_POLL unsupported (kernel before 4.19)");
        }
    };
}

fn signal(efd: &OwnedFd) {
    rustix::io::write(efd, &1u64.to_ne_bytes()).unwrap();
}

/// Nothing of the context's is left to reap (every scope drained what it submitted).
fn nothing_left(ctx: &mut Context) -> bool {
    let mut ev = [Event::default(); 8];
    ctx.wait(&mut ev, 0, Some(Duration::from_millis(20))) == Ok(0)
}

/// Waits up to 20 s for child `pid`; its exit code (a failure if it hangs or dies by a signal).
fn wait_child(pid: libc::pid_t) -> i32 {
    let start = std::time::Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            assert!(libc::WIFEXITED(status), "child died by a signal: {status}");
            return libc::WEXITSTATUS(status);
        }
        if start.elapsed() > Duration::from_secs(20) {
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("child {pid} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A file of `blocks` 512-byte blocks, block `i` filled with `pattern(512, i)`.
fn patterned(tag: &str, blocks: usize) -> Scratch {
    let s = Scratch::new(tag);
    for i in 0..blocks {
        s.file
            .write_all_at(&pattern(512, i as u8), (i * 512) as u64)
            .unwrap();
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Slots lent by the caller

/// One `ScopeSlots` serves scope after scope; each starts afresh (its tickets and user data
/// are its own) whatever the last one left.
fn scope_in_reuses_lent_slots() -> Outcome {
    let mut ctx = need_aio!(16);
    let s = patterned("lent", 4);
    let mut slots = ScopeSlots::<4>::new();
    let mut bufs = [[0u8; 512]; 4];
    let extra = [7u8; 8];
    let mut tickets = Vec::new();
    for round in 0..3u64 {
        let got: BTreeSet<u64> = ctx.scope_in(&mut slots, |sc| {
            for (i, b) in bufs.iter_mut().enumerate() {
                let t = sc
                    .submit(
                        Request::read(s.file.as_fd(), b, (i * 512) as u64)
                            .user_data(round * 10 + i as u64),
                    )
                    .unwrap();
                tickets.push(t);
            }
            assert_eq!(sc.free_slots(), 0);
            let mut got = BTreeSet::new();
            while got.len() < 4 {
                for c in sc.wait(1, None).unwrap() {
                    assert_eq!(c.event.result(), Ok(512));
                    got.insert(c.event.user_data());
                }
            }
            // Round 1 leaves a request in flight: the scope's end drains it.
            if round == 1 {
                sc.submit(Request::write(s.file.as_fd(), &extra, 4096))
                    .unwrap();
            }
            got
        });
        assert_eq!(got, (0..4).map(|i| round * 10 + i).collect());
        for (i, b) in bufs.iter().enumerate() {
            assert_eq!(
                &b[..],
                &pattern(512, i as u8)[..],
                "round {round}, block {i}"
            );
        }
    }
    // Tickets of different scopes differ even though the slots were the same.
    let distinct: HashSet<_> = tickets.iter().collect();
    assert_eq!(distinct.len(), tickets.len());
    assert!(nothing_left(&mut ctx));
    Passed
}

/// A scope of 4096 slots on the heap (about 600 KiB, never built on the stack: `Box::new_uninit`
/// and `ScopeSlots::from_uninit`), with 1024 requests in one batch.
fn scope_in_off_the_stack() -> Outcome {
    let mut ctx = need_aio!(1024);
    need_poll!(ctx);
    let efd = eventfd();
    signal(&efd);
    let mut place = Box::<ScopeSlots<4096>>::new_uninit();
    let slots = ScopeSlots::from_uninit(&mut place);
    let seen = ctx.scope_in(slots, |s| {
        for i in 0..1024u64 {
            s.prepare(Request::poll(efd.as_fd(), PollFlags::IN).user_data(i))
                .unwrap();
        }
        assert_eq!(s.prepared(), 1024);
        assert_eq!(s.submit_prepared(), Ok(1024));
        let mut seen = BTreeSet::new();
        while seen.len() < 1024 {
            for c in s.wait(1, None).unwrap() {
                assert_eq!(c.event.poll_flags(), Ok(PollFlags::IN));
                assert!(
                    seen.insert(c.event.user_data()),
                    "a completion handed out twice"
                );
            }
        }
        assert_eq!(s.free_slots(), 4096);
        seen
    });
    assert_eq!(seen, (0..1024).collect());
    assert!(nothing_left(&mut ctx));
    Passed
}

/// A scope over lent slots that panics with polls in flight still drains before the panic
/// leaves `scope_in`; the same slots then serve a working scope.
fn scope_in_after_a_panic() -> Outcome {
    let mut ctx = need_aio!(16);
    need_poll!(ctx);
    let quiet = eventfd(); // never ready
    let ready = eventfd();
    signal(&ready);
    let mut slots = ScopeSlots::<4>::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ctx.scope_in(&mut slots, |s| {
            s.submit(Request::poll(quiet.as_fd(), PollFlags::IN))
                .unwrap();
            s.submit(Request::poll(quiet.as_fd(), PollFlags::IN))
                .unwrap();
            s.prepare(Request::poll(quiet.as_fd(), PollFlags::IN))
                .unwrap();
            panic!("inside the scope");
        })
    }));
    assert!(r.is_err());
    assert!(
        nothing_left(&mut ctx),
        "the panicking scope left completions behind"
    );
    let n = ctx.scope_in(&mut slots, |s| {
        assert_eq!((s.free_slots(), s.in_flight(), s.prepared()), (4, 0, 0));
        s.submit(Request::poll(ready.as_fd(), PollFlags::IN))
            .unwrap();
        s.wait(1, None).unwrap().count()
    });
    assert_eq!(n, 1);
    Passed
}

// ---------------------------------------------------------------------------------------------
// Cancel, signal masks, poll flags, order

/// `Scope::cancel` of a prepared, unsubmitted request: it leaves the batch (the rest keep their
/// order), completes with ECANCELED, and its buffer comes back.
fn cancel_prepared_request() -> Outcome {
    let mut ctx = need_aio!(8);
    let s = patterned("cancel-prepared", 3);
    let mut bufs = [[0u8; 512]; 3];
    ctx.scope::<4, _>(|sc| {
        let [a, b, c] = &mut bufs;
        let ta = sc
            .prepare(Request::read(s.file.as_fd(), a, 0).user_data(1))
            .unwrap();
        let tb = sc
            .prepare(Request::read(s.file.as_fd(), b, 512).user_data(2))
            .unwrap();
        let tc = sc
            .prepare(Request::read(s.file.as_fd(), c, 1024).user_data(3))
            .unwrap();
        assert_eq!(sc.cancel(tb), Ok(ScopedCancel::Canceled));
        assert_eq!(sc.prepared(), 2);
        // Already reaped: counts towards `min` without waiting.
        let first: Vec<_> = sc.wait(1, Some(Duration::ZERO)).unwrap().collect();
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].ticket, first[0].event.user_data()), (tb, 2));
        assert_eq!(first[0].event.result(), Err(Errno::CANCELED));
        assert_eq!(first[0].buffer.len(), 512, "the cancelled request's buffer");
        assert_eq!(sc.cancel(tb), Ok(ScopedCancel::AlreadyComplete));
        assert_eq!(sc.submit_prepared(), Ok(2));
        let mut rest: Vec<_> = Vec::new();
        while rest.len() < 2 {
            rest.extend(
                sc.wait(1, None)
                    .unwrap()
                    .map(|c| (c.ticket, c.event.result())),
            );
        }
        rest.sort_by_key(|(t, _)| *t == tc);
        assert_eq!(rest, [(ta, Ok(512)), (tc, Ok(512))]);
    });
    assert_eq!(&bufs[0][..], &pattern(512, 0)[..]);
    assert_eq!(bufs[1], [0u8; 512], "the cancelled read never ran");
    assert_eq!(&bufs[2][..], &pattern(512, 2)[..]);
    Passed
}

/// Runs in a re-executed child: a SIGUSR1 sent during `Scope::wait_with_sigmask` with SIGUSR1
/// in the mask does not interrupt the wait (which ends with the poll's completion), and is
/// delivered afterwards; the same signal during a plain `Scope::wait` gives EINTR (the
/// control: the signal does interrupt where it is not masked).
fn child_sigmask() -> ! {
    static DELIVERED: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn on_usr1(_: i32) {
        DELIVERED.fetch_add(1, Ordering::SeqCst);
    }
    // SAFETY: a handler that only bumps an atomic, without SA_RESTART, in a process of our own.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as extern "C" fn(i32) as usize;
        assert_eq!(libc::sigaction(SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let mut ctx = Context::new(4).expect("io_setup in child");
    let efd = eventfd();
    // SAFETY: pthread_self has no preconditions. As an integer: musl's pthread_t is a pointer,
    // which is not Send.
    let main = unsafe { libc::pthread_self() } as usize;
    let (plain, masked, delivered) = ctx.scope::<2, _>(|s| {
        s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).unwrap();
        let plain = std::thread::scope(|t| {
            t.spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                // SAFETY: signals a live thread of this process.
                unsafe { libc::pthread_kill(main as libc::pthread_t, SIGUSR1) };
            });
            s.wait(1, Some(Duration::from_secs(10))).map(|c| c.count())
        });
        let before = DELIVERED.load(Ordering::SeqCst);
        let masked = std::thread::scope(|t| {
            t.spawn(|| {
                std::thread::sleep(Duration::from_millis(150));
                // SAFETY: as above.
                unsafe { libc::pthread_kill(main as libc::pthread_t, SIGUSR1) };
                std::thread::sleep(Duration::from_millis(150));
                signal(&efd);
            });
            let mask = SigSet::empty().with(SIGUSR1);
            s.wait_with_sigmask(1, Some(Duration::from_secs(10)), &mask)
                .map(|c| c.map(|c| c.event.poll_flags()).collect::<Vec<_>>())
        });
        (plain, masked, DELIVERED.load(Ordering::SeqCst) - before)
    });
    println!("plain={plain:?} masked={masked:?} delivered after the masked wait: {delivered}");
    let code = match masked {
        Err(Errno::NOSYS) => 2, // io_pgetevents unavailable
        Ok(ref v) if plain == Err(Errno::INTR) && *v == [Ok(PollFlags::IN)] && delivered == 1 => 0,
        _ => 1,
    };
    std::process::exit(code)
}

fn wait_with_sigmask_in_a_scope() -> Outcome {
    let mut probe = need_aio!(1);
    need_poll!(probe);
    let out = reexec::self_command()
        .env("LINUX_AIO_TEST_CHILD", "sigmask")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(why) = reexec::start_failure(out.status.code(), &text) {
        return skipped(why);
    }
    if out.status.code() == Some(2) {
        return skipped("io_pgetevents unavailable (kernel before 4.18)");
    }
    assert!(
        out.status.success(),
        "child: {:?} {text} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Passed
}

/// `Event::poll_flags`: a pipe's write end polls OUT, its read end IN once data is there; a
/// cancelled poll reports no events.
fn poll_flags_report_readiness() -> Outcome {
    let mut ctx = need_aio!(8);
    need_poll!(ctx);
    let (r, w) = rustix::pipe::pipe().unwrap();
    let quiet = eventfd();
    ctx.scope::<4, _>(|s| {
        let tw = s
            .submit(Request::poll(w.as_fd(), PollFlags::OUT | PollFlags::IN))
            .unwrap();
        // (The kernel may add the matching *NORM bits.)
        let c = s.wait(1, None).unwrap().next().unwrap();
        let ready = c.event.poll_flags().unwrap();
        assert_eq!(c.ticket, tw);
        assert!(
            ready.contains(PollFlags::OUT) && !ready.contains(PollFlags::IN),
            "{ready:?}"
        );
        let tr = s.submit(Request::poll(r.as_fd(), PollFlags::IN)).unwrap();
        rustix::io::write(&w, b"x").unwrap();
        let c = s.wait(1, None).unwrap().next().unwrap();
        let ready = c.event.poll_flags().unwrap();
        assert_eq!(c.ticket, tr);
        assert!(
            ready.contains(PollFlags::IN) && !ready.contains(PollFlags::OUT),
            "{ready:?}"
        );
        let tq = s
            .submit(Request::poll(quiet.as_fd(), PollFlags::IN))
            .unwrap();
        assert!(matches!(
            s.cancel(tq),
            Ok(ScopedCancel::InProgress | ScopedCancel::Canceled)
        ));
        let c = s.wait(1, None).unwrap().next().unwrap();
        assert_eq!(
            (c.ticket, c.event.poll_flags()),
            (tq, Ok(PollFlags::empty()))
        );
    });
    Passed
}

/// Completions come out in the order they were reaped (not slot order), and a `Completions`
/// dropped early leaves the rest for the next wait, which hands them out without waiting.
fn completions_in_reap_order_and_left_for_later() -> Outcome {
    let mut ctx = need_aio!(8);
    need_poll!(ctx);
    let efds = [eventfd(), eventfd(), eventfd()];
    ctx.scope::<4, _>(|s| {
        let t: Vec<_> = efds
            .iter()
            .map(|e| s.submit(Request::poll(e.as_fd(), PollFlags::IN)).unwrap())
            .collect();
        // Ready in the order 2, 0, 1: slots 2, 0, 1.
        for i in [2, 0, 1] {
            signal(&efds[i]);
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut got = Vec::new();
        while got.is_empty() {
            let mut it = s.wait(3, None).unwrap();
            got.extend(it.next().map(|c| c.ticket));
            // `it` dropped with two completions left in it
        }
        assert_eq!(s.in_flight(), 0);
        let rest: Vec<_> = s
            .wait(2, Some(Duration::ZERO))
            .unwrap()
            .map(|c| c.ticket)
            .collect();
        got.extend(rest);
        assert_eq!(got, [t[2], t[0], t[1]]);
    });
    Passed
}

// ---------------------------------------------------------------------------------------------
// The shared scope

/// Four threads race 64 reads each into a shared scope of 8 slots (retrying when it is full)
/// while the reaper takes completions: every read completes once, with its own data, and its
/// buffer comes back to the thread's pool. The file's blocks differ, so a completion handed
/// to the wrong request, or a buffer reused too early, shows as wrong data.
fn shared_scope_racing_submitters() -> Outcome {
    const THREADS: usize = 4;
    const EACH: usize = 64;
    const BLOCKS: usize = 32;
    let mut ctx = need_aio!(64);
    let s = patterned("shared-race", BLOCKS);
    let mut bufs = vec![[0u8; 512]; THREADS * 8];
    let fd = s.file.as_fd();
    let pools: Vec<&mut [[u8; 512]]> = bufs.chunks_mut(8).collect();
    let (done, wrong) = ctx.shared_scope::<8, _>(|sc, mut reaper| {
        let returned: Vec<std::sync::Mutex<Vec<&mut [u8]>>> = pools
            .into_iter()
            .map(|p| std::sync::Mutex::new(p.iter_mut().map(|b| &mut b[..]).collect()))
            .collect();
        let returned = &returned;
        let submitted = AtomicUsize::new(0);
        std::thread::scope(|t| {
            for (k, pool) in returned.iter().enumerate() {
                let submitted = &submitted;
                t.spawn(move || {
                    let mut sent = 0;
                    while sent < EACH {
                        let Some(buf) = pool.lock().unwrap().pop() else {
                            std::thread::yield_now();
                            continue;
                        };
                        let block = (k * 7 + sent) % BLOCKS;
                        let tag = ((k as u64) << 32) | block as u64;
                        let mut req = Request::read(fd, buf, (block * 512) as u64).user_data(tag);
                        loop {
                            match sc.submit(req) {
                                Ok(_) => break,
                                Err(r) if r.scope_full() || r.error == Errno::AGAIN => {
                                    req = r.request;
                                    std::thread::yield_now();
                                }
                                Err(r) => panic!("submit: {}", r.error),
                            }
                        }
                        sent += 1;
                        submitted.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
            // The reaper, on this thread: until every request of every thread is back.
            let (mut done, mut wrong) = (0, 0);
            while done < THREADS * EACH {
                let Ok(cs) = reaper.wait(1, Some(Duration::from_millis(20))) else {
                    std::thread::yield_now(); // nothing in flight yet (EINVAL)
                    continue;
                };
                for c in cs {
                    let tag = c.event.user_data();
                    let (k, block) = ((tag >> 32) as usize, (tag & 0xffff_ffff) as usize);
                    let buf = c.buffer.into_read().expect("a read's buffer");
                    if c.event.result() != Ok(512) || buf != &pattern(512, block as u8)[..] {
                        wrong += 1;
                    }
                    buf.fill(0);
                    returned[k].lock().unwrap().push(buf);
                    done += 1;
                }
            }
            (done, wrong)
        })
    });
    assert_eq!((done, wrong), (THREADS * EACH, 0));
    assert!(nothing_left(&mut ctx));
    Passed
}

/// Threads submit polls that never become ready and the closure returns without waiting; the
/// reaper is forgotten (`mem::forget`). The scope's end still cancels and reaps every one.
fn shared_scope_ends_with_requests_in_flight() -> Outcome {
    let mut ctx = need_aio!(32);
    need_poll!(ctx);
    let quiet = eventfd();
    let submitted = ctx.shared_scope::<16, _>(|sc, reaper| {
        // Nothing rests on the reaper's drop (it has none): forgetting it changes nothing.
        #[allow(clippy::forget_non_drop)]
        std::mem::forget(reaper);
        std::thread::scope(|t| {
            for _ in 0..4 {
                t.spawn(|| {
                    for _ in 0..3 {
                        sc.submit(Request::poll(quiet.as_fd(), PollFlags::IN))
                            .unwrap();
                    }
                });
            }
        });
        sc.in_flight()
    });
    assert_eq!(submitted, 12);
    assert!(
        nothing_left(&mut ctx),
        "the shared scope's end left requests behind"
    );
    Passed
}

/// A submitting thread panics after submitting a read and a poll that never becomes ready:
/// the panic leaves `shared_scope` only after the scope has drained (the poll cancelled and
/// reaped, the read reaped with its data).
fn shared_scope_drains_after_a_panicking_submitter() -> Outcome {
    let mut ctx = need_aio!(16);
    need_poll!(ctx);
    let quiet = eventfd();
    let s = patterned("shared-panic", 64);
    let mut buf = vec![0u8; 64 * 512];
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ctx.shared_scope::<4, _>(|sc, _reaper| {
            std::thread::scope(|t| {
                t.spawn(|| {
                    sc.submit(Request::read(s.file.as_fd(), &mut buf, 0))
                        .unwrap();
                    sc.submit(Request::poll(quiet.as_fd(), PollFlags::IN))
                        .unwrap();
                    panic!("a submitter panics with requests in flight");
                });
            });
        })
    }));
    assert!(r.is_err());
    assert!(nothing_left(&mut ctx));
    let want: Vec<u8> = (0..64).flat_map(|i| pattern(512, i as u8)).collect();
    assert_eq!(buf, want, "the read was reaped, with its data");
    Passed
}

/// The reaper cancels a pending poll (its completion reports no events), tells a completed
/// request from one in flight, and refuses tickets of other scopes.
fn shared_scope_cancel_and_tickets() -> Outcome {
    let mut ctx = need_aio!(16);
    need_poll!(ctx);
    let quiet = eventfd();
    let ready = eventfd();
    signal(&ready);
    let foreign = ctx.scope::<1, _>(|s| {
        let t = s
            .submit(Request::poll(ready.as_fd(), PollFlags::IN))
            .unwrap();
        s.wait(1, None).unwrap().count();
        t
    });
    ctx.shared_scope::<4, _>(|sc, mut reaper| {
        let pending = std::thread::scope(|t| {
            t.spawn(|| {
                sc.submit(Request::poll(quiet.as_fd(), PollFlags::IN))
                    .unwrap()
            })
            .join()
            .unwrap()
        });
        let quick = sc
            .submit(Request::poll(ready.as_fd(), PollFlags::IN))
            .unwrap();
        assert_ne!(pending, quick);
        assert_eq!(
            reaper.cancel(foreign),
            Err(Errno::INVAL),
            "another scope's ticket"
        );
        let c = reaper.wait(1, None).unwrap().next().unwrap();
        assert_eq!(c.ticket, quick);
        assert_eq!(reaper.cancel(quick), Ok(ScopedCancel::AlreadyComplete));
        assert!(matches!(
            reaper.cancel(pending),
            Ok(ScopedCancel::InProgress | ScopedCancel::Canceled)
        ));
        let c = reaper.wait(1, None).unwrap().next().unwrap();
        assert_eq!(
            (c.ticket, c.event.poll_flags()),
            (pending, Ok(PollFlags::empty()))
        );
        assert_eq!(reaper.cancel(pending), Ok(ScopedCancel::AlreadyComplete));
        assert_eq!(sc.in_flight(), 0);
    });
    Passed
}

/// Refused requests come back whole: the scope full (`scope_full`), and a bad descriptor.
fn shared_scope_refused_requests_come_back() -> Outcome {
    let mut ctx = need_aio!(16);
    need_poll!(ctx);
    let quiet = eventfd();
    let s = patterned("shared-refused", 1);
    let mut buf = [0u8; 512];
    let closed = {
        let f = Scratch::new("shared-closed");
        f.fd()
    };
    ctx.shared_scope::<1, _>(|sc, mut reaper| {
        sc.submit(Request::poll(quiet.as_fd(), PollFlags::IN))
            .unwrap();
        let full = sc
            .submit(Request::read(s.file.as_fd(), &mut buf, 0))
            .unwrap_err();
        assert!(full.scope_full());
        assert_eq!(full.error, Errno::AGAIN);
        assert_eq!(full.request.iocb().aio_nbytes, 512);
        signal(&quiet);
        assert_eq!(reaper.wait(1, None).unwrap().count(), 1);
        // SAFETY: a descriptor number that is closed; the kernel answers EBADF.
        let bad = unsafe { std::os::fd::BorrowedFd::borrow_raw(closed as i32) };
        let buf = full.request.into_buffer().into_read().unwrap();
        let refused = sc.submit(Request::read(bad, buf, 0)).unwrap_err();
        assert_eq!((refused.error, refused.scope_full()), (Errno::BADF, false));
        // The slot is free again, and the buffer usable.
        let buf = refused.request.into_buffer().into_read().unwrap();
        sc.submit(Request::read(s.file.as_fd(), buf, 0)).unwrap();
        let c = reaper.wait(1, None).unwrap().next().unwrap();
        assert_eq!(c.buffer.into_read().unwrap(), &pattern(512, 0)[..]);
    });
    Passed
}

/// A forked child's copy of a shared scope refuses submission and waits with EINVAL, leaves
/// the parent's request alone, and its scope ends at once; the parent reaps its own request.
fn shared_scope_in_a_forked_child() -> Outcome {
    let mut ctx = need_aio!(16);
    need_poll!(ctx);
    let efd = eventfd();
    let outcome = ctx.shared_scope::<2, _>(|sc, mut reaper| {
        let t = sc
            .submit(Request::poll(efd.as_fd(), PollFlags::IN))
            .unwrap();
        // SAFETY: the child calls only into the scope (system calls, no locks) and then
        // leaves through _exit below, right after its copy of the scope has ended.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let submit = sc
                .submit(Request::poll(efd.as_fd(), PollFlags::IN))
                .err()
                .map(|r| r.error);
            let wait = reaper.wait(0, Some(Duration::ZERO)).err();
            let cancel = reaper.cancel(t).err();
            let ok = (submit, wait, cancel)
                == (Some(Errno::INVAL), Some(Errno::INVAL), Some(Errno::INVAL));
            return Err(i32::from(!ok));
        }
        std::thread::sleep(Duration::from_millis(50));
        signal(&efd);
        let c = reaper.wait(1, Some(Duration::from_secs(5))).unwrap().next();
        Ok((pid, c.map(|c| c.ticket) == Some(t)))
    });
    match outcome {
        Err(code) => {
            // The child, past its scope's end.
            // SAFETY: ends the forked child at once.
            unsafe { libc::_exit(code) }
        }
        Ok((pid, own)) => {
            assert!(own, "the parent lost its own completion to the child");
            assert_eq!(wait_child(pid), 0, "the child's checks (1: one failed)");
        }
    }
    assert!(nothing_left(&mut ctx));
    Passed
}
