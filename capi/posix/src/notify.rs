//! Notification: `SIGEV_NONE`, `SIGEV_SIGNAL`, `SIGEV_THREAD` and Linux's `SIGEV_THREAD_ID`,
//! and the service thread.
//!
//! - A signal is queued with `rt_sigqueueinfo(2)` to the process (`rt_tgsigqueueinfo(2)` to the
//!   thread for `SIGEV_THREAD_ID`), with `si_code` `SI_ASYNCIO`, `si_value` the request's
//!   `sigev_value`, and `si_pid`/`si_uid` the process's, as glibc sends it. It is sent by
//!   whichever thread completes the request, after releasing the library's locks (a handler
//!   may `siglongjmp` out of the call it interrupts).
//! - A `SIGEV_THREAD` function runs on a detached thread of its own, which the service thread
//!   starts for that notification (as glibc does), with the request's `sigev_value` and every
//!   signal blocked (as glibc's notification threads have them): it runs "as if it were the
//!   start function of a new thread", so it may block or call `pthread_exit` without delaying
//!   the others or ending the service. `sigev_notify_attributes` is not used (default
//!   attributes). Where no thread can be made, the service thread runs the function itself
//!   (see `spawn_callback`).
//!
//! # The service thread
//! At most one per process, started by the first request (or list) whose notification needs
//! one: `SIGEV_SIGNAL`, `SIGEV_THREAD_ID` and `SIGEV_THREAD`. A program that only waits for a
//! signal (`sigsuspend`, `sigwaitinfo`) makes no call into the library, so something else must
//! take the kernel's completions and move stream requests on (a POLL's readiness report starts
//! the transfer, a write transfers its next part): the service thread waits in the library as
//! any `aio_suspend` does (see `wait`), starts the `SIGEV_THREAD` functions, and lives as long as
//! the process (the library is linked `-z nodelete`). Programs that use only `SIGEV_NONE`
//! never get it: their requests move on inside their own calls. A forked child starts its own
//! when it first needs one.

use core::ffi::c_int;
use core::sync::atomic::{AtomicU32, Ordering::SeqCst};

use crate::abi::{
    self, sigevent, siginfo, sigval, NotifyFunction, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD,
    SIGEV_THREAD_ID, SI_ASYNCIO,
};

/// How a completed request (or list) is announced: a copy of its `struct sigevent`, taken when
/// it was queued.
#[derive(Clone, Copy)]
pub enum Notify {
    None,
    /// `SIGEV_SIGNAL`: to the process.
    Signal {
        signo: c_int,
        value: sigval,
    },
    /// `SIGEV_THREAD_ID`: to one thread.
    ThreadSignal {
        signo: c_int,
        value: sigval,
        tid: c_int,
    },
    /// `SIGEV_THREAD`: a call on the service thread.
    Thread {
        function: NotifyFunction,
        value: sigval,
    },
}

impl Notify {
    pub fn is_none(&self) -> bool {
        matches!(self, Notify::None)
    }

    /// True for the notifications delivered by the completing thread (signals).
    pub fn is_signal(&self) -> bool {
        matches!(self, Notify::Signal { .. } | Notify::ThreadSignal { .. })
    }

    /// True for the notifications that need the service thread.
    pub fn needs_service(&self) -> bool {
        !self.is_none()
    }

