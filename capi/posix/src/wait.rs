//! Taking the kernel's completions and waiting for them.
//!
//! Completions are taken by whichever thread holds the *reaper role*, one at a time: a thread
//! in `aio_suspend` or `lio_listio(LIO_WAIT)`, the service thread, or, without waiting, a call
//! to `aio_error`, `aio_return` or `aio_cancel`. They come from the ring in user space (no
//! system call) or from `io_getevents`. Every completion is applied under the engine lock, and
//! then [`SEQ`] is bumped and the threads sleeping on it are woken.
//!
//! A waiter that gets the role reaps, and when nothing is ready blocks in `io_getevents` until
//! the kernel completes something. Waiters without the role sleep on [`SEQ`] (a futex). What
//! the kernel does not see has to wake the reaper too (a request finished by `aio_cancel`, a
//! `SIGEV_THREAD` notification for the service thread, a thread asking for the role): for
//! that a POLL on the library's eventfd is kept in flight while the reaper blocks, and those
//! events write the eventfd. Completions themselves cost nothing extra (no `IOCB_FLAG_RESFD`).
//! The eventfd is two private descriptors, read or written only while both are still its file
//! (`kcmp`, else `eventfd-id`: see `Efd`). If the program closed or replaced it, the stale POLL
//! is cancelled and a new eventfd made, and meanwhile a wake-up is a POLL that completes at once
//! (see `poke`); if no eventfd can be had (or told apart), the reaper blocks in slices of 10 ms.
//!
//! Every wait passes a bounded timeout to the kernel, so a signal handler ends it with `EINTR`
//! whether or not it was installed with `SA_RESTART`.

use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};

use linux_aio::raw::{self, __kernel_timespec, io_event};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

use crate::engine::{self, Efd, Engine, Mode, IOCBS, WAKE_IOCB};
use crate::kernel::{KICK_DATA, WAKE_DATA};
use crate::lock::{self, Deadline, Guard, Lock};

/// Bumped whenever a request completes or the reaper role is released.
pub static SEQ: AtomicU32 = AtomicU32::new(0);
/// Threads sleeping on `SEQ`.
static SLEEPERS: AtomicU32 = AtomicU32::new(0);
/// The reaper is blocked in the kernel (and must be woken through the eventfd).
static SLEEPING: AtomicBool = AtomicBool::new(false);
/// Threads waiting for the role (`aio_cancel`): the reaper hands it over.
static WANTED: AtomicU32 = AtomicU32::new(0);
/// The reaper role.
static ROLE: Lock = Lock::new();

/// Events taken per round.
const BATCH: usize = 64;
/// Rounds one non-blocking call may take: a stream transfer completes inside its submission,
/// so each round takes what the last one caused; a busy peer cannot keep a call here.
const ROUNDS: usize = 64;
/// The reaper's blocking slice without an eventfd.
const SLICE_NS: i128 = 10_000_000;
/// The reaper's longest wait with the wake-up POLL armed.
const ARMED_CAP_NS: i128 = 1_000_000_000;
/// New eventfds made after the first (the program closed one, or none could be had): at most
/// this many, so that a process where none can be had does not try before every slice.
const EFD_REMAKES: u32 = 16;

/// In a forked child: nobody waits, nobody reaps.
pub fn reset() {
    ROLE.reset();
    SEQ.store(0, SeqCst);
    SLEEPERS.store(0, SeqCst);
    SLEEPING.store(false, SeqCst);
    WANTED.store(0, SeqCst);
}

/// A request completed: wakes whoever waits (the engine lock is released by now).
pub fn completed() {
    SEQ.fetch_add(1, SeqCst);
    if SLEEPERS.load(SeqCst) > 0 {
        lock::wake_all(&SEQ);
    }
    if SLEEPING.load(SeqCst) {
        poke();
    }
}

/// The eventfd, if both its descriptors still name the one the library made.
fn efd_checked(e: &Engine) -> Option<BorrowedFd<'static>> {
    let efd = e.efd?;
    same(&efd).then(|| {
        // SAFETY: fd >= 0 and, as just checked, the library's own eventfd.
        unsafe { BorrowedFd::borrow_raw(efd.fd) }
    })
}

/// True if `efd.fd` and `efd.twin` are still the library's eventfd.
fn same(efd: &Efd) -> bool {
    if efd.id == 0 {
        kcmp_file(efd.fd, efd.twin) == Some(0)
    } else {
        fdinfo_id(efd.fd) == Some(efd.id) && fdinfo_id(efd.twin) == Some(efd.id)
    }
}

