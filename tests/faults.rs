//! Kernel eras and faults the host kernel never shows, emulated with seccomp
//! (`tests/faults/aiofault.c`, see tests/support/faults.rs): io_cancel before Linux 3.12, no
//! POLL (before 4.19), no io_pgetevents (before 4.18), no MADV_WIPEONFORK (before 4.14), and
//! io_setup, io_submit, io_getevents, io_pgetevents and io_destroy failing with each error
//! their man pages list. Each scenario runs in a child process (this binary again, with
//! `LINUX_AIO_TEST_CHILD=<scenario>` and the emulation preloaded), so the filter never touches
//! the test runner, and every scenario checks that the emulation really fired.
//!
//! Besides the scenarios: the probe (`linux-aio-probe --json`) checked against docs/probe.md, on
//! the real kernel and under each era, and the faults a real kernel gives on demand (a wild iocb
//! pointer in the middle of a batch).

#[path = "support/faults.rs"]
mod faults;
#[path = "support/probe_schema.rs"]
mod probe_schema;
#[path = "support/runner.rs"]
mod runner;
#[path = "support/scratch.rs"]
mod scratch;

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use linux_aio::posix::{self, Aiocb, CancelStatus, ListMode, Listed};
use linux_aio::raw::{self, io_event, iocb};
use linux_aio::{
    Buffer, Cancel, Context, Errno, Event, Request, ScopedCancel, SigSet, SubmitError,
};
use runner::{skipped, Outcome, Passed};
use rustix::event::PollFlags;
use scratch::{eventfd, Scratch};
use serde_json::Value;

/// A scenario: its name (also the test's), what to emulate (`LINUX_AIO_FAULTS`), and the body
/// that runs in the child under it.
type Scenario = (&'static str, &'static str, fn());

/// The descriptor number `hold_fd` scenarios use (the configuration is read before the child
/// opens anything, so the child moves its descriptor there).
const HELD_FD: i32 = 100;

macro_rules! scenarios {
    ($($name:ident: $faults:expr;)*) => {
        const SCENARIOS: &[Scenario] = &[$((stringify!($name), $faults, $name)),*];
        fn scenario_tests() -> Vec<runner::Test> {
            vec![$((stringify!($name), (|| parent(stringify!($name))) as fn() -> Outcome)),*]
        }
    };
}

scenarios! {
    cancel_pre312_unscoped: "cancel=pre3.12";
    cancel_pre312_scoped_poll: "cancel=pre3.12";
    cancel_pre312_scoped_buffer: "cancel=pre3.12,hold_fd=100";
    cancel_pre312_not_canceled_is_eagain: "cancel=pre3.12";
    cancel_pre312_posix: "cancel=pre3.12";
    cancel_pre312_scope_end_with_pending_poll: "cancel=pre3.12";
    cancel_refused: "cancel=EFAULT@0*1";
    era_4_18_poll_refused: "era=4.18";
    era_4_17_safe_api: "era=4.17";
    era_4_17_posix_streams: "era=4.17";
    era_4_13_no_wipeonfork: "era=4.13";
    era_4_13_fork_scope_and_posix: "era=4.13";
    submit_midbatch_eagain: "submit=EAGAIN#777*0";
    submit_midbatch_enomem: "submit=ENOMEM#777*0";
    submit_midbatch_efault: "submit=EFAULT#777*0";
    submit_midbatch_ebadf: "submit=EBADF#777*0";
    submit_scope_eagain: "submit=EAGAIN#777*0";
    submit_scope_enomem: "submit=ENOMEM#777*0";
    submit_scope_efault: "submit=EFAULT#777*0";
    submit_scope_ebadf: "submit=EBADF#777*0";
    submit_posix_eagain_is_retried: "submit=EAGAIN#777*1";
    submit_posix_enomem: "submit=ENOMEM#777*0";
    submit_posix_efault: "submit=EFAULT#777*0";
    submit_posix_ebadf: "submit=EBADF#777*0";
    submit_posix_eagain_for_ever: "submit=EAGAIN#777*0";
    getevents_eintr: "getevents=EINTR@0*2,pgetevents=EINTR@0";
    getevents_eintr_scoped_and_drain: "getevents=EINTR@0*4";
    getevents_eintr_posix: "getevents=EINTR@0*2";
    getevents_efault: "getevents=EFAULT@0,pgetevents=EFAULT@0";
    getevents_efault_scope_last_resort: "getevents=EFAULT*0";
    getevents_efault_posix_last_resort: "getevents=EFAULT*0";
    last_resort_when_destroy_fails_too: "getevents=EFAULT*0,destroy=EINVAL*0";
    setup_eagain: "setup=EAGAIN*2";
    setup_enomem: "setup=ENOMEM*2";
    aio_max_nr_reached: "aio_max_nr=256";
    destroy_fails: "destroy=EINVAL*2";
    destroy_fails_efault: "destroy=EFAULT*2";
}

fn main() {
    if let Ok(name) = std::env::var("LINUX_AIO_TEST_CHILD") {
        child(&name);
    }
    let mut tests = scenario_tests();
    tests.extend([
        ("probe_schema", probe_schema as fn() -> Outcome),
        ("probe_era_4_17", probe_era_4_17),
        ("probe_era_4_13", probe_era_4_13),
        ("probe_cancel_pre312", probe_cancel_pre312),
        ("probe_aio_max_nr_reached", probe_aio_max_nr_reached),
        ("real_submit_efault_midbatch", real_submit_efault_midbatch),
        (
            "real_submit_rt_priority_without_capability_is_eperm",
            real_submit_rt_priority_without_capability_is_eperm,
        ),
        ("emulation_can_fail_a_test", emulation_can_fail_a_test),
    ]);
    runner::run("faults", &tests)
}

// ---------------------------------------------------------------------------------------------
// Parent and child

/// Why nothing here can run, if so: no kernel AIO, or no emulation.
fn unavailable() -> Option<String> {
    match Context::new(1) {
        Err(Errno::NOSYS) => {
            return Some(format!(
                "kernel AIO unavailable: io_setup gives ENOSYS (arch module {})",
                raw::ARCH
            ))
        }
        Err(e) => panic!("io_setup: {e}"),
        Ok(_) => {}
    }
    faults::library(faults::SOURCE).err()
}

/// Runs scenario `name` in a child under its emulation and judges the child's report.
fn parent(name: &str) -> Outcome {
    if let Some(why) = unavailable() {
        return skipped(why);
    }
    let lib = faults::library(faults::SOURCE).unwrap();
    let (_, config, _) = SCENARIOS.iter().find(|s| s.0 == name).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("LINUX_AIO_TEST_CHILD", name);
    faults::under(&mut cmd, &lib, config);
    judge(name, faults::run(&mut cmd, Duration::from_secs(60)))
}

