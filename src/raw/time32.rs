//! `io_getevents` and `io_pgetevents` on the 32-bit architectures (arm, x86), where the calls of
//! those names take the 32-bit `struct timespec` (`__kernel_old_timespec`): the y2038-unsafe
//! ABI, which a kernel built without `CONFIG_COMPAT_32BIT_TIME` does not have at all (a relative
//! timeout in 32 bits is itself good for 68 years).
//!
//! The raw layer keeps one signature on every architecture (`*mut __kernel_timespec`, 64-bit
//! seconds), so:
//! - both go to `io_pgetevents_time64` (Linux 5.1), `io_getevents` with a null signal-mask
//!   argument (there is no `io_getevents_time64`). The one difference the kernel makes
//!   (fs/aio.c): when a signal interrupts a wait that found no event, `io_getevents` returns
//!   `EINTR` while the `io_pgetevents` family returns `ERESTARTNOHAND`, which the kernel turns
//!   into `EINTR` if a handler ran and otherwise restarts the call (after a stop and continue,
//!   say) with the same relative timeout;
//! - if the kernel answers `ENOSYS` (before 5.1), the answer is remembered in [`TIME32`] and
//!   this call and every later one use the old call of the same name, with the timeout converted
//!   to 32 bits and clamped: seconds beyond `i32::MAX` become `i32::MAX` (68 years), never a
//!   wrapped, shorter or negative wait. A kernel without AIO answers `ENOSYS` to both, so the
//!   caller still sees `ENOSYS`.
//!
//! On that fallback path the timeout is read here, in user space, so it must really be readable
//! (the functions' contract); the time64 path hands the pointer to the kernel as it is.

use core::ffi::c_long;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, Ordering};

use super::arch::{
    __NR_io_getevents, __NR_io_pgetevents, __NR_io_pgetevents_time64, __aio_sigset,
    __kernel_old_timespec, __kernel_timespec, aio_context_t, io_event, syscall5, syscall6,
};

/// Linux's `ENOSYS` on arm and x86 (asm-generic/errno.h).
const ENOSYS: c_long = 38;

/// True once `io_pgetevents_time64` has answered `ENOSYS`: from then on only the 32-bit calls
/// are made. Relaxed is enough: the value is a fact about the kernel, and a thread that has not
/// seen it yet only asks the kernel once more.
static TIME32: AtomicBool = AtomicBool::new(false);

/// True when the calls in use are the 32-bit-timespec ones (the kernel lacked
/// `io_pgetevents_time64`, or [`__force_time32_calls`] said so).
#[doc(hidden)]
pub fn __time32_calls() -> bool {
    TIME32.load(Ordering::Relaxed)
}

/// Test hook: `true` makes every later call use the 32-bit-timespec calls, as after an `ENOSYS`
/// from `io_pgetevents_time64`; `false` goes back to trying `io_pgetevents_time64` first.
/// Process-wide: nothing else should be waiting while a test flips it.
#[doc(hidden)]
pub fn __force_time32_calls(on: bool) {
    TIME32.store(on, Ordering::Relaxed);
}

/// `timeout` in the 32-bit form: each field clamped into `c_long`'s range, never wrapped.
pub(super) fn old_timespec(timeout: &__kernel_timespec) -> __kernel_old_timespec {
    let clamp = |v: i64| v.clamp(c_long::MIN.into(), c_long::MAX.into()) as c_long;
    __kernel_old_timespec {
        tv_sec: clamp(timeout.tv_sec),
        tv_nsec: clamp(timeout.tv_nsec),
    }
}

/// `io_pgetevents` (`pgetevents`), or `io_getevents` (`!pgetevents`, `usig` null), as described
/// in the module documentation.
///
/// # Safety
/// As `raw::io_getevents` / `raw::io_pgetevents`.
pub(super) unsafe fn getevents(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut __kernel_timespec,
    usig: *const __aio_sigset,
    pgetevents: bool,
) -> c_long {
    if !TIME32.load(Ordering::Relaxed) {
        // SAFETY: the caller's arguments (its contract); io_pgetevents_time64 reads the 64-bit
        // timeout and the optional sigset with fault-checked copies, and writes at most `nr`
        // events.
        let r = unsafe {
            syscall6(
                __NR_io_pgetevents_time64,
                ctx as usize,
                min_nr as usize,
                nr as usize,
                events as usize,
                timeout as usize,
                usig as usize,
            )
        };
        if r != -ENOSYS {
            return r;
        }
        TIME32.store(true, Ordering::Relaxed);
    }
    // SAFETY: a non-null timeout is readable (the caller's contract).
    let mut old = (!timeout.is_null()).then(|| old_timespec(unsafe { &*timeout }));
    let old_ptr = old
        .as_mut()
        .map_or(null_mut(), |t| t as *mut __kernel_old_timespec);
    if pgetevents {
        // SAFETY: as above, with the 32-bit timeout, which lives until the call returns.
        unsafe {
            syscall6(
                __NR_io_pgetevents,
                ctx as usize,
                min_nr as usize,
                nr as usize,
                events as usize,
                old_ptr as usize,
                usig as usize,
            )
        }
    } else {
        // SAFETY: as above.
        unsafe {
            syscall5(
                __NR_io_getevents,
                ctx as usize,
                min_nr as usize,
                nr as usize,
                events as usize,
                old_ptr as usize,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(tv_sec: i64, tv_nsec: i64) -> (c_long, c_long) {
        let t = old_timespec(&__kernel_timespec { tv_sec, tv_nsec });
        (t.tv_sec, t.tv_nsec)
    }

    #[test]
    fn timeouts_clamp_never_wrap() {
        assert_eq!(old(5, 250_000_000), (5, 250_000_000));
        assert_eq!(old(0, 999_999_999), (0, 999_999_999));
        // 2^32 seconds would wrap to 0 (no wait at all) if truncated.
        assert_eq!(old(1 << 32, 0), (i32::MAX, 0));
        assert_eq!(old(i64::MAX, i64::MAX), (i32::MAX, i32::MAX));
        assert_eq!(old((1 << 32) + 1, 7), (i32::MAX, 7));
        assert_eq!(old(i64::MIN, -1), (i32::MIN, -1));
        assert_eq!(old(-(1 << 32), 0), (i32::MIN, 0));
    }
}
