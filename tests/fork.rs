//! fork, scope ownership and POSIX ids, attacked: the adversarial review's tests, kept as a
//! regression suite. Each test states the claim it attacks, and fails if the defect comes back
//! (five did, in review: see the commit that adopted this file).
//! Children are killed after 20 s, so a hang is reported, never suffered.
//!
//! Some tests re-execute this binary with `ATK_CHILD=<mode>` so that a fresh process can change
//! something before its first `Context` (a seccomp filter that makes
//! `madvise(MADV_WIPEONFORK)` fail, forcing the getpid fallback of `src/owner.rs`).

#[path = "support/reexec.rs"]
mod reexec;
#[path = "support/runner.rs"]
mod runner;
#[path = "support/scratch.rs"]
mod scratch;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use linux_aio::posix::{self, Aiocb, Notify};
use linux_aio::{Buffer, Context, Errno, Event, Request, ScopedCancel, SigSet};
use runner::{skipped, Outcome, Passed};
use rustix::event::PollFlags;
use scratch::{eventfd, pattern, Scratch};

fn main() {
    if let Ok(mode) = std::env::var("ATK_CHILD") {
        let code = match mode.as_str() {
            "nopage-basic" => nopage_basic_child(),
            "nopage-pidns" => nopage_pidns_child(),
            other => {
                eprintln!("unknown ATK_CHILD {other}");
                2
            }
        };
        std::process::exit(code);
    }
    runner::run(
        "fork",
        &[
            ("raw_fork_syscall_child", raw_fork_syscall_child),
            ("raw_clone_child", raw_clone_child),
            ("clone3_child", clone3_child),
            ("fork_while_reaper_blocked", fork_while_reaper_blocked),
            (
                "fork_storm_during_submit_and_reap",
                fork_storm_during_submit_and_reap,
            ),
            (
                "grandchildren_and_own_contexts",
                grandchildren_and_own_contexts,
            ),
            (
                "child_uses_own_and_inherited_scope",
                child_uses_own_and_inherited_scope,
            ),
            (
                "fork_from_drop_while_unwinding",
                fork_from_drop_while_unwinding,
            ),
            ("fork_inside_posix_callback", fork_inside_posix_callback),
            (
                "fork_while_other_thread_in_aio_suspend",
                fork_while_other_thread_in_aio_suspend,
            ),
            ("nopage_fallback_basic", nopage_fallback_basic),
            (
                "nopage_fallback_pid_namespace",
                nopage_fallback_pid_namespace,
            ),
            ("stale_generation_ticket", stale_generation_ticket),
            ("tickets_across_nested_scopes", tickets_across_nested_scopes),
            ("ids_across_layers", ids_across_layers),
            (
                "forgotten_completions_iterator",
                forgotten_completions_iterator,
            ),
            ("hostile_values", hostile_values),
            ("zero_slot_scope", zero_slot_scope),
            ("discarded_prepared_ticket", discarded_prepared_ticket),
            ("child_empty_submit_is_einval", child_empty_submit_is_einval),
            (
                "user_space_reaping_reported_in_child",
                user_space_reaping_reported_in_child,
            ),
            (
                "fork_while_other_thread_in_scope_wait",
                fork_while_other_thread_in_scope_wait,
            ),
            (
                "posix_eventfd_notify_on_a_regular_file",
                posix_eventfd_notify_on_a_regular_file,
            ),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn context(n: u32) -> Result<Context, Outcome> {
    match Context::new(n) {
        Ok(c) => Ok(c),
        Err(Errno::NOSYS) => Err(skipped("kernel AIO unavailable (ENOSYS)")),
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

/// Waits up to 20 s for child `pid`; its exit code, or a failure if it hangs or dies by a signal.
fn wait_child(pid: libc::pid_t) -> i32 {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
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
            let mut status = 0;
            // SAFETY: reaping it.
            unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
            panic!("the forked child hung (killed after 20 s)");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How a child is made.
#[derive(Clone, Copy, Debug)]
enum Spawn {
    Fork,
    SyscallFork,
    Clone,
    Clone3,
    /// clone(CLONE_NEWPID | SIGCHLD): the child is PID 1 of a new PID namespace.
    ClonePidNs,
}

/// The kernel's `struct clone_args` (its first version, 64 bytes; libc lacks it on some
/// architectures).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// The raw `clone` system call with `flags` and no new stack (so: a fork). s390x takes the stack
/// first and the flags second (the kernel's CLONE_BACKWARDS2); everyone else the other way round.
///
/// # Safety
/// As `fork`: the child must only make system calls and `_exit`.
unsafe fn raw_clone(flags: libc::c_int) -> libc::pid_t {
    let flags = flags as libc::c_ulong;
    #[cfg(target_arch = "s390x")]
    let (a0, a1) = (0, flags);
    #[cfg(not(target_arch = "s390x"))]
    let (a0, a1) = (flags, 0);
    // SAFETY: forwarded to the caller.
    unsafe { libc::syscall(libc::SYS_clone, a0, a1, 0usize, 0usize, 0usize) as libc::pid_t }
}

/// Makes a child that runs `child` (no allocation there: another thread may hold malloc's
/// lock when a raw clone happens) and `_exit`s with its result; returns its exit code.
fn in_child(how: Spawn, child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs only `child` (this crate's raw system calls) and _exit.
    let pid = unsafe {
        match how {
            Spawn::Fork => libc::fork(),
            // The generic syscall table (aarch64, riscv64) has no fork: clone(SIGCHLD) is it.
            #[cfg(any(
                target_arch = "x86_64",
                target_arch = "powerpc64",
                target_arch = "s390x",
                target_arch = "x86",
                target_arch = "arm"
            ))]
            Spawn::SyscallFork => libc::syscall(libc::SYS_fork) as libc::pid_t,
            #[cfg(not(any(
                target_arch = "x86_64",
                target_arch = "powerpc64",
                target_arch = "s390x",
                target_arch = "x86",
                target_arch = "arm"
            )))]
            Spawn::SyscallFork => raw_clone(libc::SIGCHLD),
            Spawn::Clone => raw_clone(libc::SIGCHLD),
            Spawn::ClonePidNs => raw_clone(libc::CLONE_NEWPID | libc::SIGCHLD),
            Spawn::Clone3 => {
                let mut args = CloneArgs {
                    exit_signal: libc::SIGCHLD as u64,
                    ..CloneArgs::default()
                };
                libc::syscall(
                    libc::SYS_clone3,
                    &mut args as *mut CloneArgs,
                    std::mem::size_of::<CloneArgs>(),
                ) as libc::pid_t
            }
        }
    };
    match pid {
        -1 => panic!("{how:?}: {}", std::io::Error::last_os_error()),
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(code) }
        }
        pid => wait_child(pid),
    }
}

