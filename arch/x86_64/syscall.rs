//! x86_64 syscall entry: `syscall` with the number in rax and arguments in rdi, rsi, rdx, r10,
//! r8, r9; the result comes back in rax. The instruction itself overwrites rcx (return address)
//! and r11 (saved rflags); the kernel preserves every other register.
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
    // SAFETY: the caller vouches for the call (this function's contract). The asm writes only what
    // it declares: rax, and rcx and r11, which the instruction itself overwrites.
    unsafe {
        asm!("syscall", inlateout("rax") nr => r,
            lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall1(nr: c_long, a0: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The asm writes only what
    // it declares: rax, and rcx and r11, which the instruction itself overwrites.
    unsafe {
        asm!("syscall", inlateout("rax") nr => r, in("rdi") a0,
            lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall2(nr: c_long, a0: usize, a1: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The asm writes only what
    // it declares: rax, and rcx and r11, which the instruction itself overwrites.
    unsafe {
        asm!("syscall", inlateout("rax") nr => r, in("rdi") a0, in("rsi") a1,
            lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall3(nr: c_long, a0: usize, a1: usize, a2: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The asm writes only what
    // it declares: rax, and rcx and r11, which the instruction itself overwrites.
    unsafe {
        asm!("syscall", inlateout("rax") nr => r, in("rdi") a0, in("rsi") a1, in("rdx") a2,
            lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall4(nr: c_long, a0: usize, a1: usize, a2: usize, a3: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The asm writes only what
    // it declares: rax, and rcx and r11, which the instruction itself overwrites.
    unsafe {
        asm!("syscall", inlateout("rax") nr => r, in("rdi") a0, in("rsi") a1, in("rdx") a2,
            in("r10") a3, lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
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
    // SAFETY: the caller vouches for the call (this function's contract). The asm writes only what
    // it declares: rax, and rcx and r11, which the instruction itself overwrites.
    unsafe {
        asm!("syscall", inlateout("rax") nr => r, in("rdi") a0, in("rsi") a1, in("rdx") a2,
            in("r10") a3, in("r8") a4, lateout("rcx") _, lateout("r11") _,
            options(nostack, preserves_flags));
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
    // SAFETY: the caller vouches for the call (this function's contract). The asm writes only what
    // it declares: rax, and rcx and r11, which the instruction itself overwrites.
    unsafe {
        asm!("syscall", inlateout("rax") nr => r, in("rdi") a0, in("rsi") a1, in("rdx") a2,
            in("r10") a3, in("r8") a4, in("r9") a5, lateout("rcx") _, lateout("r11") _,
            options(nostack, preserves_flags));
    }
    r
}
