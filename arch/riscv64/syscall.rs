//! riscv64 syscall entry: `ecall` with the number in a7 and arguments in a0..a5; the result comes
//! back in a0.
//!
//! What the kernel keeps (Documentation/arch/riscv/vector.rst, "Vector Register State Across
//! System Calls"): every integer register but a0, and the floating-point state. What it does not:
//! "Executing a system call causes all caller-saved vector registers (v0-v31, vl, vtype) and
//! vstart to become unspecified" (Linux discards them on entry). For code built with the V
//! extension that means:
//! - `clobber_abi("C")` declares v0..v31 clobbered (all caller-saved in the C ABI). It also
//!   declares the integer and FP temporaries, which the kernel in fact keeps: at most a few
//!   spills around a system call, which costs hundreds of nanoseconds anyway.
//! - `preserves_flags` is not claimed: on RISC-V it promises that fflags and the vector CSRs
//!   (vtype, vl, vcsr) survive the asm, and vl and vtype do not.
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
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes a0
    // (declared) and may discard the vector registers (clobber_abi) and vector CSRs (no
    // preserves_flags).
    unsafe {
        asm!("ecall", in("a7") nr, lateout("a0") r, clobber_abi("C"), options(nostack));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall1(nr: c_long, a0: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes a0
    // (declared) and may discard the vector registers (clobber_abi) and vector CSRs (no
    // preserves_flags).
    unsafe {
        asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, clobber_abi("C"),
            options(nostack));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall2(nr: c_long, a0: usize, a1: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes a0
    // (declared) and may discard the vector registers (clobber_abi) and vector CSRs (no
    // preserves_flags).
    unsafe {
        asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, in("a1") a1, clobber_abi("C"),
            options(nostack));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall3(nr: c_long, a0: usize, a1: usize, a2: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes a0
    // (declared) and may discard the vector registers (clobber_abi) and vector CSRs (no
    // preserves_flags).
    unsafe {
        asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, in("a1") a1, in("a2") a2,
            clobber_abi("C"), options(nostack));
    }
    r
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall4(nr: c_long, a0: usize, a1: usize, a2: usize, a3: usize) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes a0
    // (declared) and may discard the vector registers (clobber_abi) and vector CSRs (no
    // preserves_flags).
    unsafe {
        asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, in("a1") a1, in("a2") a2,
            in("a3") a3, clobber_abi("C"), options(nostack));
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
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes a0
    // (declared) and may discard the vector registers (clobber_abi) and vector CSRs (no
    // preserves_flags).
    unsafe {
        asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, in("a1") a1, in("a2") a2,
            in("a3") a3, in("a4") a4, clobber_abi("C"), options(nostack));
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
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes a0
    // (declared) and may discard the vector registers (clobber_abi) and vector CSRs (no
    // preserves_flags).
    unsafe {
        asm!("ecall", in("a7") nr, inlateout("a0") a0 => r, in("a1") a1, in("a2") a2,
            in("a3") a3, in("a4") a4, in("a5") a5, clobber_abi("C"),
            options(nostack));
    }
    r
}