    /// `sev`, checked: `EINVAL` for an unknown `sigev_notify`, a signal number out of range, a
    /// `SIGEV_THREAD` without a function or a `SIGEV_THREAD_ID` naming no thread of this
    /// process. `SIGEV_SIGNAL` with signal 0 announces nothing (glibc sends nothing either).
    pub fn parse(sev: &sigevent) -> Result<Notify, c_int> {
        let signal = |signo: c_int| match signo {
            1..=abi::SIGNAL_MAX => Ok(true),
            0 => Ok(false),
            _ => Err(libc::EINVAL),
        };
        match sev.sigev_notify {
            SIGEV_NONE => Ok(Notify::None),
            SIGEV_SIGNAL => Ok(if signal(sev.sigev_signo)? {
                Notify::Signal {
                    signo: sev.sigev_signo,
                    value: sev.sigev_value,
                }
            } else {
                Notify::None
            }),
            SIGEV_THREAD_ID => {
                // SAFETY: the union member SIGEV_THREAD_ID uses.
                let tid = unsafe { sev.sigev_un.tid };
                // SAFETY: tgkill with signal 0 only checks that the thread exists here.
                let exists = tid > 0
                    && unsafe {
                        libc::syscall(libc::SYS_tgkill, libc::getpid(), tid as libc::c_long, 0)
                    } == 0;
                if !exists {
                    return Err(libc::EINVAL);
                }
                Ok(if signal(sev.sigev_signo)? {
                    Notify::ThreadSignal {
                        signo: sev.sigev_signo,
                        value: sev.sigev_value,
                        tid,
                    }
                } else {
                    Notify::None
                })
            }
            SIGEV_THREAD => {
                // SAFETY: the union member SIGEV_THREAD uses.
                match unsafe { sev.sigev_un.thread }.function {
                    Some(function) => Ok(Notify::Thread {
                        function,
                        value: sev.sigev_value,
                    }),
                    None => Err(libc::EINVAL),
                }
            }
            _ => Err(libc::EINVAL),
        }
    }
}

/// Sends a signal notification. Async-signal-safe: two system calls.
fn send(notify: &Notify) {
    let (signo, value, tid) = match *notify {
        Notify::Signal { signo, value } => (signo, value, None),
        Notify::ThreadSignal { signo, value, tid } => (signo, value, Some(tid)),
        _ => return,
    };
    // SAFETY: getpid and getuid have no preconditions.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    let info = siginfo {
        si_signo: signo,
        si_errno: 0,
        si_code: SI_ASYNCIO,
        #[cfg(target_pointer_width = "64")]
        __pad0: 0,
        si_pid: pid,
        si_uid: uid,
        si_value: value,
        __rest: [0; core::mem::size_of::<siginfo>() - core::mem::offset_of!(siginfo, __rest)],
    };
    let info = &info as *const siginfo;
    // SAFETY: `info` is a complete siginfo_t (128 bytes) that lives across the call; a signal
    // with a negative si_code may be queued to one's own process.
    unsafe {
        match tid {
            None => libc::syscall(libc::SYS_rt_sigqueueinfo, pid, signo, info),
            Some(tid) => libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, signo, info),
        };
    }
}

/// Delivers the queued signal notifications, one at a time, each after the engine lock is
/// released.
pub fn deliver_signals() {
    loop {
        let notify = match crate::engine::lock_quiet() {
            Some(mut e) => e.pop_notice(true),
            None => return, // a handler inside the library: the holder delivers them
        };
        match notify {
            Some(n) => send(&n),
            None => return,
        }
    }
}

/// Service thread: 0 not started, 1 being started, 2 running.
static SERVICE: AtomicU32 = AtomicU32::new(0);
/// `SIGEV_THREAD` notifications queued and not yet taken by the service thread.
pub static CALLBACKS: AtomicU32 = AtomicU32::new(0);

/// In a forked child: no service thread (the parent's is not the child's).
pub fn reset() {
    SERVICE.store(0, SeqCst);
    CALLBACKS.store(0, SeqCst);
}

pub fn callback_queued() {
    CALLBACKS.fetch_add(1, SeqCst);
}

/// Starts the service thread if it is not running. `Err(EAGAIN)` if it cannot be created.
pub fn ensure_service() -> Result<(), c_int> {
    // The state must be this process's first: the first call (and a forked child's) starts it
    // afresh, SERVICE included, which would forget a service thread started just before.
    crate::process::check();
    loop {
        match SERVICE.load(SeqCst) {
            2 => return Ok(()),
            1 => core::hint::spin_loop(),
            _ => {
                if SERVICE.compare_exchange(0, 1, SeqCst, SeqCst).is_err() {
                    continue;
                }
                let started = start_service();
                SERVICE.store(if started { 2 } else { 0 }, SeqCst);
                return if started { Ok(()) } else { Err(libc::EAGAIN) };
            }
        }
    }
}