fn file_with(tag: &str, len: usize, seed: u8) -> Scratch {
    let f = Scratch::new(tag);
    std::fs::write(&f.path, pattern(len, seed)).unwrap();
    f
}

/// Collects `want` events from `ctx` (5 s per wait), as (user_data, result).
fn collect(ctx: &mut Context, want: usize) -> Vec<(u64, Result<usize, Errno>)> {
    let mut ev = [Event::default(); 64];
    let mut got = Vec::new();
    while got.len() < want {
        let n = ctx.wait(&mut ev, 1, Some(Duration::from_secs(5))).unwrap();
        if n == 0 {
            break;
        }
        got.extend(ev[..n].iter().map(|e| (e.user_data(), e.result())));
    }
    got
}

/// The checks every inherited `Context` must pass in a child: EINVAL everywhere, nothing taken.
fn child_checks(ctx: &mut Context, iocb: *const linux_aio::raw::iocb) -> i32 {
    let mut ev = [Event::default(); 8];
    if ctx.try_wait(&mut ev) != Err(Errno::INVAL) {
        return 1;
    }
    if ctx.wait(&mut ev, 1, Some(Duration::from_millis(20))) != Err(Errno::INVAL) {
        return 2;
    }
    if ctx.wait_with_sigmask(&mut ev, 0, Some(Duration::ZERO), &SigSet::empty())
        != Err(Errno::INVAL)
    {
        return 3;
    }
    if ctx.ready().is_some() {
        return 4;
    }
    if ctx.cancel(iocb) != Err(Errno::INVAL) {
        return 5;
    }
    let (sub, mut reaper) = ctx.split();
    if reaper.try_wait(&mut ev) != Err(Errno::INVAL) {
        return 6;
    }
    if sub.cancel(iocb) != Err(Errno::INVAL) {
        return 7;
    }
    0
}

/// Submits four buffered reads (complete inside io_submit: four events wait in the ring).
fn four_reads<'a>(ctx: &Context, f: &'a Scratch, bufs: &'a mut [[u8; 64]; 4]) -> Vec<Request<'a>> {
    let mut reqs: Vec<Request> = bufs
        .iter_mut()
        .enumerate()
        .map(|(i, b)| Request::read(f.file.as_fd(), b, i as u64 * 64).user_data(i as u64 + 1))
        .collect();
    let mut batch: Vec<&mut Request> = reqs.iter_mut().collect();
    // SAFETY: callers reap all four before the buffers go.
    assert_eq!(unsafe { ctx.submit(&mut batch) }, Ok(4));
    reqs
}

fn expect_four(got: &[(u64, Result<usize, Errno>)]) {
    assert_eq!(
        got,
        &(1..=4).map(|i| (i, Ok(64))).collect::<Vec<_>>()[..],
        "the parent's completions: lost, duplicated or reordered"
    );
}

// ---------------------------------------------------------------------------------------------
// Children made without glibc's fork (no atfork handlers): the token page must still work.

fn child_without_atfork(how: Spawn) -> Outcome {
    let mut ctx = need_aio!(16);
    let f = file_with("rawfork", 256, 3);
    let mut bufs = [[0u8; 64]; 4];
    let reqs = four_reads(&ctx, &f, &mut bufs);
    let iocb: *const linux_aio::raw::iocb = reqs[0].iocb();
    let ctx_ref = &mut ctx;
    let code = in_child(how, move || child_checks(ctx_ref, iocb));
    assert_eq!(code, 0, "{how:?} child: check {code} failed");
    let got = collect(&mut ctx, 4);
    expect_four(&got);
    drop(reqs);
    Passed
}

/// Claim: a child never consumes the parent's completions, however it was made.
fn raw_fork_syscall_child() -> Outcome {
    child_without_atfork(Spawn::SyscallFork)
}

fn raw_clone_child() -> Outcome {
    child_without_atfork(Spawn::Clone)
}

fn clone3_child() -> Outcome {
    child_without_atfork(Spawn::Clone3)
}

// ---------------------------------------------------------------------------------------------
// Threads and fork

/// A thread blocks in `Reaper::wait` (no events yet); another thread forks; the child uses
/// the shared `Submitter`. The parent's reaper must then get the events submitted after.
fn fork_while_reaper_blocked() -> Outcome {
    let mut ctx = need_aio!(16);
    let efd = eventfd();
    let f = file_with("reaper-blocked", 256, 5);
    let started = AtomicBool::new(false);
    let (sub, mut reaper) = ctx.split();
    let mut buf = [0u8; 64];
    let result = std::thread::scope(|ts| {
        let waiter = ts.spawn(|| {
            started.store(true, Ordering::SeqCst);
            let mut ev = [Event::default(); 4];
            let mut got = Vec::new();
            while got.len() < 2 {
                match reaper.wait(&mut ev, 1, Some(Duration::from_secs(10))) {
                    Ok(0) => break,
                    Ok(n) => got.extend(ev[..n].iter().map(|e| e.user_data())),
                    Err(Errno::INTR) => {}
                    Err(e) => panic!("reaper: {e}"),
                }
            }
            got
        });
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(50)); // the waiter is in io_getevents now
        let mut poll = Request::poll(efd.as_fd(), PollFlags::IN).user_data(10);
        // SAFETY: the eventfd outlives the waiter, which reaps the poll.
        assert_eq!(unsafe { sub.submit(&mut [&mut poll]) }, Ok(1));
        let poll_iocb: *const linux_aio::raw::iocb = poll.iocb();
        let fd = f.file.as_fd();
        let code = in_child(Spawn::Fork, || {
            if sub.cancel(poll_iocb) != Err(Errno::INVAL) {
                return 1;
            }
            let mut b = [0u8; 8];
            let mut r = Request::read(fd, &mut b, 0);
            // SAFETY: refused, or _exit follows.
            if unsafe { sub.submit(&mut [&mut r]) }.map_err(|e| e.error) != Err(Errno::INVAL) {
                return 2;
            }
            0
        });
        let mut r = Request::read(f.file.as_fd(), &mut buf, 0).user_data(11);
        // SAFETY: `buf` outlives the waiter's reap.
        assert_eq!(unsafe { sub.submit(&mut [&mut r]) }, Ok(1));
        rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
        let mut got = waiter.join().unwrap();
        got.sort();
        (code, got)
    });
    assert_eq!(result.0, 0, "child check {} failed", result.0);
    assert_eq!(result.1, vec![10, 11], "the blocked reaper lost events");
    Passed
}

