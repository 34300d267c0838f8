//! powerpc64 (little-endian) syscall entry: `sc` with the number in r0 and arguments in r3..r8;
//! the result comes back in r3.
//!
//! The odd convention: on failure the kernel sets the summary-overflow bit of cr0 (cr0.SO) and
//! leaves a POSITIVE errno in r3. The `bns` below skips the negation on success, so every
//! function returns what the other architectures return: `-4095..=-1` is a negated errno.
//!
//! The kernel clobbers r0, r4..r12 (the argument registers it does not return in, and the
//! volatile r9..r12), cr0, ctr and xer; all are declared. `preserves_flags` is not claimed,
//! since cr0 and xer are written.

use core::arch::asm;
use core::ffi::c_long;

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall0(nr: c_long) -> c_long {
    let r: c_long;
    // SAFETY: the caller vouches for the call (this function's contract). Every register the
    // kernel may change (r0, r3..r12, cr0, ctr, xer) is declared.
    unsafe {
        asm!(
            "sc",
            "bns 2f",
            "neg 3, 3",
            "2:",
            inlateout("r0") nr => _,
            lateout("r3") r,
            lateout("r4") _,
            lateout("r5") _,
            lateout("r6") _,
            lateout("r7") _,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            lateout("r12") _,
            lateout("cr0") _,
            lateout("ctr") _,
            lateout("xer") _,
            options(nostack),
        );
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall1(nr: c_long, a0: usize) -> c_long {
    let r: c_long;
    // SAFETY: the caller vouches for the call (this function's contract). Every register the
    // kernel may change (r0, r3..r12, cr0, ctr, xer) is declared.
    unsafe {
        asm!(
            "sc",
            "bns 2f",
            "neg 3, 3",
            "2:",
            inlateout("r0") nr => _,
            inlateout("r3") a0 => r,
            lateout("r4") _,
            lateout("r5") _,
            lateout("r6") _,
            lateout("r7") _,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            lateout("r12") _,
            lateout("cr0") _,
            lateout("ctr") _,
            lateout("xer") _,
            options(nostack),
        );
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall2(nr: c_long, a0: usize, a1: usize) -> c_long {
    let r: c_long;
    // SAFETY: the caller vouches for the call (this function's contract). Every register the
    // kernel may change (r0, r3..r12, cr0, ctr, xer) is declared.
    unsafe {
        asm!(
            "sc",
            "bns 2f",
            "neg 3, 3",
            "2:",
            inlateout("r0") nr => _,
            inlateout("r3") a0 => r,
            inlateout("r4") a1 => _,
            lateout("r5") _,
            lateout("r6") _,
            lateout("r7") _,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            lateout("r12") _,
            lateout("cr0") _,
            lateout("ctr") _,
            lateout("xer") _,
            options(nostack),
        );
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall3(nr: c_long, a0: usize, a1: usize, a2: usize) -> c_long {
    let r: c_long;
    // SAFETY: the caller vouches for the call (this function's contract). Every register the
    // kernel may change (r0, r3..r12, cr0, ctr, xer) is declared.
    unsafe {
        asm!(
            "sc",
            "bns 2f",
            "neg 3, 3",
            "2:",
            inlateout("r0") nr => _,
            inlateout("r3") a0 => r,
            inlateout("r4") a1 => _,
            inlateout("r5") a2 => _,
            lateout("r6") _,
            lateout("r7") _,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            lateout("r12") _,
            lateout("cr0") _,
            lateout("ctr") _,
            lateout("xer") _,
            options(nostack),
        );
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall4(nr: c_long, a0: usize, a1: usize, a2: usize, a3: usize) -> c_long {
    let r: c_long;
    // SAFETY: the caller vouches for the call (this function's contract). Every register the
    // kernel may change (r0, r3..r12, cr0, ctr, xer) is declared.
    unsafe {
        asm!(
            "sc",
            "bns 2f",
            "neg 3, 3",
            "2:",
            inlateout("r0") nr => _,
            inlateout("r3") a0 => r,
            inlateout("r4") a1 => _,
            inlateout("r5") a2 => _,
            inlateout("r6") a3 => _,
            lateout("r7") _,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            lateout("r12") _,
            lateout("cr0") _,
            lateout("ctr") _,
            lateout("xer") _,
            options(nostack),
        );
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
    let r: c_long;
    // SAFETY: the caller vouches for the call (this function's contract). Every register the
    // kernel may change (r0, r3..r12, cr0, ctr, xer) is declared.
    unsafe {
        asm!(
            "sc",
            "bns 2f",
            "neg 3, 3",
            "2:",
            inlateout("r0") nr => _,
            inlateout("r3") a0 => r,
            inlateout("r4") a1 => _,
            inlateout("r5") a2 => _,
            inlateout("r6") a3 => _,
            inlateout("r7") a4 => _,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            lateout("r12") _,
            lateout("cr0") _,
            lateout("ctr") _,
            lateout("xer") _,
            options(nostack),
        );
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
    let r: c_long;
    // SAFETY: the caller vouches for the call (this function's contract). Every register the
    // kernel may change (r0, r3..r12, cr0, ctr, xer) is declared.
    unsafe {
        asm!(
            "sc",
            "bns 2f",
            "neg 3, 3",
            "2:",
            inlateout("r0") nr => _,
            inlateout("r3") a0 => r,
            inlateout("r4") a1 => _,
            inlateout("r5") a2 => _,
            inlateout("r6") a3 => _,
            inlateout("r7") a4 => _,
            inlateout("r8") a5 => _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            lateout("r12") _,
            lateout("cr0") _,
            lateout("ctr") _,
            lateout("xer") _,
            options(nostack),
        );
    }
    r
}
