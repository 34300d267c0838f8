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
//!   to 32 bits so that it means what the 64-bit one means to the kernel ([`old_timespec`]);
//!   only a wait longer than `i32::MAX` seconds (68 years), or for ever, becomes 68 years. A
//!   kernel without AIO answers `ENOSYS` to both, so the caller still sees `ENOSYS`.
//!
//! On that fallback path the timeout is read here, in user space, so it must really be readable
//! (the functions' contract; any alignment); the time64 path hands the pointer to the kernel as
//! it is.

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

/// `timeout` in the 32-bit form, meaning to the kernel what the 64-bit one means.
///
/// `io_pgetevents_time64` reads a 64-bit timespec (`get_timespec64`: a 32-bit task's
/// `tv_nsec` keeps its low 32 bits, unsigned) and waits `ktime_set(tv_sec, tv_nsec)`: for ever
/// from `KTIME_SEC_MAX` seconds up, else `tv_sec * 10^9 + tv_nsec` in wrapping 64-bit
/// arithmetic, so `{i64::MIN, 0}` is a zero timeout (a pure poll) and `{0, 2^32}` too, and a
/// negative total is a wait that ends at once or (once the hrtimer's absolute expiry overflows)
/// never. The 32-bit form carries the same total as whole seconds and `0..10^9` nanoseconds,
/// the seconds clamped into `i32` (below `i32::MIN` seconds is as much "never" as the total;
/// above `i32::MAX`, or for ever, is 68 years, the one difference).
pub(super) fn old_timespec(timeout: &__kernel_timespec) -> __kernel_old_timespec {
    const NSEC_PER_SEC: i64 = 1_000_000_000;
    const KTIME_SEC_MAX: i64 = i64::MAX / NSEC_PER_SEC;
    let (sec, nsec) = if timeout.tv_sec >= KTIME_SEC_MAX {
        (i64::MAX, NSEC_PER_SEC - 1)
    } else {
        let total = timeout
            .tv_sec
            .wrapping_mul(NSEC_PER_SEC)
            .wrapping_add(i64::from(timeout.tv_nsec as u32));
        (
            total.div_euclid(NSEC_PER_SEC),
            total.rem_euclid(NSEC_PER_SEC),
        )
    };
    let (tv_sec, tv_nsec) = if sec > c_long::MAX.into() {
        (c_long::MAX, NSEC_PER_SEC - 1)
    } else if sec < c_long::MIN.into() {
        (c_long::MIN, 0)
    } else {
        (sec as c_long, nsec)
    };
    __kernel_old_timespec {
        tv_sec,
        // In 0..10^9: fits.
        tv_nsec: tv_nsec as c_long,
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
    // SAFETY: a non-null timeout is readable (the caller's contract), at any alignment: read
    // unaligned, by value.
    let mut old = (!timeout.is_null()).then(|| old_timespec(&unsafe { timeout.read_unaligned() }));
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
    fn timeouts_mean_what_the_kernel_makes_of_them() {
        assert_eq!(old(5, 250_000_000), (5, 250_000_000));
        assert_eq!(old(0, 999_999_999), (0, 999_999_999));
        // Nanoseconds beyond a second carry into the seconds, as in the kernel's sum.
        assert_eq!(old(1, 2_500_000_000), (3, 500_000_000));
        // 2^32 seconds would wrap to 0 (no wait at all) if truncated: 68 years instead.
        assert_eq!(old(1 << 32, 0), (i32::MAX, 999_999_999));
        assert_eq!(old((1 << 32) + 1, 7), (i32::MAX, 999_999_999));
        // KTIME_SEC_MAX seconds and up: for ever on the time64 path, 68 years here.
        assert_eq!(old(i64::MAX, i64::MAX), (i32::MAX, 999_999_999));
        // The kernel keeps tv_nsec's low 32 bits: {0, 2^32} is a zero timeout.
        assert_eq!(old(0, 1 << 32), (0, 0));
        // i64::MIN seconds times 10^9 wraps to 0 in the kernel: a zero timeout too.
        assert_eq!(old(i64::MIN, 0), (0, 0));
        // Negative totals stay negative (the same hrtimer either way).
        assert_eq!(old(-1, 0), (-1, 0));
        assert_eq!(old(0, -1), (4, 294_967_295));
        assert_eq!(old(-(1 << 33), 0), (i32::MIN, 0));
    }
}
