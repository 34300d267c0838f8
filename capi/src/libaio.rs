//! The entry points of libaio 0.3.113, with its semantics (read from its sources and checked
//! against Debian's binary):
//!
//! | symbol                        | does                                                      |
//! |-------------------------------|-----------------------------------------------------------|
//! | `io_setup@@LIBAIO_0.4`        | `io_setup(2)`; the new context is recorded (see `contexts`) |
//! | `io_destroy@@LIBAIO_0.4`      | `io_destroy(2)`                                           |
//! | `io_submit@@LIBAIO_0.1`       | `io_submit(2)`                                            |
//! | `io_cancel@@LIBAIO_0.4`       | `io_cancel(2)`                                            |
//! | `io_cancel@LIBAIO_0.1`        | `io_cancel(ctx, iocb)`: the same, the result discarded    |
//! | `io_getevents@@LIBAIO_0.4`    | `io_getevents(2)`, reaping from the ring first            |
//! | `io_getevents@LIBAIO_0.1`     | `io_getevents(ctx, nr, events, timeout)`: `min_nr` 1       |
//! | `io_pgetevents@@LIBAIO_0.5`   | `io_pgetevents(2)` with the kernel's sigset size (8)      |
//! | `io_queue_init@@LIBAIO_0.1`   | `EINVAL` unless `maxevents > 0`; `*ctxp = 0`; `io_setup`  |
//! | `io_queue_release@@LIBAIO_0.1`| `io_destroy`                                              |
//! | `io_queue_wait@@LIBAIO_0.4`   | `io_getevents(ctx, 0, 0, NULL, timeout)`                  |
//! | `io_queue_wait@LIBAIO_0.1`    | the same                                                  |
//! | `io_queue_run@@LIBAIO_0.1`    | one event at a time (zero timeout), calling its callback  |
//!
//! `io_queue_run`'s callbacks are the `io_callback_t` that `io_set_callback` (libaio.h) stores
//! in each request's `data`.
//!
//! Every function returns the kernel's value (a count, 0, or a negated errno) as an `int`, as
//! libaio's `int ret = syscall(...)` does, and never touches `errno`: the system calls go through
//! linux-aio's entry, not libc.
//!
//! # Reaping
//! libaio 0.3.113 always makes the `io_getevents` system call, but for one shortcut: with a zero
//! timeout and an empty ring it returns 0 at once. Here `io_getevents` first copies what the ring
//! holds (up to `nr`), and makes the system call only for what is still missing: exactly when
//! libaio would block, i.e. fewer than `min_nr` events are in the ring, or the ring may not be
//! read (not created here, header changed, another thread reaping it; see `contexts`), or
//! `events` is misaligned (the kernel accepts that, a Rust slice cannot). Arguments
//! the kernel rejects (`min_nr < 0`, `min_nr > nr`, a null `events`) always go to the kernel, so
//! they fail as they do there. `io_pgetevents` reaps the same way when `sigmask` is null; with a
//! mask it always makes the system call, so that a pending signal the mask unblocks is delivered
//! exactly as the kernel delivers it.

use core::ffi::{c_int, c_long, c_uint, c_void};
use core::ptr::null_mut;

use linux_aio::raw::{
    self, __aio_sigset, __kernel_timespec, aio_context_t, io_event, iocb, KERNEL_SIGSET_SIZE,
};

use crate::contexts::{self, KernelReaper, UserReaper};
use crate::export::export;

/// `EINVAL`, 22 on every Linux architecture (asm-generic/errno-base.h).
const EINVAL: c_long = 22;

/// libaio's `io_callback_t`, which `io_set_callback` (libaio.h) stores in `iocb->data`.
type Callback =
    unsafe extern "C" fn(ctx: aio_context_t, iocb: *mut iocb, res: c_long, res2: c_long);

/// The kernel's value as libaio returns it: truncated to `int`.
fn int(ret: c_long) -> c_int {
    ret as c_int
}

