//! Adversarial review of the fixes in f7a021f and c5ed16a (issues 12, 15). Plain libtest:
//!
//!     cargo test --test review_fixes -- --test-threads=1
//!
//! `review_*` tests reproduce a confirmed defect; the others check a fix's claim and pass.
//! The `pre312_*` tests run their body in a child process under the seccomp emulation
//! (tests/faults/aiofault.c, `cancel=pre3.12`), as tests/faults.rs does.

#[path = "support/runner.rs"]
mod runner;

#[path = "support/faults.rs"]
mod faults;

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use linux_aio::{Context, Errno, Request, ScopeSlots, ScopedCancel, SigSet};
use rustix::event::{eventfd, EventfdFlags, PollFlags};

fn scratch(tag: &str, contents: &[u8]) -> File {
    let path = std::env::temp_dir().join(format!("atk-fixes-{tag}-{}", std::process::id()));
    let mut f = File::create(&path).unwrap();
    f.write_all(contents).unwrap();
    let f = File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    f
}

fn quiet_eventfd() -> OwnedFd {
    eventfd(0, EventfdFlags::CLOEXEC).unwrap()
}

fn ready_eventfd() -> OwnedFd {
    let e = quiet_eventfd();
    rustix::io::write(&e, &1u64.to_ne_bytes()).unwrap();
    e
}

/// A descriptor number nobody has open: io_submit refuses it with a real EBADF.
fn bad_fd() -> BorrowedFd<'static> {
    // SAFETY: only handed to the kernel, which refuses it (EBADF); never closed or used.
    unsafe { BorrowedFd::borrow_raw(987_654) }
}

fn nothing_left(ctx: &mut Context) -> bool {
    let mut events = [linux_aio::Event::default(); 4];
    ctx.wait(&mut events, 0, Some(Duration::from_millis(50))) == Ok(0)
}

// ---------------------------------------------------------------------------------------------
// (c) submit_prepared in chunks of 256

const BIG: usize = 1024;

/// Prepares `total` 8-byte reads (request j reads offset 8j), with request `bad` on a closed
/// descriptor, submits them with one submit_prepared, and checks everything the book says.
fn chunked(total: usize, bad: usize) {
    let data: Vec<u8> = (0..total * 8).map(|i| (i % 251) as u8).collect();
    let file = scratch(&format!("chunk{total}-{bad}"), &data);
    let mut ctx = Context::new(BIG as u32 + 8).unwrap();
    let mut place = Box::new(MaybeUninit::<ScopeSlots<BIG>>::uninit());
    let slots = ScopeSlots::from_uninit(&mut place);
    let mut bufs = vec![[0u8; 8]; total];
    let returned = ctx.scope_in(slots, |s| {
        let mut tickets = Vec::new();
        for (j, b) in bufs.iter_mut().enumerate() {
            let fd = if j == bad { bad_fd() } else { file.as_fd() };
            tickets.push(
                s.prepare(Request::read(fd, b, 8 * j as u64).user_data(j as u64))
                    .unwrap(),
            );
        }
        assert_eq!(s.prepared(), total);
        let r = s.submit_prepared();
        // The kernel takes exactly the requests before `bad` (buffered reads, no EAGAIN).
        let accepted = match r {
            Ok(k) => k,
            Err(e) => {
                assert_eq!(e.error, Errno::BADF, "{total}/{bad}: {r:?}");
                e.submitted
            }
        };
        assert_eq!(accepted, bad, "{total}/{bad}: {r:?}");
        assert_eq!(s.in_flight(), bad, "{total}/{bad}: in flight");
        assert_eq!(s.prepared(), total - bad, "{total}/{bad}: prepared");
        // Every accepted request completes once, with its own ticket, in any order.
        let mut seen = HashSet::new();
        let mut returned = 0;
        while seen.len() < bad {
            for c in s.wait(1, Some(Duration::from_secs(5))).unwrap() {
                let j = c.event.user_data() as usize;
                assert!(j < bad, "{total}/{bad}: request {j} ran");
                assert_eq!(c.ticket, tickets[j], "ticket of {j}");
                assert_eq!(c.event.result(), Ok(8));
                assert_eq!(c.buffer.into_read().unwrap(), &data[8 * j..8 * j + 8]);
                assert!(seen.insert(j), "{j} twice");
                returned += 1;
            }
        }
        // The refused one is first in the batch: cancel it, then the rest go in, in order.
        assert_eq!(s.cancel(tickets[bad]), Ok(ScopedCancel::Canceled));
        assert_eq!(s.prepared(), total - bad - 1);
        let rest = s.submit_prepared();
        assert_eq!(rest, Ok(total - bad - 1), "{total}/{bad}: the rest");
        assert_eq!(s.in_flight(), total - bad - 1);
        assert_eq!(s.prepared(), 0);
        let mut canceled = 0;
        while seen.len() + canceled < total {
            for c in s.wait(1, Some(Duration::from_secs(5))).unwrap() {
                let j = c.event.user_data() as usize;
                assert_eq!(c.ticket, tickets[j], "ticket of {j}");
                if j == bad {
                    assert_eq!(c.event.result(), Err(Errno::CANCELED));
                    canceled += 1;
                } else {
                    assert_eq!(c.event.result(), Ok(8), "{j}");
                    assert_eq!(c.buffer.into_read().unwrap(), &data[8 * j..8 * j + 8]);
                    assert!(seen.insert(j), "{j} twice");
                }
                returned += 1;
            }
        }
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.free_slots(), BIG);
        returned
    });
    assert_eq!(returned, total);
    assert!(nothing_left(&mut ctx));
}