/// Four threads submit through `Submitter` while one reaps; the main thread forks 30 times;
/// every child pokes the inherited context. Every completion must reach the parent exactly
/// once, and per submitting thread in submission order.
fn fork_storm_during_submit_and_reap() -> Outcome {
    const THREADS: usize = 4;
    const PER: usize = 2000;
    let mut ctx = need_aio!(128);
    let f = file_with("storm", 4096, 7);
    let mut bufs: Vec<[u8; 16]> = vec![[0u8; 16]; THREADS * PER];
    let base = bufs.as_mut_ptr() as usize;
    let (sub, mut reaper) = ctx.split();
    let submitted = AtomicUsize::new(0);
    let done_submitting = AtomicBool::new(false);
    let fd = f.file.as_fd();
    let (events, codes) = std::thread::scope(|ts| {
        let reap = ts.spawn(|| {
            let mut ev = [Event::default(); 64];
            let mut got: Vec<u64> = Vec::with_capacity(THREADS * PER);
            while got.len() < THREADS * PER {
                match reaper.wait(&mut ev, 1, Some(Duration::from_secs(5))) {
                    Ok(0) => {
                        if done_submitting.load(Ordering::SeqCst)
                            && got.len() >= submitted.load(Ordering::SeqCst)
                        {
                            break;
                        }
                    }
                    Ok(n) => got.extend(ev[..n].iter().map(|e| e.user_data())),
                    Err(Errno::INTR) => {}
                    Err(e) => panic!("reaper: {e}"),
                }
            }
            got
        });
        let mut submitters = Vec::new();
        for t in 0..THREADS {
            let submitted = &submitted;
            submitters.push(ts.spawn(move || {
                for k in 0..PER {
                    let idx = t * PER + k;
                    // SAFETY: each index is used by exactly one request; `bufs` outlives the
                    // reaper thread, which reaps every request.
                    let buf =
                        unsafe { std::slice::from_raw_parts_mut((base + idx * 16) as *mut u8, 16) };
                    let mut r =
                        Request::read(fd, buf, (idx % 256) as u64 * 16).user_data(idx as u64);
                    loop {
                        // SAFETY: as above.
                        match unsafe { sub.submit(&mut [&mut r]) } {
                            Ok(1) => break,
                            Err(e) if e.error == Errno::AGAIN => std::thread::yield_now(),
                            other => panic!("submit: {other:?}"),
                        }
                    }
                    submitted.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        let mut codes = Vec::new();
        let probe = linux_aio::raw::iocb::default();
        for _ in 0..30 {
            codes.push(in_child(Spawn::Fork, || {
                if sub.cancel(&probe) != Err(Errno::INVAL) {
                    return 1;
                }
                0
            }));
            std::thread::sleep(Duration::from_millis(3));
        }
        for s in submitters {
            s.join().unwrap();
        }
        done_submitting.store(true, Ordering::SeqCst);
        (reap.join().unwrap(), codes)
    });
    assert!(codes.iter().all(|&c| c == 0), "child codes {codes:?}");
    assert_eq!(events.len(), THREADS * PER, "events lost");
    let mut seen = vec![0u8; THREADS * PER];
    let mut last = [None::<u64>; THREADS];
    for &d in &events {
        seen[d as usize] += 1;
        let t = d as usize / PER;
        assert!(
            last[t].is_none_or(|l| l < d),
            "thread {t}: {d} after {:?}",
            last[t]
        );
        last[t] = Some(d);
    }
    assert!(seen.iter().all(|&n| n == 1), "an event was delivered twice");
    drop(bufs);
    Passed
}

// ---------------------------------------------------------------------------------------------
// Grandchildren, and children with contexts of their own

/// P has events in its ring; child C makes its own context X with events, then forks G.
/// G must get EINVAL on both P's and X's context and take nothing; C must get all of X's;
/// G's own context works; P gets all of its own.
fn grandchildren_and_own_contexts() -> Outcome {
    let mut p = need_aio!(16);
    let f = file_with("grand", 256, 9);
    let mut bufs = [[0u8; 64]; 4];
    let reqs = four_reads(&p, &f, &mut bufs);
    let iocb: *const linux_aio::raw::iocb = reqs[0].iocb();
    let p_ref = &mut p;
    let code = in_child(Spawn::Fork, || {
        let mut x = match Context::new(8) {
            Ok(x) => x,
            Err(_) => return 20,
        };
        let mut xb = [[0u8; 64]; 4];
        let xreqs = four_reads(&x, f_ref(), &mut xb);
        let xiocb: *const linux_aio::raw::iocb = xreqs[0].iocb();
        let x_ref = &mut x;
        let p2 = &mut *p_ref;
        let g = in_child(Spawn::Fork, || {
            let a = child_checks(p2, iocb);
            if a != 0 {
                return 30 + a;
            }
            let b = child_checks(x_ref, xiocb);
            if b != 0 {
                return 40 + b;
            }
            match Context::new(4) {
                Ok(mut own) => {
                    let mut ev = [Event::default(); 2];
                    if own.try_wait(&mut ev) != Ok(0) {
                        return 50;
                    }
                    0
                }
                Err(_) => 51,
            }
        });
        if g != 0 {
            return g;
        }
        // C still gets all of X's events, and still refuses P's.
        let c = child_checks(p_ref, iocb);
        if c != 0 {
            return 60 + c;
        }
        let mut ev = [Event::default(); 8];
        let mut n = 0;
        while n < 4 {
            match x.wait(&mut ev[n..], 1, Some(Duration::from_secs(5))) {
                Ok(0) | Err(_) => return 70,
                Ok(k) => n += k,
            }
        }
        for (i, e) in ev[..4].iter().enumerate() {
            if e.user_data() != i as u64 + 1 || e.result() != Ok(64) {
                return 71;
            }
        }
        drop(xreqs);
        0
    });
    assert_eq!(code, 0, "check {code} failed in child or grandchild");
    expect_four(&collect(&mut p, 4));
    drop(reqs);
    Passed
}

// `four_reads` in the child needs a file; a fresh one per process would allocate, so use a
// process-wide one made before forking.
static F: std::sync::OnceLock<Scratch> = std::sync::OnceLock::new();
fn f_ref() -> &'static Scratch {
    F.get_or_init(|| {
        // A static is never dropped: no name left behind.
        let f = file_with("shared", 256, 11);
        f.unlink_now();
        f
    })
}

/// Fork inside a scope on context A; the child makes its own context B and a scope on it, and
/// from inside that scope uses both: the inherited scope refuses everything (EINVAL), its
/// tickets are refused by the child's scope, the child's scope works, the parent loses nothing.
fn child_uses_own_and_inherited_scope() -> Outcome {
    let mut a = need_aio!(16);
    let _ = f_ref();
    let f = file_with("own-and-inherited", 256, 13);
    let efd = eventfd();
    let mut buf = [0u8; 64];
    let out = a.scope::<4, _>(|s| {
        let read = s
            .submit(Request::read(f.file.as_fd(), &mut buf, 0).user_data(1))
            .unwrap();
        let poll = s
            .submit(Request::poll(efd.as_fd(), PollFlags::IN).user_data(2))
            .unwrap();
        // SAFETY: the child returns from this closure and _exits right after the scope.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = (|| {
                let mut b = match Context::new(8) {
                    Ok(b) => b,
                    Err(_) => return 1,
                };
                let mut mine = [0u8; 32];
                let efd2 = eventfd();
                b.scope::<4, _>(|s2| {
                    let t2 =
                        match s2.submit(Request::read(f.file.as_fd(), &mut mine, 0).user_data(9)) {
                            Ok(t) => t,
                            Err(_) => return 2,
                        };
                    let p2 = match s2.submit(Request::poll(efd2.as_fd(), PollFlags::IN)) {
                        Ok(t) => t,
                        Err(_) => return 3,
                    };
                    if s2.cancel(poll) != Err(Errno::INVAL) || s2.cancel(read) != Err(Errno::INVAL)
                    {
                        return 4; // the inherited scope's tickets
                    }
                    if s.cancel(p2) != Err(Errno::INVAL) || s.cancel(poll) != Err(Errno::INVAL) {
                        return 5;
                    }
                    if s.wait(0, Some(Duration::ZERO)).err() != Some(Errno::INVAL) {
                        return 6;
                    }
                    if t2 == read || p2 == poll {
                        return 7;
                    }
                    if !matches!(
                        s2.cancel(p2),
                        Ok(ScopedCancel::InProgress | ScopedCancel::Canceled)
                    ) {
                        return 8;
                    }
                    let mut seen = 0;
                    while s2.in_flight() > 0 {
                        match s2.wait(1, Some(Duration::from_secs(5))) {
                            Ok(c) => seen += c.count(),
                            Err(_) => return 9,
                        }
                    }
                    if seen != 2 {
                        return 10;
                    }
                    // The inherited scope still refuses, after the child's scope reaped.
                    if s.submit(Request::poll(efd.as_fd(), PollFlags::IN))
                        .map_err(|r| r.error)
                        .err()
                        != Some(Errno::INVAL)
                    {
                        return 11;
                    }
                    0
                })
            })();
            return Err(code);
        }
        rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
        let mut done = Vec::new();
        while s.in_flight() > 0 {
            done.extend(
                s.wait(1, Some(Duration::from_secs(5)))
                    .unwrap()
                    .map(|c| c.event.user_data()),
            );
        }
        done.sort();
        Ok((pid, done))
    });
    let (pid, done) = match out {
        Ok(x) => x,
        // SAFETY: the child, past its copy of the scope.
        Err(code) => unsafe { libc::_exit(code) },
    };
    assert_eq!(done, vec![1, 2], "the parent lost completions");
    assert_eq!(&buf[..], &pattern(256, 13)[..64]);
    let code = wait_child(pid);
    assert_eq!(code, 0, "check {code} failed in the child");
    Passed
}

/// A value whose Drop forks while the scope's closure unwinds from a panic (so before the
/// scope's drain). The child goes on unwinding, through its copy of the drain, and must end
/// promptly; the parent's drain must reap everything, and the buffer hold the data.
fn fork_from_drop_while_unwinding() -> Outcome {
    let mut ctx = need_aio!(16);
    let f = file_with("drop-fork", 256, 15);
    let efd = eventfd();
    let mut buf = [0u8; 64];
    static CHILD: AtomicUsize = AtomicUsize::new(0);
    struct ForkOnDrop;
    impl Drop for ForkOnDrop {
        fn drop(&mut self) {
            // SAFETY: the child only unwinds through the crate's drain and then _exits.
            let pid = unsafe { libc::fork() };
            CHILD.store(
                if pid == 0 { usize::MAX } else { pid as usize },
                Ordering::SeqCst,
            );
        }
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ctx.scope::<4, _>(|s| {
            s.submit(Request::read(f.file.as_fd(), &mut buf, 0))
                .unwrap();
            s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).unwrap();
            let _guard = ForkOnDrop;
            panic!("boom");
        })
    }));
    assert!(r.is_err());
    let who = CHILD.load(Ordering::SeqCst);
    if who == usize::MAX {
        // The child: its drain returned (no hang). Its inherited context still refuses.
        let mut ev = [Event::default(); 4];
        let code = if ctx.try_wait(&mut ev) == Err(Errno::INVAL) {
            0
        } else {
            1
        };
        // SAFETY: the child ends here.
        unsafe { libc::_exit(code) };
    }
    let code = wait_child(who as libc::pid_t);
    assert_eq!(code, 0, "child check failed");
    assert_eq!(&buf[..], &pattern(256, 15)[..64], "the parent's buffer");
    let mut ev = [Event::default(); 4];
    assert_eq!(
        ctx.wait(&mut ev, 0, Some(Duration::from_millis(30))),
        Ok(0),
        "stray events"
    );
    Passed
}