export! { "io_setup@@LIBAIO_0.4" =>
    unsafe extern "C" fn io_setup(maxevents: c_int, ctxp: *mut aio_context_t) -> c_int {
        // SAFETY: the kernel checks ctxp (EFAULT) and *ctxp (EINVAL unless 0).
        let ret = unsafe { raw::io_setup(maxevents as c_uint, ctxp) };
        if ret == 0 {
            // SAFETY: io_setup succeeded, so ctxp is valid and holds the new context. The kernel
            // accepts any alignment, so the read must too.
            contexts::register(unsafe { ctxp.read_unaligned() });
        }
        int(ret)
    }
}

export! { "io_destroy@@LIBAIO_0.4" =>
    unsafe extern "C" fn io_destroy(ctx: aio_context_t) -> c_int {
        contexts::unregister(ctx);
        // SAFETY: the kernel checks ctx; this library no longer reads its ring.
        int(unsafe { raw::io_destroy(ctx) })
    }
}

export! { "io_submit@@LIBAIO_0.1" =>
    unsafe extern "C" fn io_submit(ctx: aio_context_t, nr: c_long, iocbs: *mut *mut iocb) -> c_int {
        // SAFETY: the kernel copies the iocbs with fault checks; keeping their buffers valid until
        // completion is the caller's part, as with libaio.
        int(unsafe { raw::io_submit(ctx, nr, iocbs) })
    }
}

export! { "io_cancel@@LIBAIO_0.4" =>
    unsafe extern "C" fn io_cancel(
        ctx: aio_context_t,
        iocb: *mut iocb,
        event: *mut io_event,
    ) -> c_int {
        // SAFETY: the kernel reads iocb and writes event with fault checks.
        int(unsafe { raw::io_cancel(ctx, iocb, event) })
    }
}

export! { "io_cancel@LIBAIO_0.1" =>
    unsafe extern "C" fn io_cancel_0_1(ctx: aio_context_t, iocb: *mut iocb) -> c_int {
        let mut event = io_event::default();
        // SAFETY: as io_cancel; the event goes to a local, as in libaio.
        int(unsafe { raw::io_cancel(ctx, iocb, &mut event) })
    }
}

export! { "io_getevents@@LIBAIO_0.4" =>
    unsafe extern "C" fn io_getevents(
        ctx: aio_context_t,
        min_nr: c_long,
        nr: c_long,
        events: *mut io_event,
        timeout: *mut CTimespec,
    ) -> c_int {
        // SAFETY: the caller's arguments, under libaio's contract.
        unsafe { get_events(ctx, min_nr, nr, events, timeout, None) }
    }
}

export! { "io_getevents@LIBAIO_0.1" =>
    unsafe extern "C" fn io_getevents_0_1(
        ctx: aio_context_t,
        nr: c_long,
        events: *mut io_event,
        timeout: *mut CTimespec,
    ) -> c_int {
        // SAFETY: the caller's arguments, under libaio's contract.
        unsafe { get_events(ctx, 1, nr, events, timeout, None) }
    }
}

export! { "io_pgetevents@@LIBAIO_0.5" =>
    unsafe extern "C" fn io_pgetevents(
        ctx: aio_context_t,
        min_nr: c_long,
        nr: c_long,
        events: *mut io_event,
        timeout: *mut CTimespec,
        sigmask: *const c_void,
    ) -> c_int {
        // SAFETY: the caller's arguments, under libaio's contract.
        unsafe { get_events(ctx, min_nr, nr, events, timeout, Some(sigmask)) }
    }
}

export! { "io_queue_init@@LIBAIO_0.1" =>
    unsafe extern "C" fn io_queue_init(maxevents: c_int, ctxp: *mut aio_context_t) -> c_int {
        if maxevents <= 0 {
            return int(-EINVAL);
        }
        // libaio writes through a null ctxp (and crashes); here the kernel answers EFAULT.
        if !ctxp.is_null() {
            // SAFETY: the caller passes a pointer to an io_context_t (at any alignment).
            unsafe { ctxp.write_unaligned(0) };
        }
        // SAFETY: as io_setup.
        unsafe { io_setup(maxevents, ctxp) }
    }
}