fn chunk_refusals_everywhere() {
    for (total, bad) in [
        (300, 256), // chunk 1 whole, chunk 2 refused at its first request
        (300, 257),
        (300, 299),
        (300, 255),
        (300, 0),
        (513, 512), // the third chunk's only request
        (513, 256),
        (513, 511),
        (1000, 768),
        (1000, 999),
        (1000, 100),
        (1000, 600),
    ] {
        chunked(total, bad);
    }
}

/// What a refusal looks like to the caller must not depend on where a 256-request chunk
/// boundary falls: a bad descriptor at 255 and at 256 of the same batch (each after only
/// accepted requests) are the same situation, the kernel's `io_submit` answers both with the
/// count accepted, and so did submit_prepared before the chunking.
fn chunk_boundary_does_not_change_the_result_kind() {
    let mut kinds = Vec::new();
    for bad in [255, 256] {
        let data = vec![1u8; 300 * 8];
        let file = scratch(&format!("kind{bad}"), &data);
        let mut ctx = Context::new(BIG as u32 + 8).unwrap();
        let mut place = Box::new(MaybeUninit::<ScopeSlots<BIG>>::uninit());
        let slots = ScopeSlots::from_uninit(&mut place);
        let mut bufs = vec![[0u8; 8]; 300];
        let r = ctx.scope_in(slots, |s| {
            for (j, b) in bufs.iter_mut().enumerate() {
                let fd = if j == bad { bad_fd() } else { file.as_fd() };
                s.prepare(Request::read(fd, b, 8 * j as u64)).unwrap();
            }
            let r = s.submit_prepared();
            s.discard_prepared();
            r
        });
        kinds.push(r);
    }
    assert_eq!(
        kinds[0].is_ok(),
        kinds[1].is_ok(),
        "bad fd at 255 gave {:?}, at 256 gave {:?}",
        kinds[0],
        kinds[1]
    );
}

// ---------------------------------------------------------------------------------------------
// (d) SharedScope: in_flight counted after io_submit accepts

fn shared_many_submitters_reaper_min_above_one() {
    const THREADS: usize = 3;
    const PER: usize = 3000;
    let data: Vec<u8> = (0..64).collect();
    let file = scratch("shared-min", &data);
    let mut ctx = Context::new(64).unwrap();
    let mut bufs = vec![[0u8; 16]; PER * THREADS];
    let finished = AtomicUsize::new(0);
    let nonsense = AtomicUsize::new(0);
    let mut returned = HashSet::new();
    let mut einval = 0usize;
    ctx.shared_scope::<16, _>(|s, mut reaper| {
        std::thread::scope(|t| {
            for (k, chunk) in bufs.chunks_mut(PER).enumerate() {
                let (file, finished) = (&file, &finished);
                t.spawn(move || {
                    for (j, b) in chunk.iter_mut().enumerate() {
                        let id = (k * PER + j) as u64;
                        let mut req = Request::read(file.as_fd(), b, 0).user_data(id);
                        loop {
                            match s.submit(req) {
                                Ok(_) => break,
                                Err(r) => {
                                    assert_eq!(r.error, Errno::AGAIN, "{}", r.error);
                                    req = r.request;
                                    std::thread::yield_now();
                                }
                            }
                        }
                    }
                    finished.fetch_add(1, Ordering::Release);
                });
            }
            let mut round = 0usize;
            loop {
                let done = finished.load(Ordering::Acquire) == THREADS;
                let f = s.in_flight();
                if f > 16 {
                    nonsense.fetch_add(1, Ordering::Relaxed);
                }
                round += 1;
                let min = 1 + round % 4;
                match reaper.wait(min, Some(Duration::from_millis(1))) {
                    Ok(cs) => {
                        for c in cs {
                            assert_eq!(c.event.result(), Ok(16));
                            assert_eq!(c.buffer.into_read().unwrap(), &data[..16]);
                            assert!(returned.insert(c.event.user_data()), "twice");
                        }
                    }
                    Err(Errno::INVAL) => einval += 1,
                    Err(e) => panic!("reaper: {e}"),
                }
                if done && s.in_flight() == 0 {
                    for c in reaper.wait(0, None).unwrap() {
                        assert!(returned.insert(c.event.user_data()), "twice");
                    }
                    break;
                }
            }
        })
    });
    eprintln!("EINVAL waits: {einval}");
    assert_eq!(nonsense.into_inner(), 0, "in_flight above N");
    assert_eq!(
        returned.len(),
        PER * THREADS,
        "buffers not returned exactly once"
    );
    assert!(nothing_left(&mut ctx));
}