/// A Notify::Callback that forks (once). The child continues inside the layer; it must end
/// promptly; the parent must complete every request.
fn fork_inside_posix_callback() -> Outcome {
    let mut ctx = need_aio!(16);
    let f = file_with("cb-fork", 256, 17);
    let (r, w) = rustix::pipe::pipe().unwrap();
    static FORKED: AtomicUsize = AtomicUsize::new(0);
    FORKED.store(0, Ordering::SeqCst);
    let callback = |_id: posix::Id| {
        if FORKED.load(Ordering::SeqCst) == 0 {
            // SAFETY: the child finishes the layer call, then the test's child branch _exits.
            let pid = unsafe { libc::fork() };
            FORKED.store(
                if pid == 0 { usize::MAX } else { pid as usize },
                Ordering::SeqCst,
            );
        }
    };
    let mut a = [0u8; 64];
    let mut b = [0u8; 8];
    let out = posix::with::<4, _>(Some(&mut ctx), |aio| {
        let pipe_read = aio.aio_read(Aiocb::read(r.as_fd(), &mut b, 0)).unwrap();
        let file_read = aio
            .aio_read(Aiocb::read(f.file.as_fd(), &mut a, 0).notify(Notify::Callback(&callback)))
            .unwrap();
        // The file read completes inside io_submit; the next layer call delivers it.
        let e = aio.aio_error(file_read);
        if FORKED.load(Ordering::SeqCst) == usize::MAX {
            // Child: everything from now on must be EINVAL.
            let checks = [
                aio.aio_error(pipe_read) == Err(Errno::INVAL),
                aio.aio_return(file_read).err() == Some(Errno::INVAL),
                aio.progress() == Err(Errno::INVAL),
                aio.aio_suspend(&[pipe_read], Some(Duration::from_millis(20))) == Err(Errno::INVAL),
            ];
            return Err(checks.iter().position(|c| !c).map_or(0, |i| i as i32 + 1));
        }
        assert_eq!(e, Ok(()));
        rustix::io::write(&w, b"hello").unwrap();
        aio.aio_suspend(&[pipe_read], Some(Duration::from_secs(5)))
            .unwrap();
        Ok((
            aio.aio_return(file_read).unwrap().result,
            aio.aio_return(pipe_read).unwrap().result,
        ))
    })
    .unwrap();
    let (fr, pr) = match out {
        Ok(x) => x,
        // SAFETY: the child, past its copy of the layer.
        Err(code) => unsafe { libc::_exit(code) },
    };
    assert_eq!((fr, pr), (Ok(64), Ok(5)));
    let code = wait_child(FORKED.load(Ordering::SeqCst) as libc::pid_t);
    assert_eq!(code, 0, "child check {code} failed");
    Passed
}