fn judge(name: &str, out: std::process::Output) -> Outcome {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stdout.lines() {
        println!("    {line}");
    }
    if let Some(why) = stdout.lines().find_map(|l| l.strip_prefix("SKIP: ")) {
        return skipped(why.to_string());
    }
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "child: ok"),
        "{name}: child {:?}\n{stderr}",
        out.status
    );
    Passed
}

/// The child: runs the scenario under the emulation, which must be installed and must have
/// fired, then exits (a panic is the failure, with its message on stderr).
fn child(name: &str) -> ! {
    let (_, _, body) = SCENARIOS
        .iter()
        .find(|s| s.0 == name)
        .unwrap_or_else(|| panic!("no scenario {name}"));
    if let Err(why) = faults::active() {
        println!("SKIP: {why}");
        std::process::exit(0);
    }
    body();
    let fired = faults::fired();
    assert!(fired > 0, "the emulation never fired");
    println!("emulated answers: {fired}");
    println!("child: ok");
    std::process::exit(0)
}

// ---------------------------------------------------------------------------------------------
// Helpers

const SECOND: Option<Duration> = Some(Duration::from_secs(1));
const BRIEFLY: Option<Duration> = Some(Duration::from_millis(50));

fn readable_eventfd() -> OwnedFd {
    let efd = eventfd();
    rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
    efd
}

fn address(req: &Request<'_>) -> *const iocb {
    req.iocb()
}

/// A pipe whose read end is descriptor `at`, and its write end.
fn pipe_at(at: i32) -> (OwnedFd, OwnedFd) {
    let (r, w) = rustix::pipe::pipe().unwrap();
    // SAFETY: dup2 onto a descriptor number this process does not otherwise use; the new
    // descriptor is owned by the OwnedFd made from it, and the old one is closed by `r`.
    let fd = unsafe { libc::dup2(r.as_raw_fd(), at) };
    assert_eq!(fd, at, "dup2");
    // SAFETY: `at` is the descriptor dup2 just opened; nothing else owns it.
    (unsafe { OwnedFd::from_raw_fd(at) }, w)
}

fn errno_of(config_key: &str) -> Errno {
    let cfg = std::env::var("LINUX_AIO_FAULTS").unwrap();
    let rule = cfg
        .split(',')
        .find_map(|d| d.strip_prefix(config_key))
        .unwrap();
    match rule.split(['#', '@', '*']).next().unwrap() {
        "EAGAIN" => Errno::AGAIN,
        "ENOMEM" => Errno::NOMEM,
        "EFAULT" => Errno::FAULT,
        "EBADF" => Errno::BADF,
        "EINTR" => Errno::INTR,
        "EINVAL" => Errno::INVAL,
        other => panic!("errno {other}"),
    }
}

/// Collects a wait's completions as (user data, result, buffer length).
fn collect(done: linux_aio::Completions<'_, '_, '_, 8>) -> Vec<(u64, Result<usize, Errno>, usize)> {
    let mut v: Vec<_> = done
        .map(|c| (c.event.user_data(), c.event.result(), c.buffer.len()))
        .collect();
    v.sort_by_key(|c| c.0);
    v
}

// ---------------------------------------------------------------------------------------------
// io_cancel before Linux 3.12

fn cancel_pre312_unscoped() {
    for user_space in [true, false] {
        let mut ctx = Context::new(8).unwrap();
        ctx.set_user_space_reaping(user_space);
        let efd = eventfd(); // never readable: the poll waits until cancelled
        let mut req = Request::poll(efd.as_fd(), PollFlags::IN).user_data(7);
        // SAFETY: a poll names no memory; `efd` outlives the request (cancelled below).
        assert_eq!(unsafe { ctx.submit(&mut [&mut req]) }, Ok(1));
        let event = match ctx.cancel(address(&req)) {
            Ok(Cancel::Canceled(event)) => event,
            other => panic!("cancel gave {other:?}, not Canceled"),
        };
        assert_eq!(event.user_data(), 7);
        assert_eq!(event.iocb_address(), address(&req) as u64);
        assert_eq!(event.result(), Ok(0));
        // Nothing in the ring, and nothing later: the event came back exactly once.
        assert_eq!(ctx.ready(), Some(0));
        let mut events = [Event::default(); 4];
        assert_eq!(ctx.wait(&mut events, 0, BRIEFLY), Ok(0));
        assert_eq!(
            ctx.wait(&mut events, 1, BRIEFLY),
            Ok(0),
            "a duplicate event"
        );
        // A second cancel: the request is gone ("not cancelled", EAGAIN on those kernels).
        assert_eq!(ctx.cancel(address(&req)), Ok(Cancel::NotCanceled));
        ctx.destroy().unwrap();
    }
}

fn cancel_pre312_scoped_poll() {
    let mut ctx = Context::new(8).unwrap();
    let efd = eventfd();
    let ready = readable_eventfd();
    ctx.scope::<8, _>(|s| {
        let t = s
            .submit(Request::poll(efd.as_fd(), PollFlags::IN).user_data(1))
            .unwrap();
        let other = s
            .submit(Request::poll(ready.as_fd(), PollFlags::IN).user_data(2))
            .unwrap();
        std::thread::sleep(Duration::from_millis(10)); // the ready poll completes meanwhile
        assert_eq!(s.cancel(t), Ok(ScopedCancel::Canceled));
        assert_eq!(
            s.in_flight(),
            1,
            "the cancelled poll is no longer in flight"
        );
        // The cancelled request is handed out without waiting, once; the other one as usual.
        let mut got: Vec<_> = s
            .wait(2, SECOND)
            .unwrap()
            .map(|c| (c.ticket, c.event.user_data(), c.event.result().is_ok()))
            .collect();
        got.sort_by_key(|g| g.1);
        assert_eq!(got, vec![(t, 1, true), (other, 2, true)]);
        assert_eq!(s.wait(0, BRIEFLY).unwrap().count(), 0, "a duplicate");
        assert_eq!(s.cancel(t), Ok(ScopedCancel::AlreadyComplete));
    });
    let mut events = [Event::default(); 4];
    assert_eq!(
        ctx.wait(&mut events, 0, BRIEFLY),
        Ok(0),
        "an event left behind"
    );
}

fn cancel_pre312_scoped_buffer() {
    let (r, w) = pipe_at(HELD_FD);
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 32];
    let addr = buf.as_ptr() as usize;
    let mut handed_back = 0;
    ctx.scope::<8, _>(|s| {
        // A read the emulated kernel holds (never given to the real one): cancellable.
        let t = s
            .submit(Request::read(r.as_fd(), &mut buf, 0).user_data(9))
            .unwrap();
        assert_eq!(s.in_flight(), 1);
        assert_eq!(s.cancel(t), Ok(ScopedCancel::Canceled));
        for c in s.wait(1, SECOND).unwrap() {
            assert_eq!(c.ticket, t);
            assert_eq!(c.event.user_data(), 9);
            assert_eq!(c.event.result(), Err(Errno::CANCELED));
            let b = c.buffer.into_read().expect("the read's buffer");
            assert_eq!((b.as_ptr() as usize, b.len()), (addr, 32));
            handed_back += 1;
        }
        assert_eq!(s.wait(0, BRIEFLY).unwrap().count(), 0, "handed back twice");
        assert_eq!(s.in_flight(), 0);
    });
    assert_eq!(handed_back, 1);
    assert_eq!(buf, [0u8; 32], "free again, untouched"); // the read never ran
    drop(w);
}