export! { "io_queue_release@@LIBAIO_0.1" =>
    unsafe extern "C" fn io_queue_release(ctx: aio_context_t) -> c_int {
        // SAFETY: as io_destroy.
        unsafe { io_destroy(ctx) }
    }
}

export! { "io_queue_wait@@LIBAIO_0.4" =>
    unsafe extern "C" fn io_queue_wait(
        ctx: aio_context_t,
        timeout: *mut CTimespec,
    ) -> c_int {
        // SAFETY: no events are asked for; timeout is the caller's.
        unsafe { get_events(ctx, 0, 0, null_mut(), timeout, None) }
    }
}

export! { "io_queue_wait@LIBAIO_0.1" =>
    unsafe extern "C" fn io_queue_wait_0_1(
        ctx: aio_context_t,
        timeout: *mut CTimespec,
    ) -> c_int {
        // SAFETY: as io_queue_wait.
        unsafe { get_events(ctx, 0, 0, null_mut(), timeout, None) }
    }
}

export! { "io_queue_run@@LIBAIO_0.1" =>
    unsafe extern "C" fn io_queue_run(ctx: aio_context_t) -> c_int {
        let mut zero = CTimespec::default();
        loop {
            let mut event = io_event::default();
            // SAFETY: room for one event; a live zero timeout.
            let ret = unsafe { get_events(ctx, 0, 1, &mut event, &mut zero, None) };
            if ret != 1 {
                return ret;
            }
            // SAFETY: libaio's contract for io_queue_run: the request's data is the io_callback_t
            // that io_set_callback stored, or 0 (libaio would call address 0; it is skipped here).
            let callback =
                unsafe { core::mem::transmute::<usize, Option<Callback>>(event.data as usize) };
            if let Some(callback) = callback {
                let iocb = event.obj as *mut iocb;
                let (res, res2) = (event.res as c_long, event.res2 as c_long);
                // SAFETY: as above; the callback gets the arguments libaio passes.
                unsafe { callback(ctx, iocb, res, res2) };
            }
        }
    }
}

/// `struct timespec` as the programs calling libaio have it: their C library's. libaio hands it
/// to the kernel as the timeout, so it is the kernel's `__kernel_timespec` where `time_t` and
/// `long` are 64-bit (every 64-bit target).
#[cfg(any(target_pointer_width = "64", target_arch = "x86_64"))]
type CTimespec = __kernel_timespec;

/// On 32-bit glibc targets, how Debian builds `libaio.so.1` and the programs linked against it
/// (without `_TIME_BITS=64`): 32-bit `time_t` and `long`. Old libaio passes it to the 32-bit
/// `io_getevents`; here it is widened and goes through the raw layer like any timeout
/// (`io_pgetevents_time64`, so it also works on kernels built without the 32-bit time calls).
#[cfg(all(
    target_pointer_width = "32",
    not(target_arch = "x86_64"),
    not(target_env = "musl")
))]
#[repr(C)]
#[derive(Default)]
struct CTimespec {
    tv_sec: c_long,
    tv_nsec: c_long,
}

/// musl (1.2 and later) on 32-bit targets: 64-bit `time_t`, a 32-bit `tv_nsec` and 32 bits of
/// padding that need not be zero (after `tv_nsec` on little-endian targets, before it on
/// big-endian ones).
#[cfg(all(
    target_pointer_width = "32",
    not(target_arch = "x86_64"),
    target_env = "musl"
))]
#[repr(C)]
#[derive(Default)]
struct CTimespec {
    tv_sec: i64,
    #[cfg(target_endian = "big")]
    _pad: c_long,
    tv_nsec: c_long,
    #[cfg(target_endian = "little")]
    _pad: c_long,
}