/// The main thread waits in aio_suspend for a pipe read; another thread forks repeatedly
/// (children exit at once after poking nothing), then writes. aio_suspend must return with the
/// data.
fn fork_while_other_thread_in_aio_suspend() -> Outcome {
    let mut ctx = need_aio!(16);
    let (r, w) = rustix::pipe::pipe().unwrap();
    let mut b = [0u8; 8];
    let res = posix::with::<2, _>(Some(&mut ctx), |aio| {
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut b, 0)).unwrap();
        let t = std::thread::spawn({
            let w = w.try_clone().unwrap();
            move || {
                let mut codes = 0;
                for _ in 0..10 {
                    codes += in_child(Spawn::Fork, || 0);
                    std::thread::sleep(Duration::from_millis(5));
                }
                rustix::io::write(&w, b"x").unwrap();
                codes
            }
        });
        let s = aio.aio_suspend(&[id], Some(Duration::from_secs(10)));
        let codes = t.join().unwrap();
        (s, codes, aio.aio_return(id).map(|r| r.result))
    })
    .unwrap();
    assert_eq!(res.0, Ok(()));
    assert_eq!(res.1, 0);
    assert_eq!(res.2, Ok(Ok(1)));
    Passed
}

// ---------------------------------------------------------------------------------------------
// The getpid fallback (no MADV_WIPEONFORK), forced by seccomp in a fresh process.

/// Makes madvise(.., MADV_WIPEONFORK) fail with EINVAL in this process and its children, as a
/// kernel before 4.14 does.
fn refuse_wipeonfork() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        const MADV_WIPEONFORK: u32 = 18;
        let ld = |k: u32| libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k,
        }; // BPF_LD|W|ABS
        let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: 0x15,
            jt,
            jf,
            k,
        };
        let ret = |k: u32| libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k,
        };
        let mut prog = [
            ld(4),                        // arch
            jeq(AUDIT_ARCH_X86_64, 0, 5), // else allow
            ld(0),                        // nr
            jeq(libc::SYS_madvise as u32, 0, 3),
            ld(32), // args[2], low word
            jeq(MADV_WIPEONFORK, 0, 1),
            ret(0x0005_0000 | libc::EINVAL as u32), // SECCOMP_RET_ERRNO
            ret(0x7fff_0000),                       // SECCOMP_RET_ALLOW
        ];
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_mut_ptr(),
        };
        // SAFETY: plain prctl calls with a valid filter program.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::prctl(
                    libc::PR_SET_SECCOMP,
                    2, /* SECCOMP_MODE_FILTER */
                    &fprog as *const _,
                ) == 0
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn run_self(mode: &str) -> (i32, String) {
    let mut child = reexec::self_command()
        .env("ATK_CHILD", mode)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            use std::io::Read;
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            return (status.code().unwrap_or(-1), out);
        }
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("ATK_CHILD={mode} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The fallback still works at all: events, scopes, fork refusal.
fn nopage_fallback_basic() -> Outcome {
    if !cfg!(target_arch = "x86_64") {
        return skipped("the seccomp filter is written for x86_64");
    }
    let (code, out) = run_self("nopage-basic");
    print!("{out}");
    match code {
        0 => Passed,
        77 => skipped(out),
        c => panic!("nopage-basic: check {c} failed"),
    }
}

fn nopage_basic_child() -> i32 {
    if !refuse_wipeonfork() {
        println!("cannot install the seccomp filter");
        return 77;
    }
    let mut ctx = match Context::new(16) {
        Ok(c) => c,
        Err(e) => {
            println!("kernel AIO unavailable: io_setup gives {e}");
            return 77;
        }
    };
    if ctx.user_space_reaping() {
        println!("MADV_WIPEONFORK refusal did not take effect");
        return 1;
    }
    let f = file_with("nopage", 256, 19);
    let mut bufs = [[0u8; 64]; 4];
    let reqs = four_reads(&ctx, &f, &mut bufs);
    let iocb: *const linux_aio::raw::iocb = reqs[0].iocb();
    let ctx_ref = &mut ctx;
    let code = in_child(Spawn::Fork, move || child_checks(ctx_ref, iocb));
    if code != 0 {
        return 10 + code;
    }
    let got = collect(&mut ctx, 4);
    if got != (1..=4).map(|i| (i, Ok(64))).collect::<Vec<_>>() {
        return 3;
    }
    drop(reqs);
    let efd = eventfd();
    let mut buf = [0u8; 64];
    let r = ctx.scope::<4, _>(|s| {
        let t = s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).unwrap();
        s.submit(Request::read(f.file.as_fd(), &mut buf, 0))
            .unwrap();
        let c = in_child(Spawn::Fork, || {
            if s.cancel(t) != Err(Errno::INVAL) {
                return 1;
            }
            if s.wait(0, Some(Duration::ZERO)).err() != Some(Errno::INVAL) {
                return 2;
            }
            0
        });
        if c != 0 {
            return 20 + c;
        }
        if !matches!(
            s.cancel(t),
            Ok(ScopedCancel::InProgress | ScopedCancel::Canceled)
        ) {
            return 30;
        }
        let mut n = 0;
        while s.in_flight() > 0 {
            n += s
                .wait(1, Some(Duration::from_secs(5)))
                .map(|c| c.count())
                .unwrap_or(100);
        }
        if n != 2 {
            31
        } else {
            0
        }
    });
    if r != 0 {
        return r;
    }
    0
}

/// With the getpid fallback, "is this a forked child" is `getpid() != creator's pid`. A child
/// in a new PID namespace whose creator was PID 1 of its own namespace is PID 1 too: it is
/// taken for the owner. Claim attacked: every call on an inherited Context/Scope/POSIX layer
/// gives the child EINVAL.
fn nopage_fallback_pid_namespace() -> Outcome {
    if !cfg!(target_arch = "x86_64") {
        return skipped("the seccomp filter is written for x86_64");
    }
    let (code, out) = run_self("nopage-pidns");
    print!("{out}");
    match code {
        0 => Passed,
        77 => skipped(out),
        c => panic!("nopage-pidns: child answered wrongly (code {c}); see the lines above"),
    }
}