fn cancel_pre312_not_canceled_is_eagain() {
    let f = Scratch::new("eagain");
    let data = [3u8; 64];
    let mut ctx = Context::new(8).unwrap();
    // The raw answer for a request that cannot be cancelled is EAGAIN here...
    let mut req = Request::write(f.file.as_fd(), &data, 0).user_data(1);
    // SAFETY: `data` outlives the request, which is reaped below.
    assert_eq!(unsafe { ctx.submit(&mut [&mut req]) }, Ok(1));
    let mut ev = io_event::default();
    // SAFETY: a live context, a readable iocb and a writable event.
    let ret = unsafe { raw::io_cancel(ctx.id(), req.iocb() as *const iocb as *mut iocb, &mut ev) };
    assert_eq!(ret, -(libc::EAGAIN as libc::c_long));
    // ...which the safe API reports as NotCanceled, unscoped...
    assert_eq!(ctx.cancel(address(&req)), Ok(Cancel::NotCanceled));
    let mut events = [Event::default(); 2];
    assert_eq!(ctx.wait(&mut events, 1, SECOND), Ok(1));
    // ...and scoped: a completed write (its event in the ring) is AlreadyComplete.
    ctx.scope::<8, _>(|s| {
        let t = s.submit(Request::write(f.file.as_fd(), &data, 64)).unwrap();
        assert_eq!(s.cancel(t), Ok(ScopedCancel::AlreadyComplete));
        assert_eq!(s.wait(1, SECOND).unwrap().count(), 1);
    });
}

fn cancel_pre312_posix() {
    let (r, w) = rustix::pipe::pipe().unwrap();
    let mut ctx = Context::new(16).unwrap();
    let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
    posix::with::<4, _>(Some(&mut ctx), |aio| {
        // Waiting for readiness (a kernel POLL): cancellable, and the cancelled POLL's event
        // came back through io_cancel, not the ring.
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut a, 0)).unwrap();
        assert_eq!(aio.aio_error(id), Err(Errno::INPROGRESS));
        assert_eq!(
            aio.aio_cancel(r.as_fd(), Some(id)),
            Ok(CancelStatus::Canceled)
        );
        assert_eq!(aio.aio_error(id), Err(Errno::CANCELED));
        assert_eq!(aio.aio_return(id).unwrap().result, Err(Errno::CANCELED));
        // The next read on the pipe is not confused by the cancelled POLL.
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut b, 0)).unwrap();
        rustix::io::write(&w, b"data").unwrap();
        aio.aio_suspend(&[id], Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(4));
    })
    .unwrap();
    assert_eq!(&b, b"data");
}

// ---------------------------------------------------------------------------------------------
// Before 4.19 (no POLL), 4.18 (no io_pgetevents), 4.14 (no MADV_WIPEONFORK)

fn era_4_18_poll_refused() {
    let mut ctx = Context::new(8).unwrap();
    let efd = readable_eventfd();
    ctx.scope::<8, _>(|s| {
        let r = s
            .submit(Request::poll(efd.as_fd(), PollFlags::IN))
            .unwrap_err();
        assert_eq!(r.error, Errno::INVAL);
        assert!(matches!(r.request.into_buffer(), Buffer::None));
        assert_eq!(s.in_flight(), 0);
    });
    // io_pgetevents exists in 4.18.
    ctx.set_user_space_reaping(false);
    let mut events = [Event::default(); 1];
    assert_eq!(
        ctx.wait_with_sigmask(&mut events, 0, Some(Duration::ZERO), &SigSet::empty()),
        Ok(0)
    );
}

fn era_4_17_safe_api() {
    let f = Scratch::new("era417");
    let data = [1u8; 16];
    let efd = readable_eventfd();
    let mut ctx = Context::new(8).unwrap();
    // A batch with a POLL in the middle: the write before it is accepted, exactly.
    let mut w1 = Request::write(f.file.as_fd(), &data, 0).user_data(1);
    let mut p = Request::poll(efd.as_fd(), PollFlags::IN).user_data(2);
    let mut w2 = Request::write(f.file.as_fd(), &data, 16).user_data(3);
    // SAFETY: `data` and `efd` outlive the requests, reaped below.
    let r = unsafe { ctx.submit(&mut [&mut w1, &mut p, &mut w2]) };
    assert_eq!(
        r,
        Err(SubmitError {
            submitted: 1,
            error: Errno::INVAL
        })
    );
    let mut events = [Event::default(); 4];
    assert_eq!(ctx.wait(&mut events, 1, SECOND), Ok(1));
    assert_eq!(events[0].user_data(), 1);
    // io_pgetevents is ENOSYS whenever the wait reaches it...
    ctx.set_user_space_reaping(false);
    let mask = SigSet::empty();
    assert_eq!(
        ctx.wait_with_sigmask(&mut events, 0, Some(Duration::ZERO), &mask),
        Err(Errno::NOSYS)
    );
    // ...and, as documented, not when the ring already holds what was asked for.
    ctx.set_user_space_reaping(true);
    // SAFETY: as above.
    assert_eq!(unsafe { ctx.submit(&mut [&mut w2]) }, Ok(1));
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(ctx.wait_with_sigmask(&mut events, 1, SECOND, &mask), Ok(1));
    assert_eq!(events[0].user_data(), 3);
    // The scope: the POLL comes back, the writes go through.
    ctx.scope::<8, _>(|s| {
        assert_eq!(
            s.submit(Request::poll(efd.as_fd(), PollFlags::IN))
                .unwrap_err()
                .error,
            Errno::INVAL
        );
        s.submit(Request::write(f.file.as_fd(), &data, 32)).unwrap();
        assert_eq!(s.wait(1, SECOND).unwrap().count(), 1);
    });
}