/// `kcmp(KCMP_FILE)` of two descriptors of this process: 0 if they are one file, `None` if
/// the call fails (not open, or no kcmp: `CONFIG_KCMP` off or a seccomp filter).
fn kcmp_file(a: c_int, b: c_int) -> Option<i64> {
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: kcmp only compares; getpid has no preconditions.
    let ret = unsafe {
        let pid = libc::getpid() as libc::c_long;
        libc::syscall(
            libc::SYS_kcmp,
            pid,
            pid,
            KCMP_FILE,
            a as libc::c_long,
            b as libc::c_long,
        )
    };
    (ret >= 0).then_some(ret as i64)
}

/// The `eventfd-id` that `/proc/self/fdinfo/<fd>` shows (Linux 5.2+), if any.
fn fdinfo_id(fd: c_int) -> Option<u64> {
    if fd < 0 {
        return None;
    }
    let mut path = *b"/proc/self/fdinfo/\0\0\0\0\0\0\0\0\0\0\0\0";
    let mut digits = [0u8; 10];
    let (mut n, mut v) = (0, fd as u32);
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for k in 0..n {
        path[18 + k] = digits[n - 1 - k];
    }
    let mut buf = [0u8; 512];
    // SAFETY: a NUL-terminated path; a read into a local buffer; the descriptor is closed here.
    let len = unsafe {
        let f = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if f < 0 {
            return None;
        }
        let len = libc::read(f, buf.as_mut_ptr().cast(), buf.len());
        libc::close(f);
        len
    };
    let text = &buf[..len.max(0) as usize];
    let key = b"eventfd-id:";
    let at = text.windows(key.len()).position(|w| w == key)? + key.len();
    let mut id: u64 = 0;
    let mut any = false;
    for &c in text[at..]
        .iter()
        .skip_while(|c| **c == b' ' || **c == b'\t')
    {
        if !c.is_ascii_digit() {
            break;
        }
        id = id.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        any = true;
    }
    (any && id > 0).then_some(id)
}

/// Wakes the reaper blocked in the kernel: writes the eventfd, completing the wake-up POLL;
/// where the eventfd is no longer the library's (the program closed it), submits a POLL that
/// completes at once instead (on an eventfd made for it and closed at once: always writable).
fn poke() {
    let Some(e) = engine::lock_quiet() else {
        return;
    };
    if let Some(fd) = efd_checked(&e) {
        let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        return;
    }
    if e.mode == Mode::Async {
        kick(e.ctx);
    }
}

/// A POLL for `POLLOUT` on a fresh eventfd: completes at once, so the reaper wakes.
fn kick(ctx: raw::aio_context_t) {
    use rustix::event::{EventfdFlags, PollFlags};
    let Ok(fd) = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK) else {
        return; // no descriptor to be had: the reaper wakes at its next slice (see arm)
    };
    let mut io = raw::iocb {
        aio_data: KICK_DATA,
        aio_lio_opcode: linux_aio::raw::IOCB_CMD_POLL,
        aio_fildes: rustix::fd::AsRawFd::as_raw_fd(&fd) as u32,
        aio_buf: u64::from(PollFlags::OUT.bits()),
        ..Default::default()
    };
    let mut p: *mut raw::iocb = &mut io;
    // SAFETY: one iocb that lives across the call (the kernel copies it, and a POLL that is
    // ready at once completes inside the submission); the eventfd is closed after it (the
    // kernel holds its own reference while it needs one).
    let _ = unsafe { raw::io_submit(ctx, 1, &mut p) };
    drop(fd);
}

/// Releases the role, waking the threads that slept because another thread had it.
fn release(role: Guard<'static>) {
    drop(role);
    SEQ.fetch_add(1, SeqCst);
    if SLEEPERS.load(SeqCst) > 0 {
        lock::wake_all(&SEQ);
    }
}

/// Takes what the kernel has completed, without waiting (the caller holds the role). `None`
/// if the engine lock is held by this very thread (a signal handler inside the library).
fn reap_ready(_role: &Guard<'static>) -> Option<usize> {
    let mut e = engine::lock()?;
    if e.mode != Mode::Async {
        return Some(0);
    }
    let mut events = [io_event::default(); BATCH];
    let n = match e.ring.as_mut().filter(|r| r.intact()) {
        Some(ring) => ring.reap(&mut events),
        None => {
            let mut zero = __kernel_timespec::default();
            // SAFETY: room for BATCH events; a live zero timeout.
            let ret =
                unsafe { raw::io_getevents(e.ctx, 0, BATCH as _, events.as_mut_ptr(), &mut zero) };
            ret.max(0) as usize
        }
    };
    e.absorb(&events[..n]);
    e.start_streams();
    Some(n)
}