fn nopage_pidns_child() -> i32 {
    if !refuse_wipeonfork() {
        println!("cannot install the seccomp filter");
        return 77;
    }
    // P1: PID 1 of a new namespace (as a process in a container is).
    let code = in_child(Spawn::ClonePidNs, || {
        // SAFETY: getpid.
        if unsafe { libc::getpid() } != 1 {
            return 90;
        }
        let mut ctx = match Context::new(16) {
            Ok(c) => c,
            Err(Errno::NOSYS) => {
                println!("kernel AIO unavailable: io_setup gives ENOSYS");
                return 77;
            }
            Err(_) => return 91,
        };
        assert!(!ctx.user_space_reaping(), "the fallback is in force");
        let efd = eventfd();
        let mut poll = Request::poll(efd.as_fd(), PollFlags::IN);
        // SAFETY: the eventfd outlives the context's io_destroy (both in this closure, ctx dropped first).
        if unsafe { ctx.submit(&mut [&mut poll]) } != Ok(1) {
            return 92;
        }
        let poll_iocb: *const linux_aio::raw::iocb = poll.iocb();
        let ctx_ref = &mut ctx;
        // C: PID 1 of another namespace: not the creator, but getpid() says 1 too.
        let c = in_child(Spawn::ClonePidNs, || {
            let mut bad = 0;
            let mut ev = [Event::default(); 4];
            // SAFETY: getpid.
            let pid = unsafe { libc::getpid() };
            let cancel = ctx_ref.cancel(poll_iocb);
            if cancel != Err(Errno::INVAL) {
                println!("  child (pid {pid}, not the creator): Context::cancel gave {cancel:?}, want Err(EINVAL)");
                bad |= 1;
            }
            let ready = ctx_ref.ready();
            if ready.is_some() {
                println!("  child (pid {pid}): Context::ready gave {ready:?}, want None");
                bad |= 2;
            }
            let w = ctx_ref.try_wait(&mut ev);
            if w != Err(Errno::INVAL) {
                println!("  child (pid {pid}): try_wait gave {w:?}, want Err(EINVAL)");
                bad |= 4;
            }
            bad
        });
        let s = ctx.scope::<2, _>(|s| {
            let t = s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).unwrap();
            let c = in_child(Spawn::ClonePidNs, || {
                let mut bad = 0;
                let r = s.cancel(t);
                if r != Err(Errno::INVAL) {
                    println!("  child (pid 1): Scope::cancel of the parent's poll gave {r:?}, want Err(EINVAL)");
                    bad |= 8;
                }
                bad
            });
            let _ = s.cancel(t);
            c
        });
        let mut pbuf = [0u8; 4];
        let (pr, pw) = rustix::pipe::pipe().unwrap();
        let layer = posix::with::<2, _>(Some(&mut ctx), |aio| {
            let id = aio.aio_read(Aiocb::read(pr.as_fd(), &mut pbuf, 0)).unwrap();
            // The pipe becomes readable: the layer's readiness POLL completes and the kernel
            // signals the layer's eventfd, which an event loop would be polling.
            rustix::io::write(&pw, b"z").unwrap();
            let efd = aio.eventfd().unwrap();
            let readable = |ms: i32| {
                let mut p = [rustix::event::PollFd::new(&efd, PollFlags::IN)];
                let t = rustix::time::Timespec { tv_sec: ms as i64 / 1000, tv_nsec: (ms as i64 % 1000) * 1_000_000 };
                rustix::event::poll(&mut p, Some(&t)) == Ok(1)
            };
            if !readable(1000) {
                return 96;
            }
            let c = in_child(Spawn::ClonePidNs, || {
                let mut bad = 0;
                let e = aio.aio_error(id);
                if e != Err(Errno::INVAL) {
                    println!("  child (pid 1): aio_error gave {e:?}, want Err(EINVAL)");
                    bad |= 16;
                }
                let p = aio.progress();
                if p != Err(Errno::INVAL) {
                    println!("  child (pid 1): progress gave {p:?}, want Err(EINVAL)");
                    bad |= 32;
                }
                bad
            });
            // The parent's event loop: the eventfd must still say "call progress".
            let mut c = c;
            if !readable(500) {
                println!("  parent: the layer's eventfd notification was consumed by the child (event loop would sleep)");
                c |= 64;
            }
            let _ = aio.aio_suspend(&[id], Some(Duration::from_secs(5)));
            c
        })
        .unwrap();
        drop(ctx);
        #[allow(dropping_copy_types, dropping_references, clippy::drop_non_drop)]
        drop(poll);
        c | s | layer
    });
    if code != 0 && code != 77 {
        println!("  (fallback path, no MADV_WIPEONFORK; each child is PID 1 of a nested PID namespace, as its creator was)");
    }
    code
}

// ---------------------------------------------------------------------------------------------
// Tickets, ids and completions across scopes

/// A ticket of the same scope and slot, one generation old, must not cancel the slot's new
/// request.
fn stale_generation_ticket() -> Outcome {
    let mut ctx = need_aio!(8);
    let idle = eventfd();
    ctx.scope::<1, _>(|s| {
        let old = s
            .submit(Request::poll(idle.as_fd(), PollFlags::IN))
            .unwrap();
        s.cancel(old).unwrap();
        let c = s
            .wait(1, Some(Duration::from_secs(5)))
            .unwrap()
            .next()
            .unwrap();
        assert_eq!(c.ticket, old);
        let new = s
            .submit(Request::poll(idle.as_fd(), PollFlags::IN))
            .unwrap();
        assert_ne!(new, old);
        assert_eq!(s.cancel(old), Ok(ScopedCancel::AlreadyComplete));
        assert_eq!(
            s.wait(0, Some(Duration::from_millis(20))).unwrap().count(),
            0,
            "old ticket cancelled new request"
        );
        assert_eq!(s.in_flight(), 1);
    });
    Passed
}

