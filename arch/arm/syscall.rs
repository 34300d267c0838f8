//! 32-bit arm (EABI) syscall entry: `svc 0` with the number in r7 and arguments in r0..r5; the
//! result comes back in r0. The kernel saves every register at entry and restores all but r0
//! on return (arch/arm/kernel/entry-common.S, `ret_fast_syscall` / `restore_user_regs`), the
//! flags included: `svc` saves CPSR in SPSR_svc, and the return (`movs pc, lr`) moves it back.
//! The VFP/NEON registers and FPSCR are not touched by a system call.
//!
//! The odd convention: r7 is the frame pointer in Thumb code (`thumbv7neon-*`, or any arm
//! target built with `-C target-feature=+thumb-mode`), and `asm!` refuses it as an operand
//! there. Stable Rust does not tell a crate which instruction set it is compiled for (the
//! `thumb-mode` target feature is not visible to `cfg` on stable), so one sequence serves both:
//! the number travels in a register of the compiler's choosing, and the asm saves r7 in another,
//! moves the number in, traps, and restores r7 (rustix's Thumb entry does the same). In ARM (A32)
//! code, where r7 is an ordinary register, the compiler may pick r7 itself for either operand,
//! and the sequence is still right: if the number is in r7, r7 ends holding it, as an input
//! must; if `saved` is r7, r7 is an output the compiler expects to lose. While the number is in
//! r7, only something walking frame pointers at that instant (a sampling profiler) could see a
//! bogus frame; the kernel does not use it, and a signal handler that runs on the way back gets
//! a frame of its own.
//!
//! Every function returns the kernel's raw value: `-4095..=-1` is a negated errno.

use core::arch::asm;
use core::ffi::c_long;

/// `svc 0` with `nr` in r7 and `operands` (the result, then the argument registers) around it;
/// see the module documentation for the r7 dance. `saved` is a plain `out`, allocated apart
/// from every input.
macro_rules! svc {
    ($nr:expr, $($operands:tt)*) => {
        asm!(
            "mov {saved}, r7",
            "mov r7, {nr}",
            "svc 0",
            "mov r7, {saved}",
            nr = in(reg) $nr,
            saved = out(reg) _,
            $($operands)*
            options(nostack, preserves_flags)
        )
    };
}

#[doc(hidden)]
/// # Safety
/// `nr` and the arguments must form a valid system call.
#[inline]
pub unsafe fn syscall0(nr: c_long) -> c_long {
    let r;
    // SAFETY: the caller vouches for the call (this function's contract). The kernel writes only
    // r0, which is declared, and restores every other register and the flags; r7 is put back
    // before the asm ends.
    unsafe {
        svc!(nr, lateout("r0") r,);
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
    // r0, which is declared, and restores every other register and the flags; r7 is put back
    // before the asm ends.
    unsafe {
        svc!(nr, inlateout("r0") a0 => r,);
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
    // r0, which is declared, and restores every other register and the flags; r7 is put back
    // before the asm ends.
    unsafe {
        svc!(nr, inlateout("r0") a0 => r, in("r1") a1,);
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
    // r0, which is declared, and restores every other register and the flags; r7 is put back
    // before the asm ends.
    unsafe {
        svc!(nr, inlateout("r0") a0 => r, in("r1") a1, in("r2") a2,);
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
    // r0, which is declared, and restores every other register and the flags; r7 is put back
    // before the asm ends.
    unsafe {
        svc!(nr, inlateout("r0") a0 => r, in("r1") a1, in("r2") a2, in("r3") a3,);
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
    // r0, which is declared, and restores every other register and the flags; r7 is put back
    // before the asm ends.
    unsafe {
        svc!(nr, inlateout("r0") a0 => r, in("r1") a1, in("r2") a2, in("r3") a3, in("r4") a4,);
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
    // r0, which is declared, and restores every other register and the flags; r7 is put back
    // before the asm ends.
    unsafe {
        svc!(nr, inlateout("r0") a0 => r, in("r1") a1, in("r2") a2, in("r3") a3, in("r4") a4,
            in("r5") a5,);
    }
    r
}