fn era_4_17_posix_streams() {
    let (r, w) = rustix::pipe::pipe().unwrap();
    let f = Scratch::new("era417-posix");
    rustix::io::write(&f.file, b"file").unwrap();
    let mut ctx = Context::new(16).unwrap();
    let (mut a, mut b, mut c) = ([0u8; 4], [0u8; 4], [0u8; 4]);
    posix::with::<4, _>(Some(&mut ctx), |aio| {
        // A pipe read with no data needs a kernel POLL, which this kernel refuses: the request
        // completes at once with EOPNOTSUPP (nothing can wait for a readiness report)...
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut a, 0)).unwrap();
        aio.aio_suspend(&[id], Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(aio.aio_error(id), Err(Errno::OPNOTSUPP));
        assert_eq!(aio.aio_return(id).unwrap().result, Err(Errno::OPNOTSUPP));
        // ...even when data is there, and queued requests behind it are not stuck.
        rustix::io::write(&w, b"pipe").unwrap();
        let ids = [
            aio.aio_read(Aiocb::read(r.as_fd(), &mut b, 0)).unwrap(),
            aio.aio_read(Aiocb::read(f.file.as_fd(), &mut c, 0))
                .unwrap(),
        ];
        for id in ids {
            aio.aio_suspend(&[id], Some(Duration::from_secs(5)))
                .unwrap();
        }
        // With data there, the transfer (RWF_NOWAIT, 4.14) needs no POLL: the read is served.
        assert_eq!(aio.aio_return(ids[0]).unwrap().result, Ok(4));
        assert_eq!(aio.aio_return(ids[1]).unwrap().result, Ok(4));
        // lio_listio(Wait) with a stream write that has room ends at once, and succeeds.
        let list = [Aiocb::write(w.as_fd(), b"x", 0)];
        let listed = aio.lio_listio(ListMode::Wait, list);
        assert_eq!(listed.result, Ok(()));
        let [Ok(id)] = listed.status else {
            panic!("refused: {:?}", listed.status)
        };
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(1));
    })
    .unwrap();
    assert_eq!(&c, b"file");
}