/// Nested scopes on two contexts: tickets and completions never cross.
fn tickets_across_nested_scopes() -> Outcome {
    let mut a = need_aio!(8);
    let mut b = Context::new(8).unwrap();
    let idle = eventfd();
    let f = file_with("nested", 256, 21);
    let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
    a.scope::<2, _>(|sa| {
        let ta = sa
            .submit(Request::poll(idle.as_fd(), PollFlags::IN))
            .unwrap();
        let ra = sa
            .submit(Request::read(f.file.as_fd(), &mut x, 0).user_data(5))
            .unwrap();
        b.scope::<2, _>(|sb| {
            let tb = sb
                .submit(Request::poll(idle.as_fd(), PollFlags::IN))
                .unwrap();
            let rb = sb
                .submit(Request::read(f.file.as_fd(), &mut y, 0).user_data(5))
                .unwrap();
            assert_ne!(ta, tb);
            assert_ne!(ra, rb);
            assert_eq!(sb.cancel(ta), Err(Errno::INVAL));
            assert_eq!(sa.cancel(tb), Err(Errno::INVAL));
            let cb: Vec<_> = sb.wait(1, Some(Duration::from_secs(5))).unwrap().collect();
            assert_eq!(cb.len(), 1);
            assert_eq!(cb[0].ticket, rb);
            assert_ne!(cb[0].ticket, ra);
            assert_eq!(sa.cancel(cb[0].ticket), Err(Errno::INVAL));
            assert_eq!(sb.in_flight(), 1);
        });
        assert_eq!(sa.in_flight(), 2);
        let ca: Vec<_> = sa.wait(1, Some(Duration::from_secs(5))).unwrap().collect();
        assert_eq!(ca.len(), 1);
        assert_eq!(ca[0].ticket, ra);
    });
    Passed
}

/// Ids of a synchronous (ctx None) layer and an asynchronous one never cross; neither do ids
/// of two nested asynchronous layers.
fn ids_across_layers() -> Outcome {
    let mut a = need_aio!(8);
    let f = file_with("ids", 256, 23);
    let (mut x, mut y, mut z) = ([0u8; 8], [0u8; 8], [0u8; 8]);
    posix::with::<2, _>(Some(&mut a), |aio| {
        let ia = aio
            .aio_read(Aiocb::read(f.file.as_fd(), &mut x, 0))
            .unwrap();
        posix::with::<2, _>(None, |sync| {
            let is = sync
                .aio_read(Aiocb::read(f.file.as_fd(), &mut y, 0))
                .unwrap();
            assert_ne!(ia, is);
            assert_eq!(sync.aio_error(ia), Err(Errno::INVAL));
            assert_eq!(aio.aio_error(is), Err(Errno::INVAL));
            assert_eq!(sync.aio_return(ia).err(), Some(Errno::INVAL));
            assert_eq!(aio.aio_cancel(f.file.as_fd(), Some(is)), Err(Errno::INVAL));
            assert_eq!(sync.aio_return(is).unwrap().result, Ok(8));
        })
        .unwrap();
        let mut b = Context::new(8).unwrap();
        posix::with::<2, _>(Some(&mut b), |inner| {
            let ib = inner
                .aio_read(Aiocb::read(f.file.as_fd(), &mut z, 8))
                .unwrap();
            assert_ne!(ia, ib);
            assert_eq!(inner.aio_error(ia), Err(Errno::INVAL));
            assert_eq!(
                inner.aio_suspend(&[ia], Some(Duration::ZERO)),
                Ok(()),
                "documented: a foreign id ends the wait"
            );
            assert_eq!(aio.aio_return(ib).err(), Some(Errno::INVAL));
            inner
                .aio_suspend(&[ib], Some(Duration::from_secs(5)))
                .unwrap();
            assert_eq!(inner.aio_return(ib).unwrap().result, Ok(8));
        })
        .unwrap();
        aio.aio_suspend(&[ia], Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(aio.aio_return(ia).unwrap().result, Ok(8));
    })
    .unwrap();
    Passed
}

/// A `Completions` iterator leaked with mem::forget: the scope still drains, the next scope on
/// the context starts clean, no stray event appears.
fn forgotten_completions_iterator() -> Outcome {
    let mut ctx = need_aio!(8);
    let f = file_with("forget", 256, 25);
    let efd = eventfd();
    let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
    ctx.scope::<4, _>(|s| {
        s.submit(Request::read(f.file.as_fd(), &mut x, 0)).unwrap();
        s.submit(Request::read(f.file.as_fd(), &mut y, 16)).unwrap();
        s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).unwrap();
        let it = s.wait(2, Some(Duration::from_secs(5))).unwrap();
        #[allow(forgetting_copy_types, clippy::forget_non_drop)]
        std::mem::forget(it); // Completions has no Drop today; the test holds if it ever gets one
                              // The done ones are still handed out by the next wait.
        assert_eq!(s.wait(0, Some(Duration::ZERO)).unwrap().count(), 2);
    });
    assert_eq!(&x[..], &pattern(256, 25)[..16]);
    let mut ev = [Event::default(); 4];
    assert_eq!(ctx.wait(&mut ev, 0, Some(Duration::from_millis(20))), Ok(0));
    Passed
}

// ---------------------------------------------------------------------------------------------
// Hostile values

fn hostile_values() -> Outcome {
    let mut ctx = need_aio!(8);
    let f = file_with("hostile", 256, 27);
    let mut ev = [Event::default(); 4];
    // min bigger than the buffer
    assert_eq!(
        ctx.wait(&mut ev, 5, Some(Duration::ZERO)),
        Err(Errno::INVAL)
    );
    assert_eq!(
        ctx.wait(&mut ev, usize::MAX, Some(Duration::MAX)),
        Err(Errno::INVAL)
    );
    // Duration::MAX with an event that is already there returns it.
    let mut b = [0u8; 8];
    let mut r = Request::read(f.file.as_fd(), &mut b, 0).user_data(1);
    // SAFETY: reaped below.
    assert_eq!(unsafe { ctx.submit(&mut [&mut r]) }, Ok(1));
    ctx.set_user_space_reaping(false);
    assert_eq!(ctx.wait(&mut ev, 1, Some(Duration::MAX)), Ok(1));
    ctx.set_user_space_reaping(true);
    // Duration::MAX in a scope, min larger than anything: EINVAL, no wait.
    let not_efd = f.file.try_clone().unwrap();
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let closed: OwnedFd = rustix::pipe::pipe().unwrap().0;
    let closed_raw = closed.as_raw_fd();
    drop(closed);
    let mut c = [0u8; 8];
    ctx.scope::<2, _>(|s| {
        let t0 = Instant::now();
        assert_eq!(s.wait(1, Some(Duration::MAX)).err(), Some(Errno::INVAL));
        assert_eq!(s.wait(usize::MAX, None).err(), Some(Errno::INVAL));
        assert!(t0.elapsed() < Duration::from_secs(1));
        // An "eventfd" that is a regular file.
        let rej = s
            .submit(Request::read(f.file.as_fd(), &mut c, 0).eventfd(not_efd.as_fd()))
            .unwrap_err();
        assert_eq!(rej.error, Errno::INVAL);
        let buf = rej.request.into_buffer();
        assert!(matches!(buf, Buffer::Read(_)));
        // An "eventfd" that is a pipe.
        let rej = s
            .submit(Request::poll(rd.as_fd(), PollFlags::IN).eventfd(wr.as_fd()))
            .unwrap_err();
        assert_eq!(rej.error, Errno::INVAL);
        // A closed descriptor.
        // SAFETY: the number is closed: the kernel answers EBADF; nothing else uses it.
        let bad = unsafe { std::os::fd::BorrowedFd::borrow_raw(closed_raw) };
        let rej = s.submit(Request::poll(bad, PollFlags::IN)).unwrap_err();
        assert_eq!(rej.error, Errno::BADF);
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.free_slots(), 2);
    });
    // POSIX: hostile timeouts.
    let (pr, _pw) = rustix::pipe::pipe().unwrap();
    let mut d = [0u8; 4];
    posix::with::<2, _>(Some(&mut ctx), |aio| {
        let id = aio.aio_read(Aiocb::read(pr.as_fd(), &mut d, 0)).unwrap();
        assert_eq!(
            aio.aio_suspend(&[id], Some(Duration::from_millis(30))),
            Err(Errno::AGAIN)
        );
        assert_eq!(aio.aio_suspend(&[], Some(Duration::MAX)), Err(Errno::INVAL));
    })
    .unwrap();
    Passed
}

