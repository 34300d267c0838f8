//! riscv64 syscall entry: `ecall` with the number in a7 and arguments in a0..a5; the result comes
//! back in a0.
//!
//! The kernel preserves the integer and floating-point registers, but not the vector state: the
//! V extension's registers are discarded on every system call. Inline asm can name `v0..v31`
//! only through `clobber_abi("C")`, which also covers the vector registers whenever code that
//! inlines these functions is compiled with the V extension. It over-states the integer and FP
//! clobbers (the temporaries), which costs at most a few spills around a syscall.
//!
//! Every function returns the kernel's raw value: `-4095..=-1` is a negated errno.

use core::arch::asm;
use core::ffi::c_long;

/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall0(nr: c_long) -> c_long {
    let r;
    asm!("ecall", in("a7") nr, lateout("a0") r, clobber_abi("C"), options(nostack, preserves_flags));
    r
}

/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall1(nr: c_long, a0: usize) -> c_long {
    let r;
    asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, clobber_abi("C"),
        options(nostack, preserves_flags));
    r
}

/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall2(nr: c_long, a0: usize, a1: usize) -> c_long {
    let r;
    asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, in("a1") a1, clobber_abi("C"),
        options(nostack, preserves_flags));
    r
}

/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall3(nr: c_long, a0: usize, a1: usize, a2: usize) -> c_long {
    let r;
    asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, in("a1") a1, in("a2") a2,
        clobber_abi("C"), options(nostack, preserves_flags));
    r
}

/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall4(nr: c_long, a0: usize, a1: usize, a2: usize, a3: usize) -> c_long {
    let r;
    asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, in("a1") a1, in("a2") a2,
        in("a3") a3, clobber_abi("C"), options(nostack, preserves_flags));
    r
}

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
    asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, in("a1") a1, in("a2") a2,
        in("a3") a3, in("a4") a4, clobber_abi("C"), options(nostack, preserves_flags));
    r
}

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
    asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, in("a1") a1, in("a2") a2,
        in("a3") a3, in("a4") a4, in("a5") a5, clobber_abi("C"),
        options(nostack, preserves_flags));
    r
}