/// The child's side of a fork test: every check, as an exit status (0: all held).
fn in_forked_child(f: impl FnOnce() -> bool) -> i32 {
    // SAFETY: this process is single-threaded (the scenario child), so fork is safe; the child
    // runs `f` and leaves with _exit, never returning into the caller.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(false);
        // SAFETY: ends the forked child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status),
        "child ended by a signal: {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

fn era_4_13_no_wipeonfork() {
    let f = Scratch::new("era413-fork");
    let data = [4u8; 8];
    let mut ctx = Context::new(8).unwrap();
    assert!(ctx.ring_slots().is_some());
    assert!(
        !ctx.user_space_reaping(),
        "no cheap fork check: the ring is the kernel's"
    );
    ctx.set_user_space_reaping(true);
    assert!(!ctx.user_space_reaping());
    // No POLL before 4.19: a buffered write instead, complete when io_submit returns.
    let efd = readable_eventfd();
    let mut poll = Request::poll(efd.as_fd(), PollFlags::IN);
    // SAFETY: a poll names no memory (and is refused).
    let refused = unsafe { ctx.submit(&mut [&mut poll]) };
    assert_eq!(refused.map_err(|e| e.error), Err(Errno::INVAL));
    let mut p = Request::write(f.file.as_fd(), &data, 0).user_data(5);
    // SAFETY: `data` outlives the request (reaped below).
    assert_eq!(unsafe { ctx.submit(&mut [&mut p]) }, Ok(1));
    assert_eq!(ctx.ready(), Some(1), "its event is in the ring");
    let code = in_forked_child(|| {
        let mut events = [Event::default(); 2];
        let wait = ctx.wait(&mut events, 0, Some(Duration::ZERO));
        let try_wait = ctx.try_wait(&mut events);
        let mut q = Request::fsync(f.file.as_fd());
        // SAFETY: an fsync names no memory.
        let submit = unsafe { ctx.submit(&mut [&mut q]) };
        println!("child: wait {wait:?}, try_wait {try_wait:?}, submit {submit:?}");
        wait == Err(Errno::INVAL)
            && try_wait == Err(Errno::INVAL)
            && ctx.ready().is_none()
            && submit.is_err_and(|e| e.error == Errno::INVAL)
            && ctx.cancel(address(&p)) == Err(Errno::INVAL)
    });
    assert_eq!(code, 0, "the forked child was not refused");
    // The parent still has its completion: the child took nothing.
    assert_eq!(ctx.ready(), Some(1));
    let mut events = [Event::default(); 2];
    assert_eq!(ctx.wait(&mut events, 1, SECOND), Ok(1));
    assert_eq!(events[0].user_data(), 5);
}

fn era_4_13_fork_scope_and_posix() {
    let f = Scratch::new("era413");
    let data = [6u8; 4];
    let mut ctx = Context::new(16).unwrap();
    let efd = readable_eventfd();
    ctx.scope::<8, _>(|s| {
        let poll = s.submit(Request::poll(efd.as_fd(), PollFlags::IN));
        assert_eq!(
            poll.err().map(|r| r.error),
            Some(Errno::INVAL),
            "no POLL before 4.19"
        );
        s.submit(Request::write(f.file.as_fd(), &data, 0).user_data(1))
            .unwrap();
        let code = in_forked_child(|| {
            // The kernel refuses the child (no cheap check, so these reach it); the child's
            // copy of the scope then ends without touching the parent's requests.
            let w = s.wait(1, Some(Duration::ZERO)).err();
            let sub = s
                .submit(Request::fsync(f.file.as_fd()))
                .err()
                .map(|r| r.error);
            println!("child: scoped wait {w:?}, submit {sub:?}");
            w == Some(Errno::INVAL) && sub == Some(Errno::INVAL)
        });
        assert_eq!(code, 0);
        let got: Vec<u64> = s
            .wait(1, SECOND)
            .unwrap()
            .map(|c| c.event.user_data())
            .collect();
        assert_eq!(got, vec![1], "the parent's completion");
    });
    let mut buf = [0u8; 4];
    posix::with::<4, _>(Some(&mut ctx), |aio| {
        let id = aio
            .aio_read(Aiocb::read(f.file.as_fd(), &mut buf, 0))
            .unwrap();
        let code = in_forked_child(|| {
            aio.aio_error(id) == Err(Errno::INVAL) && aio.progress() == Err(Errno::INVAL)
        });
        assert_eq!(code, 0);
        aio.aio_suspend(&[id], Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(4));
    })
    .unwrap();
    assert_eq!(buf, data);
}

// ---------------------------------------------------------------------------------------------
// io_submit refusing a request in the middle of a batch (the requests of 777 bytes)

fn submit_midbatch() {
    let error = errno_of("submit=");
    let f = Scratch::new("midbatch");
    let (small, odd) = ([1u8; 8], [2u8; 777]);
    let mut ctx = Context::new(16).unwrap();
    let mut reqs = [
        Request::write(f.file.as_fd(), &small, 0).user_data(0),
        Request::write(f.file.as_fd(), &small, 8).user_data(1),
        Request::write(f.file.as_fd(), &odd, 16).user_data(2),
        Request::write(f.file.as_fd(), &small, 800).user_data(3),
    ];
    let [a, b, c, d] = &mut reqs;
    // SAFETY: the buffers outlive the requests, all reaped below.
    let r = unsafe { ctx.submit(&mut [a, b, &mut *c, &mut *d]) };
    assert_eq!(
        r,
        Err(SubmitError {
            submitted: 2,
            error
        })
    );
    // Exactly the first two are in flight.
    let mut events = [Event::default(); 8];
    assert_eq!(ctx.wait(&mut events, 2, SECOND), Ok(2));
    let mut ids: Vec<u64> = events[..2].iter().map(Event::user_data).collect();
    ids.sort();
    assert_eq!(ids, [0, 1]);
    assert_eq!(ctx.wait(&mut events, 0, BRIEFLY), Ok(0));
    // From the refused one: refused again, first, so nothing is accepted.
    // SAFETY: as above.
    let r = unsafe { ctx.submit(&mut [&mut *c, &mut *d]) };
    assert_eq!(
        r,
        Err(SubmitError {
            submitted: 0,
            error
        })
    );
    // SAFETY: as above.
    assert_eq!(unsafe { ctx.submit(&mut [&mut *d]) }, Ok(1));
    assert_eq!(ctx.wait(&mut events, 1, SECOND), Ok(1));
    assert_eq!(events[0].user_data(), 3);
}

fn submit_midbatch_eagain() {
    submit_midbatch()
}
fn submit_midbatch_enomem() {
    submit_midbatch()
}
fn submit_midbatch_efault() {
    submit_midbatch()
}
fn submit_midbatch_ebadf() {
    submit_midbatch()
}

fn submit_scope() {
    let error = errno_of("submit=");
    let f = Scratch::new("scope-midbatch");
    let (mut b0, mut b1, mut b3) = ([0u8; 8], [0u8; 8], [0u8; 8]);
    let mut odd = [0u8; 777];
    rustix::io::write(&f.file, &[9u8; 2048]).unwrap();
    let mut ctx = Context::new(16).unwrap();
    let mut handed_back = Vec::new();
    ctx.scope::<8, _>(|s| {
        s.prepare(Request::read(f.file.as_fd(), &mut b0, 0).user_data(0))
            .unwrap();
        s.prepare(Request::read(f.file.as_fd(), &mut b1, 8).user_data(1))
            .unwrap();
        s.prepare(Request::read(f.file.as_fd(), &mut odd, 16).user_data(2))
            .unwrap();
        s.prepare(Request::read(f.file.as_fd(), &mut b3, 800).user_data(3))
            .unwrap();
        let e = s.submit_prepared().unwrap_err();
        assert_eq!((e.submitted, e.error), (2, error));
        assert_eq!(
            (s.in_flight(), s.free_slots()),
            (2, 4),
            "two in flight, two prepared"
        );
        handed_back.extend(collect(s.wait(2, SECOND).unwrap()));
        assert_eq!(s.wait(0, BRIEFLY).unwrap().count(), 0);
        let e = s.submit_prepared().unwrap_err();
        assert_eq!((e.submitted, e.error), (0, error));
        assert_eq!(s.in_flight(), 0);
        // Dropping the prepared ones hands their buffers back to the borrow checker.
        s.discard_prepared();
        assert_eq!(s.free_slots(), 8);
    });
    assert_eq!(handed_back, vec![(0, Ok(8), 8), (1, Ok(8), 8)]);
    assert_eq!(b3, [0u8; 8], "the discarded read never ran");
    // One request alone: it comes back, buffer and all, with the error.
    ctx.scope::<8, _>(|s| {
        let r = s
            .submit(Request::read(f.file.as_fd(), &mut odd, 0).user_data(4))
            .unwrap_err();
        assert_eq!(r.error, error);
        assert_eq!(r.request.iocb().aio_data, 4, "the caller's user data");
        assert_eq!(r.request.into_buffer().len(), 777);
        assert_eq!((s.in_flight(), s.free_slots()), (0, 8));
    });
}

fn submit_scope_eagain() {
    submit_scope()
}
fn submit_scope_enomem() {
    submit_scope()
}
fn submit_scope_efault() {
    submit_scope()
}
fn submit_scope_ebadf() {
    submit_scope()
}

/// The POSIX layer: the refused write (777 bytes) completes with the error, or, for EAGAIN
/// (no room: refused once here), stays queued and goes in later; the others are unaffected.
fn submit_posix() {
    let error = errno_of("submit=");
    let f = Scratch::new("posix-midbatch");
    let (small, odd) = ([1u8; 8], [2u8; 777]);
    let mut ctx = Context::new(16).unwrap();
    posix::with::<4, _>(Some(&mut ctx), |aio| {
        let list = [
            Aiocb::write(f.file.as_fd(), &small, 0),
            Aiocb::write(f.file.as_fd(), &odd, 8),
            Aiocb::write(f.file.as_fd(), &small, 785),
        ];
        let Listed {
            result: listed,
            status,
        } = aio.lio_listio(ListMode::Wait, list);
        let ids = status.map(|s| s.expect("every entry is accepted"));
        let results: Vec<_> = ids
            .iter()
            .map(|&id| aio.aio_return(id).unwrap().result)
            .collect();
        if error == Errno::AGAIN {
            assert_eq!(listed, Ok(()));
            assert_eq!(results, [Ok(8), Ok(777), Ok(8)]);
        } else {
            assert_eq!(listed, Err(Errno::IO));
            assert_eq!(results, [Ok(8), Err(error), Ok(8)]);
        }
        // Each id is returned once.
        assert!(ids.iter().all(|&id| aio.aio_return(id).is_err()));
    })
    .unwrap();
}

fn submit_posix_eagain_is_retried() {
    submit_posix()
}
fn submit_posix_enomem() {
    submit_posix()
}
fn submit_posix_efault() {
    submit_posix()
}
fn submit_posix_ebadf() {
    submit_posix()
}

// ---------------------------------------------------------------------------------------------
// io_getevents and io_pgetevents failing

fn getevents_eintr() {
    let efd = readable_eventfd();
    let mut ctx = Context::new(8).unwrap();
    ctx.set_user_space_reaping(false);
    let mut p = Request::poll(efd.as_fd(), PollFlags::IN).user_data(1);
    // SAFETY: a poll names no memory; `efd` outlives it.
    assert_eq!(unsafe { ctx.submit(&mut [&mut p]) }, Ok(1));
    let mut events = [Event::default(); 2];
    // Returned, never retried behind the caller's back; the event stays for the next wait.
    assert_eq!(ctx.wait(&mut events, 1, SECOND), Err(Errno::INTR));
    assert_eq!(ctx.try_wait(&mut events), Err(Errno::INTR));
    let mask = SigSet::empty();
    assert_eq!(
        ctx.wait_with_sigmask(&mut events, 1, SECOND, &mask),
        Err(Errno::INTR)
    );
    assert_eq!(ctx.wait(&mut events, 1, SECOND), Ok(1));
    assert_eq!(events[0].user_data(), 1);
}

fn getevents_eintr_scoped_and_drain() {
    let efd = eventfd();
    let mut ctx = Context::new(8).unwrap();
    ctx.set_user_space_reaping(false);
    ctx.scope::<8, _>(|s| {
        let t = s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).unwrap();
        assert_eq!(s.wait(1, SECOND).err(), Some(Errno::INTR));
        assert_eq!(s.in_flight(), 1, "nothing lost to the interruption");
        assert_eq!(s.cancel(t), Ok(ScopedCancel::InProgress));
        // The scope's end reaps the cancelled poll through the remaining interruptions.
    });
    let mut events = [Event::default(); 2];
    assert_eq!(ctx.wait(&mut events, 0, BRIEFLY), Ok(0), "left behind");
}

