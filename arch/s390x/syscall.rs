//! s390x syscall entry: `svc 0` with the number in r1 and arguments in r2..r7; the result comes
//! back in r2. The kernel saves every general register and the PSW at entry and, on return,
//! reloads all of them but r2 (arch/s390/kernel/entry.S: `lmg %r0,%r15` from the saved frame,
//! then `lpswe` of the saved PSW, which carries the condition code, the one flag `asm!`'s
//! `preserves_flags` speaks of on s390x). Floating-point and vector registers are not touched.
//!
//! (`svc N` can encode a number below 256 in the instruction itself; `svc 0` with the number in
//! r1 works for every number, and is what glibc does for the others.)
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
    // r2, which is declared, and restores every other register and the condition code.
    unsafe {
        asm!("svc 0", in("r1") nr, lateout("r2") r, options(nostack, preserves_flags));
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
    // r2, which is declared, and restores every other register and the condition code.
    unsafe {
        asm!("svc 0", in("r1") nr, inlateout("r2") a0 => r, options(nostack, preserves_flags));
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
    // r2, which is declared, and restores every other register and the condition code.
    unsafe {
        asm!("svc 0", in("r1") nr, inlateout("r2") a0 => r, in("r3") a1,
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
    // r2, which is declared, and restores every other register and the condition code.
    unsafe {
        asm!("svc 0", in("r1") nr, inlateout("r2") a0 => r, in("r3") a1, in("r4") a2,
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
    // r2, which is declared, and restores every other register and the condition code.
    unsafe {
        asm!("svc 0", in("r1") nr, inlateout("r2") a0 => r, in("r3") a1, in("r4") a2,
            in("r5") a3, options(nostack, preserves_flags));
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
    // r2, which is declared, and restores every other register and the condition code.
    unsafe {
        asm!("svc 0", in("r1") nr, inlateout("r2") a0 => r, in("r3") a1, in("r4") a2,
            in("r5") a3, in("r6") a4, options(nostack, preserves_flags));
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
    // r2, which is declared, and restores every other register and the condition code.
    unsafe {
        asm!("svc 0", in("r1") nr, inlateout("r2") a0 => r, in("r3") a1, in("r4") a2,
            in("r5") a3, in("r6") a4, in("r7") a5, options(nostack, preserves_flags));
    }
    r
}