// ---------------------------------------------------------------------------------------------
// (e)

fn sigset_full_leaves_out_32_to_34_only() {
    let full = SigSet::full();
    for sig in 1..=64 {
        let want = !(32..=34).contains(&sig);
        assert_eq!(full.contains(sig), want, "signal {sig}");
    }
}

// ---------------------------------------------------------------------------------------------
// (a) pre-3.12 io_cancel in the scope's end, under the emulation

const CHILD: &str = "LINUX_AIO_ATK_CHILD";

fn in_child(name: &str, config: &str) -> bool {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        if let Err(why) = faults::active() {
            println!("SKIP: {why}");
            std::process::exit(0);
        }
        return true;
    }
    let lib = match faults::library(faults::SOURCE) {
        Ok(lib) => lib,
        Err(why) => {
            runner::note_skip(why);
            return false;
        }
    };
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, name);
    faults::under(&mut cmd, &lib, config);
    let out = faults::run(&mut cmd, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(why) = stdout.lines().find_map(|l| l.strip_prefix("SKIP: ")) {
        runner::note_skip(why.to_string());
        return false;
    }
    assert!(
        out.status.success() && stdout.contains("child: ok"),
        "child {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    false
}

fn child_ok() {
    assert!(faults::fired() > 0, "emulation never fired");
    println!("child: ok");
}

fn pre312_scope_end_polls_and_reads_mixed() {
    if !in_child("pre312_scope_end_polls_and_reads_mixed", "cancel=pre3.12") {
        return;
    }
    let data: Vec<u8> = (0..128).collect();
    let file = scratch("pre312", &data);
    let quiet: Vec<OwnedFd> = (0..5).map(|_| quiet_eventfd()).collect();
    let ready = ready_eventfd();
    for user_space in [true, false] {
        let mut ctx = Context::new(32).unwrap();
        ctx.set_user_space_reaping(user_space);
        let mut bufs = [[0u8; 8]; 6];
        ctx.scope::<16, _>(|s| {
            let mut it = bufs.iter_mut();
            for (k, q) in quiet.iter().enumerate() {
                s.submit(Request::poll(q.as_fd(), PollFlags::IN).user_data(100 + k as u64))
                    .unwrap();
                let b = it.next().unwrap();
                s.submit(Request::read(file.as_fd(), b, 8 * k as u64))
                    .unwrap();
            }
            s.submit(Request::poll(ready.as_fd(), PollFlags::IN))
                .unwrap();
            s.submit(Request::read(file.as_fd(), it.next().unwrap(), 0))
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(s.in_flight(), 12);
        });
        assert!(nothing_left(&mut ctx), "an event left behind");
        for (k, b) in bufs.iter().enumerate().take(5) {
            assert_eq!(b, &data[8 * k..8 * k + 8]);
        }
    }
    child_ok();
}

fn pre312_shared_scope_end_polls_and_reads_mixed() {
    if !in_child(
        "pre312_shared_scope_end_polls_and_reads_mixed",
        "cancel=pre3.12",
    ) {
        return;
    }
    let data: Vec<u8> = (0..128).collect();
    let file = scratch("pre312s", &data);
    let quiet: Vec<OwnedFd> = (0..5).map(|_| quiet_eventfd()).collect();
    let ready = ready_eventfd();
    for user_space in [true, false] {
        let mut ctx = Context::new(32).unwrap();
        ctx.set_user_space_reaping(user_space);
        let mut bufs = [[0u8; 8]; 6];
        ctx.shared_scope::<16, _>(|s, _reaper| {
            let mut it = bufs.iter_mut();
            for (k, q) in quiet.iter().enumerate() {
                s.submit(Request::poll(q.as_fd(), PollFlags::IN)).unwrap();
                s.submit(Request::read(
                    file.as_fd(),
                    it.next().unwrap(),
                    8 * k as u64,
                ))
                .unwrap();
            }
            s.submit(Request::poll(ready.as_fd(), PollFlags::IN))
                .unwrap();
            s.submit(Request::read(file.as_fd(), it.next().unwrap(), 0))
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(s.in_flight(), 12);
        });
        assert!(nothing_left(&mut ctx), "an event left behind");
        for (k, b) in bufs.iter().enumerate().take(5) {
            assert_eq!(b, &data[8 * k..8 * k + 8]);
        }
    }
    child_ok();
}

/// A poll cancelled by the user (pre-3.12: done at once), then the scope ends with other
/// polls pending and the cancelled one never handed out.
fn pre312_cancel_then_end_without_wait() {
    if !in_child("pre312_cancel_then_end_without_wait", "cancel=pre3.12") {
        return;
    }
    let quiet: Vec<OwnedFd> = (0..4).map(|_| quiet_eventfd()).collect();
    let mut ctx = Context::new(16).unwrap();
    ctx.scope::<4, _>(|s| {
        let t: Vec<_> = quiet
            .iter()
            .map(|q| s.submit(Request::poll(q.as_fd(), PollFlags::IN)).unwrap())
            .collect();
        assert_eq!(s.cancel(t[1]), Ok(ScopedCancel::Canceled));
        assert_eq!(s.cancel(t[3]), Ok(ScopedCancel::Canceled));
        assert_eq!(s.in_flight(), 2);
    });
    assert!(nothing_left(&mut ctx));
    child_ok();
}

// ---------------------------------------------------------------------------------------------
// (d) continued: a submitter held between its io_submit and its count

extern "C" fn slow_handler(_: libc::c_int) {
    let pause = libc::timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    // SAFETY: nanosleep is async-signal-safe; a valid timespec, no remainder.
    unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
}

/// Thread A's read of an empty pipe blocks inside io_submit; a signal interrupts it there (the
/// kernel posts its event, res = -EINTR, and io_submit returns 1), and A's handler then holds
/// A for a second before `submit` can count the request. Meanwhile the reaper thread submits
/// B (a POLL: accepted, its `submit` returns its ticket) and reaps one completion, A's. B is
/// now submitted and not reaped: the defect was `in_flight()` saying 0 and `wait(1, timeout)`
/// refusing with EINVAL instead of handing out B once it completes.
fn review_shared_in_flight_zero_while_a_returned_submit_is_in_flight() {
    // SAFETY: a handler that only calls nanosleep; installed for this test's SIGUSR1.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = slow_handler as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    // B is a POLL that completes only when told (after the first wait): a read of a file
    // would complete inside io_submit, and the first wait would then take A's and B's events
    // together, never testing what B's count does meanwhile.
    let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).unwrap();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut a = [0u8; 8];
    let tid = AtomicUsize::new(0);
    let (in_flight_after, second_wait, first_user_data) =
        ctx.shared_scope::<4, _>(|s, mut reaper| {
            std::thread::scope(|t| {
                let (r, tid, a) = (&r, &tid, &mut a);
                let h = t.spawn(move || {
                    // SAFETY: gettid has no preconditions.
                    tid.store(unsafe { libc::gettid() } as usize, Ordering::SeqCst);
                    s.submit(Request::read(r.as_fd(), a, 0).user_data(1))
                        .unwrap();
                });
                while tid.load(Ordering::SeqCst) == 0 {
                    std::thread::yield_now();
                }
                std::thread::sleep(Duration::from_millis(200)); // A blocks inside io_submit
                                                                // SAFETY: signals a thread of this process that is alive (joined below).
                unsafe {
                    libc::syscall(
                        libc::SYS_tgkill,
                        libc::getpid(),
                        tid.load(Ordering::SeqCst) as libc::pid_t,
                        libc::SIGUSR1,
                    )
                };
                std::thread::sleep(Duration::from_millis(200)); // A is in its handler now
                s.submit(Request::poll(efd.as_fd(), PollFlags::IN).user_data(2))
                    .expect("B accepted");
                let first: Vec<u64> = reaper
                    .wait(1, Some(Duration::from_millis(100)))
                    .unwrap()
                    .map(|c| c.event.user_data())
                    .collect();
                let in_flight_after = s.in_flight();
                rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
                let second = reaper
                    .wait(1, Some(Duration::from_secs(5)))
                    .map(|cs| cs.map(|c| c.event.user_data()).collect::<Vec<_>>());
                h.join().unwrap();
                (in_flight_after, second, first)
            })
        });
    eprintln!(
        "first wait: {first_user_data:?}, then in_flight {in_flight_after}, then {second_wait:?}"
    );
    if first_user_data != [1] {
        // A's read was not interrupted inside io_submit (a kernel where a pipe read does not
        // block there): the situation under test never arose.
        runner::note_skip(format!(
            "the first wait gave {first_user_data:?}, not A's interrupted read alone"
        ));
        return;
    }
    assert_eq!(in_flight_after, 1, "B is submitted and not reaped");
    assert_eq!(
        second_wait,
        Ok(vec![2]),
        "B's completion is waiting in the ring"
    );
}