fn start_service() -> bool {
    // SAFETY: plain pthread calls on local, initialised objects. The new thread inherits the
    // creating thread's signal mask, so every signal is blocked around the creation: the
    // process's signals go to the program's threads, and the service thread's waits are never
    // interrupted.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut thread: libc::pthread_t = core::mem::zeroed();
        let ret = libc::pthread_create(&mut thread, &attr, service_main, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        ret == 0
    }
}

extern "C" fn service_main(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        run_callbacks();
        let _ =
            crate::wait::wait_until(&|| CALLBACKS.load(SeqCst) > 0, crate::lock::Deadline::NEVER);
    }
}

/// Starts a thread for each queued `SIGEV_THREAD` function, each after the engine lock is
/// released.
fn run_callbacks() {
    loop {
        let notify = match crate::engine::lock() {
            Some(mut e) => e.pop_notice(false),
            None => return,
        };
        match notify {
            Some(Notify::Thread { function, value }) => {
                CALLBACKS.fetch_sub(1, SeqCst);
                spawn_callback(function, value);
            }
            Some(_) => {
                CALLBACKS.fetch_sub(1, SeqCst);
            }
            None => return,
        }
    }
}

/// A notification's function and value, handed to its thread.
struct Call {
    function: NotifyFunction,
    value: sigval,
}

/// Tries to start the thread a few times (for 1 s) when the system has none to give (or no
/// memory); if it still cannot, runs the function here (where `pthread_exit` in it would end the service).
fn spawn_callback(function: NotifyFunction, value: sigval) {
    for _ in 0..100 {
        // SAFETY: malloc has no preconditions; the block is written before anything reads it.
        let call = unsafe { libc::malloc(core::mem::size_of::<Call>()) }.cast::<Call>();
        if call.is_null() {
            break;
        }
        // SAFETY: a fresh block of the right size (malloc aligns for any type).
        unsafe { call.write(Call { function, value }) };
        // SAFETY: plain pthread calls on local, initialised objects; the new thread takes
        // `call` (and frees it, the one allocation here: with the C library's malloc), or it is freed here if no thread was made. It inherits the
        // service thread's mask: every signal blocked.
        let ret = unsafe {
            let mut attr: libc::pthread_attr_t = core::mem::zeroed();
            libc::pthread_attr_init(&mut attr);
            libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
            let mut thread: libc::pthread_t = core::mem::zeroed();
            let ret = libc::pthread_create(&mut thread, &attr, callback_main, call.cast());
            libc::pthread_attr_destroy(&mut attr);
            ret
        };
        if ret == 0 {
            return;
        }
        // SAFETY: no thread took it.
        unsafe { libc::free(call.cast()) };
        let ten_ms = libc::timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        // SAFETY: a live timespec; no remainder wanted.
        unsafe { libc::nanosleep(&ten_ms, core::ptr::null_mut()) };
    }
    // SAFETY: the program's notification function, with the request's sigev_value.
    unsafe { function(value) };
}

/// A notification's own thread: the function runs "as if it were the start function of a new
/// thread", so it may block or call `pthread_exit` without holding up anything else.
extern "C" fn callback_main(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is the Call that spawn_callback boxed for this thread.
    let Call { function, value } = unsafe { arg.cast::<Call>().read() };
    // SAFETY: malloc'd by spawn_callback, read above, not used again.
    unsafe { libc::free(arg) };
    // SAFETY: the program's notification function, called as POSIX says, with the request's
    // sigev_value.
    unsafe { function(value) };
    core::ptr::null_mut()
}