/// The caller's timeout as the raw layer takes it: null stays null; where the C type is the
/// kernel's the pointer is passed on untouched (a bad one is the kernel's EFAULT, as in libaio);
/// otherwise the value is widened into `copy`.
///
/// # Safety
/// `timeout` is null or readable.
#[cfg(any(target_pointer_width = "64", target_arch = "x86_64"))]
unsafe fn kernel_timeout(
    timeout: *mut CTimespec,
    _copy: &mut __kernel_timespec,
) -> *mut __kernel_timespec {
    timeout
}

/// See the 64-bit version. Here the value is read in user space: a bad pointer faults instead of
/// giving EFAULT (libaio's contract makes it the caller's error either way).
///
/// # Safety
/// `timeout` is null or readable.
#[cfg(not(any(target_pointer_width = "64", target_arch = "x86_64")))]
unsafe fn kernel_timeout(
    timeout: *mut CTimespec,
    copy: &mut __kernel_timespec,
) -> *mut __kernel_timespec {
    if timeout.is_null() {
        return null_mut();
    }
    // SAFETY: non-null and readable (this function's contract).
    let t = unsafe { &*timeout };
    *copy = __kernel_timespec {
        tv_sec: t.tv_sec.into(),
        tv_nsec: t.tv_nsec.into(),
    };
    copy
}

/// `io_getevents`, or `io_pgetevents` when `sigmask` is given: the ring first where that is
/// allowed, then the system call for what is still missing.
///
/// # Safety
/// libaio's contract: `events` has room for `nr` events (or `nr` is 0), `timeout` is null or
/// readable, `sigmask` is null or a readable `sigset_t`.
unsafe fn get_events(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut CTimespec,
    sigmask: Option<*const c_void>,
) -> c_int {
    let mut got: c_long = 0;
    let ring_first = sigmask.is_none_or(|mask| mask.is_null());
    // A misaligned `events` is the kernel's to write (it accepts any alignment); a Rust slice
    // over it would not be sound.
    let aligned = events.is_aligned();
    let valid = 0 <= min_nr && min_nr <= nr && (nr == 0 || (!events.is_null() && aligned));
    if ring_first && valid {
        if let Some(mut reaper) = UserReaper::new(ctx) {
            let ring = reaper.ring();
            // nr >= 0 (`valid`); the ring's u32 slot count may exceed a 32-bit c_long.
            let len = (nr as usize).min(ring.nr() as usize);
            let out: &mut [io_event] = if len == 0 {
                &mut []
            } else {
                // SAFETY: the caller gives room for nr events at events (non-null), and len <= nr.
                unsafe { core::slice::from_raw_parts_mut(events, len) }
            };
            got = ring.reap(out) as c_long;
            if got >= min_nr {
                return int(got);
            }
        }
    }
    let _kernel = KernelReaper::new(ctx);
    let rest = events.wrapping_add(got as usize);
    let mut copy = __kernel_timespec::default();
    // SAFETY: timeout is null or readable (libaio's contract).
    let timeout = unsafe { kernel_timeout(timeout, &mut copy) };
    let ret = match sigmask {
        // SAFETY: rest has room for nr - got events; timeout is the caller's.
        None => unsafe { raw::io_getevents(ctx, min_nr - got, nr - got, rest, timeout) },
        Some(mask) => {
            let sig = __aio_sigset {
                sigmask: mask,
                sigsetsize: KERNEL_SIGSET_SIZE,
            };
            // SAFETY: as above; sig is live and its mask is the caller's (or null).
            unsafe { raw::io_pgetevents(ctx, min_nr - got, nr - got, rest, timeout, &sig) }
        }
    };
    // Events already taken from the ring are returned even if the wait for more failed, as the
    // kernel returns the events it copied before an interruption.
    if raw::is_error(ret) && got > 0 {
        int(got)
    } else {
        int(got + ret)
    }
}
