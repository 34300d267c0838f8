//! aarch64 syscall entry: `svc 0` with the number in x8 and arguments in x0..x5; the result
//! comes back in x0. The kernel preserves every other register, and the flags.
//!
//! Every function returns the kernel's raw value: `-4095..=-1` is a negated errno.

use core::arch::asm;
use core::ffi::c_long;

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall0(nr: c_long) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes only
    // x0, which is declared, and restores every other register and the flags.
    unsafe {
        asm!("svc 0", in("x8") nr, lateout("x0") r, options(nostack, preserves_flags));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall1(nr: c_long, a0: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes only
    // x0, which is declared, and restores every other register and the flags.
    unsafe {
        asm!("svc 0", in("x8") nr, inlateout("x0") a0 => r, options(nostack, preserves_flags));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall2(nr: c_long, a0: usize, a1: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes only
    // x0, which is declared, and restores every other register and the flags.
    unsafe {
        asm!("svc 0", in("x8") nr, inlateout("x0") a0 => r, in("x1") a1,
            options(nostack, preserves_flags));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall3(nr: c_long, a0: usize, a1: usize, a2: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes only
    // x0, which is declared, and restores every other register and the flags.
    unsafe {
        asm!("svc 0", in("x8") nr, inlateout("x0") a0 => r, in("x1") a1, in("x2") a2,
            options(nostack, preserves_flags));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall4(nr: c_long, a0: usize, a1: usize, a2: usize, a3: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes only
    // x0, which is declared, and restores every other register and the flags.
    unsafe {
        asm!("svc 0", in("x8") nr, inlateout("x0") a0 => r, in("x1") a1, in("x2") a2,
            in("x3") a3, options(nostack, preserves_flags));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall5(
    nr: c_long,
    a0: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes only
    // x0, which is declared, and restores every other register and the flags.
    unsafe {
        asm!("svc 0", in("x8") nr, inlateout("x0") a0 => r, in("x1") a1, in("x2") a2,
            in("x3") a3, in("x4") a4, options(nostack, preserves_flags));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall6(
    nr: c_long,
    a0: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes only
    // x0, which is declared, and restores every other register and the flags.
    unsafe {
        asm!("svc 0", in("x8") nr, inlateout("x0") a0 => r, in("x1") a1, in("x2") a2,
            in("x3") a3, in("x4") a4, in("x5") a5, options(nostack, preserves_flags));
    }
    r
}