/// A ring smaller than the batch: buffered reads complete inside io_submit and fill it, so a
/// chunk stops with EAGAIN part-way; the counts stay exact, and reaping then resubmitting
/// finishes the batch with every buffer back once.
fn chunks_against_a_full_ring() {
    const TOTAL: usize = 1000;
    let data: Vec<u8> = (0..TOTAL * 8).map(|i| (i % 253) as u8).collect();
    let file = scratch("ringfull", &data);
    let mut ctx = Context::new(40).unwrap();
    let nr = ctx.ring_slots().unwrap_or(0) as usize;
    if nr >= TOTAL {
        runner::note_skip(format!(
            "the kernel's ring for capacity 40 has {nr} slots (it rounds up to whole pages, and scales with the possible CPUs): the batch cannot fill it"
        ));
        return;
    }
    let mut place = Box::new(MaybeUninit::<ScopeSlots<BIG>>::uninit());
    let slots = ScopeSlots::from_uninit(&mut place);
    let mut bufs = vec![[0u8; 8]; TOTAL];
    let (rounds, seen) = ctx.scope_in(slots, |s| {
        let tickets: Vec<_> = bufs
            .iter_mut()
            .enumerate()
            .map(|(j, b)| {
                s.prepare(Request::read(file.as_fd(), b, 8 * j as u64).user_data(j as u64))
                    .unwrap()
            })
            .collect();
        let mut seen = HashSet::new();
        let mut rounds = 0;
        let mut next = 0; // the first request not yet accepted
        while s.prepared() > 0 {
            rounds += 1;
            let before = s.in_flight();
            let accepted = match s.submit_prepared() {
                Ok(k) => k,
                Err(e) => {
                    assert_eq!(e.error, Errno::AGAIN, "{e:?}");
                    e.submitted
                }
            };
            next += accepted;
            assert_eq!(s.in_flight(), before + accepted);
            assert_eq!(s.prepared(), TOTAL - next);
            let want = s.in_flight();
            let mut got = 0;
            while got < want {
                for c in s.wait(1, Some(Duration::from_secs(5))).unwrap() {
                    let j = c.event.user_data() as usize;
                    assert!(j < next, "{j} ran before it was accepted ({next})");
                    assert_eq!(c.ticket, tickets[j]);
                    assert_eq!(c.buffer.into_read().unwrap(), &data[8 * j..8 * j + 8]);
                    assert!(seen.insert(j), "{j} twice");
                    got += 1;
                }
            }
            assert!(rounds < 10_000);
        }
        (rounds, seen.len())
    });
    eprintln!("rounds: {rounds}");
    assert_eq!(seen, TOTAL);
    assert!(rounds > 1, "the ring never filled");
    assert!(nothing_left(&mut ctx));
}

/// Every test, each skipped (with the reason) where the kernel has no AIO (qemu-user, ENOSYS
/// targets): the crate's runner, so that a skip is counted as one.
fn main() {
    macro_rules! test {
        ($f:ident) => {
            (
                stringify!($f),
                (|| match linux_aio::Context::new(1) {
                    Err(e) => {
                        runner::skipped(format!("kernel AIO unavailable: io_setup gives {e}"))
                    }
                    Ok(_) => runner::noting_skips($f),
                }) as fn() -> runner::Outcome,
            )
        };
    }
    let tests: Vec<runner::Test> = vec![
        test!(chunk_refusals_everywhere),
        test!(chunk_boundary_does_not_change_the_result_kind),
        test!(shared_many_submitters_reaper_min_above_one),
        test!(sigset_full_leaves_out_32_to_34_only),
        test!(pre312_scope_end_polls_and_reads_mixed),
        test!(pre312_shared_scope_end_polls_and_reads_mixed),
        test!(pre312_cancel_then_end_without_wait),
        test!(review_shared_in_flight_zero_while_a_returned_submit_is_in_flight),
        test!(chunks_against_a_full_ring),
    ];
    runner::run("review_fixes", &tests)
}