fn getevents_eintr_posix() {
    let (r, w) = rustix::pipe::pipe().unwrap();
    let mut ctx = Context::new(16).unwrap();
    ctx.set_user_space_reaping(false);
    let mut buf = [0u8; 4];
    posix::with::<4, _>(Some(&mut ctx), |aio| {
        let id = aio.aio_read(Aiocb::read(r.as_fd(), &mut buf, 0)).unwrap();
        // (The first two io_getevents are interrupted: the layer's own zero-timeout look at the
        // ring, which shrugs it off, and the suspension's wait, which reports it.)
        assert_eq!(aio.aio_suspend(&[id], SECOND), Err(Errno::INTR));
        rustix::io::write(&w, b"late").unwrap();
        aio.aio_suspend(&[id], Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(aio.aio_return(id).unwrap().result, Ok(4));
    })
    .unwrap();
    assert_eq!(&buf, b"late");
}

fn getevents_efault() {
    let efd = readable_eventfd();
    let mut ctx = Context::new(8).unwrap();
    ctx.set_user_space_reaping(false);
    let mut p = Request::poll(efd.as_fd(), PollFlags::IN).user_data(1);
    // SAFETY: a poll names no memory; `efd` outlives it.
    assert_eq!(unsafe { ctx.submit(&mut [&mut p]) }, Ok(1));
    let mut events = [Event::default(); 2];
    let mask = SigSet::empty();
    assert_eq!(ctx.wait(&mut events, 1, SECOND), Err(Errno::FAULT));
    assert_eq!(
        ctx.wait_with_sigmask(&mut events, 1, SECOND, &mask),
        Err(Errno::FAULT)
    );
    // The event was not lost.
    assert_eq!(ctx.wait(&mut events, 1, SECOND), Ok(1));
    assert_eq!(events[0].user_data(), 1);
}

/// A wait that fails for ever: the scope's end cannot reap, so it destroys the context (which
/// waits for every request) rather than return while the kernel may still write its buffers.
fn getevents_efault_scope_last_resort() {
    let rings = faults::aio_mappings();
    let efd = eventfd();
    let f = Scratch::new("last-resort");
    let mut buf = [0u8; 8];
    rustix::io::write(&f.file, b"12345678").unwrap();
    let mut ctx = Context::new(8).unwrap();
    ctx.set_user_space_reaping(false);
    assert_eq!(faults::aio_mappings(), rings + 1);
    ctx.scope::<8, _>(|s| {
        s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).unwrap();
        s.submit(Request::read(f.file.as_fd(), &mut buf, 0))
            .unwrap();
        assert_eq!(s.wait(1, SECOND).err(), Some(Errno::FAULT));
        assert_eq!(s.in_flight(), 2);
    });
    assert_eq!(
        &buf, b"12345678",
        "the read completed before the scope returned"
    );
    // The context is dead: its ring is unmapped, its id is 0 (which the kernel refuses with
    // EINVAL), and dropping or destroying it is harmless.
    assert_eq!(faults::aio_mappings(), rings);
    assert_eq!((ctx.id(), ctx.ready(), ctx.ring_slots()), (0, None, None));
    assert_eq!(ctx.destroy(), Err(Errno::INVAL));
}

fn getevents_efault_posix_last_resort() {
    let (r, _w) = rustix::pipe::pipe().unwrap();
    let f = Scratch::new("posix-last-resort");
    let mut ctx = Context::new(16).unwrap();
    ctx.set_user_space_reaping(false);
    let (mut a, b) = ([0u8; 4], [7u8; 4]);
    let out = posix::with::<4, _>(Some(&mut ctx), |aio| {
        let pending = aio.aio_read(Aiocb::read(r.as_fd(), &mut a, 0)).unwrap();
        let write = aio.aio_write(Aiocb::write(f.file.as_fd(), &b, 0)).unwrap();
        assert_eq!(aio.aio_suspend(&[write], SECOND), Err(Errno::FAULT));
        assert_eq!(aio.aio_error(pending), Err(Errno::INPROGRESS));
        "returned"
    });
    assert_eq!(out, Ok("returned"));
    drop(ctx);
}

/// The drain's last resort failing too: the wait fails for good and so does io_destroy, so
/// nothing says the kernel is done with the scope's buffers. The scope must not return (its
/// buffers would be freed while requests may still write them): the process aborts. Run in a
/// forked child, for each kind of scope.
fn last_resort_when_destroy_fails_too() {
    // An emulated answer in this process too (the counter is per process).
    assert_eq!(Context::new(1).unwrap().destroy(), Err(Errno::INVAL));
    let aborts = |f: fn()| {
        // SAFETY: single-threaded scenario child; the forked child leaves with _exit or dies.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            f();
            // SAFETY: ends the forked child; reached only if the scope returned.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGABRT,
            "the scope returned (or died otherwise): status {status:#x}"
        );
    };
    aborts(|| {
        let f = Scratch::new("last-resort-scope");
        f.unlink_now(); // this child aborts: no Drop runs
        let mut buf = vec![0u8; 1 << 20];
        let mut ctx = Context::new(8).unwrap();
        ctx.set_user_space_reaping(false);
        ctx.scope::<8, _>(|s| {
            s.submit(Request::read(f.file.as_fd(), &mut buf, 0))
                .unwrap();
        });
    });
    aborts(|| {
        let efd = eventfd();
        let mut ctx = Context::new(8).unwrap();
        ctx.set_user_space_reaping(false);
        ctx.shared_scope::<8, _>(|s, _reaper| {
            s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).unwrap();
        });
    });
}

/// Before 3.12, a scope that ends with a POLL pending: the drain's cancel gets the event back
/// from io_cancel (nothing will come through the ring), and the scope returns at once, with
/// nothing left behind; the shared scope too.
fn cancel_pre312_scope_end_with_pending_poll() {
    for user_space in [true, false] {
        let mut ctx = Context::new(8).unwrap();
        ctx.set_user_space_reaping(user_space);
        let never = eventfd();
        ctx.scope::<4, _>(|s| {
            s.submit(Request::poll(never.as_fd(), PollFlags::IN).user_data(1))
                .unwrap();
        });
        ctx.shared_scope::<4, _>(|s, _reaper| {
            s.submit(Request::poll(never.as_fd(), PollFlags::IN).user_data(2))
                .unwrap();
        });
        let mut events = [Event::default(); 2];
        assert_eq!(
            ctx.wait(&mut events, 0, BRIEFLY),
            Ok(0),
            "an event left behind"
        );
    }
}