/// Takes the role for a moment, if it is free, and takes what is ready (`aio_error`,
/// `aio_return`).
pub fn progress() {
    if let Some(role) = ROLE.try_lock() {
        for _ in 0..ROUNDS {
            if reap_ready(&role).unwrap_or(0) == 0 {
                break;
            }
        }
        release(role);
    }
}

/// Runs `f` on the engine with every completion so far applied (`aio_cancel`): takes the role,
/// asking the reaper to hand it over. `None` if this thread already holds the role or the
/// engine lock (a signal handler inside the library).
pub fn with_reaped<T>(f: impl FnOnce(&mut Engine) -> T) -> Option<T> {
    WANTED.fetch_add(1, SeqCst);
    if SLEEPING.load(SeqCst) {
        poke();
    }
    let role = ROLE.lock();
    WANTED.fetch_sub(1, SeqCst);
    let role = role?;
    let mut ok = true;
    for _ in 0..ROUNDS {
        match reap_ready(&role) {
            Some(0) => break,
            Some(_) => {}
            None => {
                ok = false;
                break;
            }
        }
    }
    let out = if ok {
        engine::lock().map(|mut e| f(&mut e))
    } else {
        None
    };
    release(role);
    out
}

/// Waits until `done()` (`Ok`), `deadline` (`EAGAIN`) or a signal handler (`EINTR`).
pub fn wait_until(done: &dyn Fn() -> bool, deadline: Deadline) -> Result<(), Errno> {
    loop {
        let seen = SEQ.load(SeqCst);
        if done() {
            return Ok(());
        }
        if deadline.passed() {
            return Err(Errno::AGAIN);
        }
        if let Some(role) = ROLE.try_lock() {
            let r = reap_until(&role, done, deadline);
            release(role);
            match r {
                Reaped::Done(r) => return r,
                Reaped::Yield => {}
            }
        }
        // Another thread reaps (or this one cannot): sleep until something completes.
        SLEEPERS.fetch_add(1, SeqCst);
        let r = if SEQ.load(SeqCst) == seen && !done() {
            lock::wait_on(&SEQ, seen, deadline)
        } else {
            Ok(())
        };
        SLEEPERS.fetch_sub(1, SeqCst);
        r?;
    }
}

enum Reaped {
    Done(Result<(), Errno>),
    /// Give the role up (another thread wants it, or this one cannot reap) and sleep a round.
    Yield,
}

/// The reaper's loop: takes what is ready, and blocks in the kernel when nothing is.
fn reap_until(role: &Guard<'static>, done: &dyn Fn() -> bool, deadline: Deadline) -> Reaped {
    loop {
        let seen = SEQ.load(SeqCst);
        match reap_ready(role) {
            None => return Reaped::Yield,
            Some(0) => {}
            Some(_) => continue,
        }
        if done() {
            return Reaped::Done(Ok(()));
        }
        if deadline.passed() {
            return Reaped::Done(Err(Errno::AGAIN));
        }
        if WANTED.load(SeqCst) > 0 {
            return Reaped::Yield;
        }
        let Some((ctx, woken)) = arm() else {
            // Synchronous mode: nothing to reap; requests complete in the threads running them.
            return Reaped::Yield;
        };
        SLEEPING.store(true, SeqCst);
        if SEQ.load(SeqCst) != seen || WANTED.load(SeqCst) > 0 || done() {
            SLEEPING.store(false, SeqCst);
            continue;
        }
        // With the wake-up POLL armed the wait needs no cap; it has one of 1 s all the same,
        // so that a POLL left stale by a program that took the eventfd (and a wake-up that
        // could not be sent: see `poke`) holds the reaper no longer than that.
        let t = deadline.remaining(if woken { ARMED_CAP_NS } else { SLICE_NS });
        let mut timeout = __kernel_timespec {
            tv_sec: t.tv_sec as _,
            tv_nsec: t.tv_nsec as _,
        };
        let mut events = [io_event::default(); BATCH];
        // SAFETY: room for BATCH events; a live timeout. The role keeps every other reaper of
        // this context out.
        let ret =
            unsafe { raw::io_getevents(ctx, 1, BATCH as _, events.as_mut_ptr(), &mut timeout) };
        SLEEPING.store(false, SeqCst);
        if ret == -(libc::EINTR as core::ffi::c_long) {
            return Reaped::Done(Err(Errno::INTR));
        }
        let n = ret.max(0) as usize;
        if n > 0 {
            // This thread holds no engine lock here (it is not inside a handler's call: the
            // role was free), so the lock is had.
            if let Some(mut e) = engine::lock() {
                e.absorb(&events[..n]);
                e.start_streams();
            }
        }
    }
}