/// A scope of zero slots.
fn zero_slot_scope() -> Outcome {
    let mut ctx = need_aio!(8);
    let efd = eventfd();
    ctx.scope::<0, _>(|s| {
        assert_eq!(
            s.submit(Request::poll(efd.as_fd(), PollFlags::IN))
                .unwrap_err()
                .error,
            Errno::AGAIN
        );
        assert_eq!(s.submit_prepared(), Ok(0));
        assert_eq!(s.wait(0, None).unwrap().count(), 0);
        assert_eq!(s.wait(1, None).err(), Some(Errno::INVAL));
    });
    let f = file_with("zero", 16, 1);
    let mut b = [0u8; 4];
    posix::with::<0, _>(Some(&mut ctx), |aio| {
        assert_eq!(
            aio.aio_read(Aiocb::read(f.file.as_fd(), &mut b, 0))
                .err()
                .map(|r| r.error),
            Some(Errno::AGAIN)
        );
    })
    .unwrap();
    Passed
}

/// Doc of Scope::cancel: a prepared request that was not submitted leaves the batch
/// (`Canceled`, its completion `ECANCELED`); one that was discarded gives `EINVAL`.
fn discarded_prepared_ticket() -> Outcome {
    let mut ctx = need_aio!(8);
    let efd = eventfd();
    ctx.scope::<2, _>(|s| {
        let t = s
            .prepare(Request::poll(efd.as_fd(), PollFlags::IN))
            .unwrap();
        assert_eq!(s.cancel(t), Ok(ScopedCancel::Canceled));
        assert_eq!((s.prepared(), s.in_flight()), (0, 0));
        assert_eq!(
            s.submit_prepared(),
            Ok(0),
            "the cancelled request left the batch"
        );
        let done: Vec<_> = s.wait(1, None).unwrap().collect();
        assert_eq!(done.len(), 1);
        assert_eq!(
            (done[0].ticket, done[0].event.result()),
            (t, Err(Errno::CANCELED))
        );
        assert_eq!(s.cancel(t), Ok(ScopedCancel::AlreadyComplete));
        let t = s
            .prepare(Request::poll(efd.as_fd(), PollFlags::IN))
            .unwrap();
        s.discard_prepared();
        let after = s.cancel(t);
        // Never submitted, never completed. AlreadyComplete is not true of it.
        assert_eq!(
            after,
            Err(Errno::INVAL),
            "a discarded, never-submitted request's ticket"
        );
    });
    Passed
}

/// Claim: every call on an inherited Context gives the child EINVAL, never success.
fn child_empty_submit_is_einval() -> Outcome {
    let mut ctx = need_aio!(8);
    let ctx_ref = &mut ctx;
    let code = in_child(Spawn::Fork, || {
        // SAFETY: an empty batch.
        let r = unsafe { ctx_ref.submit(&mut []) };
        if r == Ok(0) {
            return 1;
        }
        0
    });
    assert_eq!(
        code, 0,
        "the child's empty submit on the parent's context succeeded (Ok(0))"
    );
    Passed
}

/// Context::user_space_reaping: "True if waits take completions straight from the ring". In a
/// forked child they never do.
fn user_space_reaping_reported_in_child() -> Outcome {
    let mut ctx = need_aio!(8);
    let ctx_ref = &mut ctx;
    let code = in_child(Spawn::Fork, || i32::from(ctx_ref.user_space_reaping()));
    assert_eq!(code, 0, "the child's copy reports user-space reaping on");
    Passed
}

/// Thread A blocks in Scope::wait (a poll); thread B forks ten times, then makes the poll ready.
fn fork_while_other_thread_in_scope_wait() -> Outcome {
    let mut ctx = need_aio!(8);
    let efd = eventfd();
    let go = AtomicBool::new(false);
    let got = std::thread::scope(|ts| {
        let a = ts.spawn(|| {
            ctx.scope::<2, _>(|s| {
                s.submit(Request::poll(efd.as_fd(), PollFlags::IN).user_data(3))
                    .unwrap();
                go.store(true, Ordering::SeqCst);
                s.wait(1, Some(Duration::from_secs(10)))
                    .unwrap()
                    .map(|c| c.event.user_data())
                    .collect::<Vec<_>>()
            })
        });
        while !go.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let mut codes = 0;
        for _ in 0..10 {
            codes += in_child(Spawn::Fork, || 0);
        }
        assert_eq!(codes, 0);
        rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
        a.join().unwrap()
    });
    assert_eq!(got, vec![3]);
    Passed
}

/// Notify::Eventfd is documented as "1 is added to this eventfd". Given a regular file (the
/// kernel refuses that for IOCB_FLAG_RESFD with EINVAL), the layer writes 8 bytes into it.
fn posix_eventfd_notify_on_a_regular_file() -> Outcome {
    let mut ctx = need_aio!(8);
    let data = file_with("notify-data", 64, 29);
    let victim = file_with("notify-victim", 0, 0);
    let mut b = [0u8; 8];
    posix::with::<2, _>(Some(&mut ctx), |aio| {
        let refused = aio.aio_read(
            Aiocb::read(data.file.as_fd(), &mut b, 0).notify(Notify::Eventfd(victim.file.as_fd())),
        );
        assert_eq!(
            refused.err().map(|r| r.error),
            Some(Errno::INVAL),
            "a regular file as the eventfd"
        );
    })
    .unwrap();
    let written = std::fs::read(&victim.path).unwrap();
    assert!(
        written.is_empty(),
        "the layer wrote {written:?} into a regular file passed as the notification eventfd"
    );
    Passed
}