/// io_cancel refused (EFAULT, once): the scope says so, keeps the request, and cancels it on
/// a second try.
fn cancel_refused() {
    let mut ctx = Context::new(8).unwrap();
    let efd = eventfd();
    ctx.scope::<4, _>(|s| {
        let t = s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).unwrap();
        assert_eq!(s.cancel(t), Err(Errno::FAULT));
        assert_eq!(s.in_flight(), 1);
        assert_eq!(s.cancel(t), Ok(ScopedCancel::InProgress));
        let got: Vec<_> = s.wait(1, SECOND).unwrap().map(|c| c.ticket).collect();
        assert_eq!(got, vec![t]);
    });
}

/// io_submit refusing one request with EAGAIN every time, with nothing else in flight: the
/// POSIX layer does not leave it EINPROGRESS for ever (nothing could end it) but fails it with
/// EAGAIN, which lio_listio(Wait) reports as EIO and aio_error names.
fn submit_posix_eagain_for_ever() {
    let f = Scratch::new("posix-eagain-for-ever");
    let odd = [2u8; 777];
    let mut ctx = Context::new(16).unwrap();
    posix::with::<4, _>(Some(&mut ctx), |aio| {
        let Listed { result, status } =
            aio.lio_listio(ListMode::Wait, [Aiocb::write(f.file.as_fd(), &odd, 8)]);
        let [Ok(id)] = status else {
            panic!("refused at once: {status:?}")
        };
        assert_eq!(result, Err(Errno::IO));
        assert_eq!(aio.aio_error(id), Err(Errno::AGAIN));
        assert_eq!(aio.aio_return(id).unwrap().result, Err(Errno::AGAIN));
        // And aio_write alone, then aio_suspend without a timeout: it ends.
        let id = aio
            .aio_write(Aiocb::write(f.file.as_fd(), &odd, 8))
            .unwrap();
        assert_eq!(aio.aio_suspend(&[id], None), Ok(()));
        assert_eq!(aio.aio_error(id), Err(Errno::AGAIN));
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// io_setup and io_destroy failing

fn setup_fails(error: Errno) {
    assert_eq!(Context::new(8).err(), Some(error));
    assert_eq!(
        posix::context(8).err(),
        Some(error),
        "not the ENOSYS fallback"
    );
    let ctx = Context::new(8).unwrap();
    ctx.destroy().unwrap();
}

fn setup_eagain() {
    setup_fails(Errno::AGAIN)
}
fn setup_enomem() {
    setup_fails(Errno::NOMEM)
}

/// fs.aio-max-nr reached, as this process sees it (the emulation's limit of 256 slots): the
/// system-wide counter is never touched, so other processes are not disturbed.
fn aio_max_nr_reached() {
    let a = Context::new(128).unwrap();
    let b = Context::new(128).unwrap();
    assert_eq!(Context::new(1).err(), Some(Errno::AGAIN));
    assert_eq!(posix::context(1).err(), Some(Errno::AGAIN));
    drop(a);
    let c = Context::new(100).unwrap();
    assert_eq!(Context::new(100).err(), Some(Errno::AGAIN));
    b.destroy().unwrap();
    c.destroy().unwrap();
    Context::new(256).unwrap().destroy().unwrap();
}

fn destroy_fails() {
    let error = errno_of("destroy=");
    let rings = faults::aio_mappings();
    let a = Context::new(8).unwrap();
    assert_eq!(a.destroy(), Err(error), "reported");
    let b = Context::new(8).unwrap();
    drop(b); // fails too: no panic
    let c = Context::new(8).unwrap();
    assert_eq!(c.destroy(), Ok(()));
    // The two refused destroys left their rings mapped (a real failing io_destroy would not
    // have unmapped them either); the successful one did not.
    assert_eq!(faults::aio_mappings(), rings + 2);
}

fn destroy_fails_efault() {
    destroy_fails()
}

// ---------------------------------------------------------------------------------------------
// The probe under each era

/// The probe's executable: `LINUX_AIO_PROBE` if set (the guests' `/probe`), else the one cargo
/// built beside this test.
fn probe_exe() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("LINUX_AIO_PROBE") {
        return Ok(path.into());
    }
    match option_env!("CARGO_BIN_EXE_linux-aio-probe") {
        Some(path) if Path::new(path).exists() => Ok(path.into()),
        Some(path) => Err(format!(
            "{path} is not here (a copied test binary? LINUX_AIO_PROBE names the probe)"
        )),
        None => Err("the probe was not built (it needs feature std)".into()),
    }
}

/// The probe's `--json` report (under the emulation with `config`, if given), checked against
/// docs/probe.md.
fn probe_json(config: Option<&str>) -> Result<Value, Outcome> {
    let exe = probe_exe().map_err(skipped)?;
    // Under qemu-user the probe, like this binary, is started through the runner.
    let mut cmd = match std::env::var("LINUX_AIO_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap());
            cmd.args(words).arg(&exe);
            cmd
        }
        _ => Command::new(&exe),
    };
    cmd.arg("--json");
    if let Some(config) = config {
        if let Some(why) = unavailable() {
            return Err(skipped(why));
        }
        let lib = faults::library(faults::SOURCE).unwrap();
        faults::under(&mut cmd, &lib, config);
    }
    let out = faults::run(&mut cmd, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    assert!(
        out.status.success(),
        "{}: {:?}\n{}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&text).expect("the probe's --json is JSON");
    let problems = probe_schema::schema().problems(&report);
    assert!(
        problems.is_empty(),
        "the report breaks docs/probe.md:\n  {}",
        problems.join("\n  ")
    );
    Ok(report)
}

macro_rules! probe {
    ($config:expr) => {
        match probe_json($config) {
            Ok(r) => r,
            Err(outcome) => return outcome,
        }
    };
}

/// The real kernel's report follows docs/probe.md, and the check would see a report that did
/// not: a key left out, one added, a value outside its enumeration or of another type, an
/// unknown errno name, a status whose other keys disagree with its table, and a probe result
/// without a context.
fn probe_schema() -> Outcome {
    let report = probe!(None);
    assert_eq!(report["schema"], probe_schema::VERSION);
    let schema = probe_schema::schema();
    // Each change, and the problem the check must name for it.
    let broken = |what: &str, expected: &str, change: &dyn Fn(&mut Value)| {
        let mut r = report.clone();
        change(&mut r);
        let problems = schema.problems(&r);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "the check misses {what} (expected {expected:?} among {problems:?})"
        );
        println!("    {what}: {}", problems.join("; "));
    };
    broken("a missing key", "schema is missing", &|r| {
        r.as_object_mut().unwrap().remove("schema");
    });
    broken("an undocumented key", "extra is not documented", &|r| {
        r["extra"] = Value::from(1)
    });
    broken("a value outside its enumeration", "arch = \"mips\"", &|r| {
        r["arch"] = "mips".into()
    });
    broken("a value of another type", "aio_nr = \"0\"", &|r| {
        r["aio_nr"] = "0".into()
    });
    broken(
        "an unknown errno name",
        "io_destroy.errno = \"EWHAT\"",
        &|r| r["io_destroy"] = serde_json::json!({"status": "failed", "errno": "EWHAT", "ms": 1.0}),
    );
    broken(
        "an errno where its status has none",
        "io_destroy.status table",
        &|r| r["io_destroy"] = serde_json::json!({"status": "ok", "errno": "EINVAL", "ms": 1.0}),
    );
    broken(
        "a result without a context",
        "poll is not null without a context",
        &|r| {
            r["aio"] =
                serde_json::json!({"status": "unavailable", "errno": "ENOSYS", "cause": null});
            r["poll"] =
                serde_json::json!({"status": "supported", "errno": null, "where": null, "res": 1});
        },
    );
    Passed
}

fn probe_era_4_17() -> Outcome {
    let r = probe!(Some("era=4.17"));
    assert_eq!(r["aio"]["status"], "available");
    let poll = serde_json::json!({"status": "unsupported", "errno": "EINVAL", "where": "submit", "res": null});
    assert_eq!(r["poll"], poll);
    let pgetevents = serde_json::json!({"status": "unsupported", "errno": "ENOSYS"});
    assert_eq!(r["io_pgetevents"], pgetevents);
    let cancel = serde_json::json!({"status": "error", "errno": "EINVAL", "where": "submit", "res": null, "res2": null});
    assert_eq!(r["cancel"], cancel);
    assert_eq!(r["user_space_reaping"], true);
    Passed
}

fn probe_era_4_13() -> Outcome {
    let r = probe!(Some("era=4.13"));
    assert_eq!(r["user_space_reaping"], false);
    assert_eq!(r["io_pgetevents"]["status"], "unsupported");
    assert_eq!(r["rwf"]["dsync"]["status"], "accepted");
    Passed
}

fn probe_cancel_pre312() -> Outcome {
    let r = probe!(Some("cancel=pre3.12"));
    let cancel =
        serde_json::json!({"status": "result", "errno": null, "where": null, "res": 0, "res2": 0});
    assert_eq!(r["cancel"], cancel);
    Passed
}

fn probe_aio_max_nr_reached() -> Outcome {
    let r = probe!(Some("aio_max_nr=8"));
    let aio =
        serde_json::json!({"status": "setup_failed", "errno": "EAGAIN", "cause": "aio_max_nr"});
    assert_eq!(r["aio"], aio);
    assert_eq!(r["poll"], Value::Null);
    Passed
}

// ---------------------------------------------------------------------------------------------
// A real kernel fault, and the emulation's own check

/// A wild iocb pointer in the middle of a batch: the real kernel accepts the requests before
/// it, and the resubmission from it learns EFAULT.
fn real_submit_efault_midbatch() -> Outcome {
    let mut ctx = match Context::new(8) {
        Ok(c) => c,
        Err(Errno::NOSYS) => return skipped("kernel AIO unavailable: io_setup gives ENOSYS"),
        Err(e) => panic!("io_setup: {e}"),
    };
    let f = Scratch::new("real-efault");
    let data = [5u8; 8];
    let mut a = Request::write(f.file.as_fd(), &data, 0).user_data(1);
    let mut b = Request::write(f.file.as_fd(), &data, 8).user_data(2);
    let wild = 64usize as *mut iocb; // never mapped: the first page is not
    let mut list = [
        &mut a as *mut Request<'_> as *mut iocb,
        &mut b as *mut Request<'_> as *mut iocb,
        wild,
    ];
    // SAFETY: the first two are live requests whose buffer outlives them (reaped below); the
    // kernel reads the third pointer with a fault-checked copy and refuses it.
    let r = unsafe { ctx.submit_raw(list.as_mut_ptr(), 3) };
    assert_eq!(
        r,
        Err(SubmitError {
            submitted: 2,
            error: Errno::FAULT
        })
    );
    let mut events = [Event::default(); 4];
    assert_eq!(ctx.wait(&mut events, 2, SECOND), Ok(2));
    Passed
}

/// io_submit's EPERM: a real-time I/O priority (`IOCB_FLAG_IOPRIO` with `IOPRIO_CLASS_RT`)
/// without CAP_SYS_ADMIN or CAP_SYS_NICE. A forked child drops both from its effective set
/// (the suite may run as root), then submits.
fn real_submit_rt_priority_without_capability_is_eperm() -> Outcome {
    match Context::new(1) {
        Err(Errno::NOSYS) => return skipped("kernel AIO unavailable: io_setup gives ENOSYS"),
        Err(e) => panic!("io_setup: {e}"),
        Ok(_) => {}
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_SYS_NICE: u32 = 23;
    let f = Scratch::new("eperm");
    let data = [1u8; 8];
    // SAFETY: fork from a test: the child only makes system calls and the calls below, which
    // allocate nothing (the harness's other threads are idle in sleep), and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut head = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut caps = [Data::default(); 2];
        // SAFETY: capget/capset with a version-3 header and room for its two data words.
        let ok = unsafe {
            libc::syscall(libc::SYS_capget, &mut head, caps.as_mut_ptr()) == 0 && {
                caps[0].effective &= !(1 << CAP_SYS_ADMIN | 1 << CAP_SYS_NICE);
                libc::syscall(libc::SYS_capset, &mut head, caps.as_ptr()) == 0
            }
        };
        let rt = linux_aio::IoPriority::new(linux_aio::IoPriorityClass::RealTime, 0).unwrap();
        let code = match (ok, Context::new(4)) {
            (true, Ok(mut ctx)) => ctx.scope::<1, _>(|s| {
                let r = s.submit(Request::write(f.file.as_fd(), &data, 0).priority(rt));
                match r {
                    Err(r) if r.error == Errno::PERM => 0,
                    _ => 1,
                }
            }),
            _ => 2,
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    match libc::WEXITSTATUS(status) {
        0 => Passed,
        2 => skipped("capget/capset or io_setup failed in the child"),
        code => panic!("the real-time request was not refused with EPERM (child exit {code})"),
    }
}

/// The emulation is strong enough to make a correct expectation fail: a child that expects
/// the real kernel's io_setup under `setup=ENOMEM` must fail.
fn emulation_can_fail_a_test() -> Outcome {
    if let Some(why) = unavailable() {
        return skipped(why);
    }
    let lib = faults::library(faults::SOURCE).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    // setup_eagain's body expects EAGAIN; ENOMEM must make it panic.
    cmd.env("LINUX_AIO_TEST_CHILD", "setup_eagain");
    faults::under(&mut cmd, &lib, "setup=ENOMEM*2");
    let out = faults::run(&mut cmd, Duration::from_secs(30));
    assert!(
        !out.status.success(),
        "the child passed with the wrong fault"
    );
    Passed
}