/// Before the reaper blocks: the context, and whether the wake-up POLL is in flight (else the
/// reaper blocks in slices). `None` in synchronous mode.
fn arm() -> Option<(raw::aio_context_t, bool)> {
    let mut e = engine::lock()?;
    if e.mode != Mode::Async {
        return None;
    }
    let ctx = e.ctx;
    let trusted = efd_checked(&e);
    if trusted.is_none() && e.efd.is_some() {
        // The program closed (and perhaps reused) the eventfd: a POLL on it would never be
        // completed. It is forgotten (its descriptors are not the library's to close any
        // more), the stale POLL cancelled, and a new eventfd made once that one is out.
        e.efd = None;
        if e.wake_in_flight {
            let mut result = io_event::default();
            // SAFETY: the wake-up iocb, which the kernel holds.
            let ret = unsafe { raw::io_cancel(ctx, IOCBS.get(WAKE_IOCB), &mut result) };
            if ret == 0 {
                e.wake_in_flight = false; // completed into `result` (before Linux 3.12)
            }
        }
    }
    if e.wake_in_flight {
        // The POLL's completion (its eventfd written, or its cancellation) ends the wait; a
        // stale one is not waited for longer than a slice.
        return Some((ctx, e.efd.is_some()));
    }
    if e.efd.is_none() && e.efd_remakes < EFD_REMAKES {
        e.efd_remakes += 1;
        e.efd = make_efd();
    }
    let Some(fd) = efd_checked(&e) else {
        return Some((ctx, false));
    };
    // Empty the eventfd (else the POLL completes at once), then wait for its next write.
    let mut b = [0u8; 8];
    let _ = rustix::io::read(fd, &mut b);
    let io = raw::iocb {
        aio_data: WAKE_DATA,
        aio_lio_opcode: linux_aio::raw::IOCB_CMD_POLL,
        aio_fildes: e.efd.map_or(0, |f| f.fd) as u32,
        aio_buf: u64::from(rustix::event::PollFlags::IN.bits()),
        ..Default::default()
    };
    let mut p = IOCBS.get(WAKE_IOCB);
    // SAFETY: the wake-up iocb is not in the kernel (wake_in_flight is false), and the engine
    // lock is held; then it is submitted as is.
    let ret = unsafe {
        p.write(io);
        raw::io_submit(ctx, 1, &mut p)
    };
    e.wake_in_flight = ret == 1;
    Some((ctx, e.wake_in_flight))
}

/// The eventfd for wake-ups, made with the context and again if the program closes it
/// (`None` if it cannot be had, or neither `kcmp` nor `eventfd-id` can tell it from another
/// eventfd: then the reaper blocks in slices).
pub fn make_efd() -> Option<Efd> {
    use rustix::event::EventfdFlags;
    let made = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok()?;
    let raw = rustix::fd::AsRawFd::as_raw_fd(&made);
    let fd = crate::kernel::private_dup(raw).ok()?;
    let Ok(twin) = crate::kernel::private_dup(raw) else {
        // SAFETY: made just above, the library's.
        unsafe { libc::close(fd) };
        return None;
    };
    drop(made);
    let id = if kcmp_file(fd, twin) == Some(0) {
        Some(0)
    } else {
        fdinfo_id(fd).filter(|id| fdinfo_id(twin) == Some(*id))
    };
    match id {
        Some(id) => Some(Efd { fd, twin, id }),
        None => {
            // SAFETY: made just above, the library's.
            unsafe {
                libc::close(fd);
                libc::close(twin);
            }
            None
        }
    }
}

/// `errno` of the calling thread.
pub fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns the calling thread's errno, valid for its lifetime.
    unsafe { *libc::__errno_location() = e };
}
