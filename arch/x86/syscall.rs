//! 32-bit x86 syscall entry: `int 0x80` with the number in eax and arguments in ebx, ecx, edx,
//! esi, edi, ebp; the result comes back in eax. The kernel saves every register (the CPU pushes
//! eflags, the entry code the rest) and restores all but eax, returning with `iret`, which
//! reloads eflags from the saved frame (arch/x86/entry/entry_32.S `entry_INT80_32`, and
//! entry_64_compat.S for a 32-bit program on a 64-bit kernel). `int 0x80` works on every x86
//! kernel; the vDSO's faster `__kernel_vsyscall` is not used (an AIO system call costs far more
//! than the trap).
//!
//! The odd convention: `asm!` refuses two of the argument registers as operands. esi is LLVM's
//! base pointer and ebp its frame pointer, so
//! - with four or five arguments, the fourth is handed over in a register of the compiler's
//!   choosing and exchanged with esi around the trap (the compiler's esi is back afterwards);
//! - with six, the fourth and sixth go through a small array whose address is in eax (which
//!   carries the result anyway): the asm saves ebp and esi on the stack, loads them and the
//!   number from the array, traps, and restores them. That pushes, so `nostack` is not claimed.
//!
//! ebx, which some ABIs keep for the GOT pointer, is an ordinary operand in Rust (LLVM spills it
//! around the asm in position-independent code).
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
    // eax, which is declared, and restores every other register and eflags.
    unsafe {
        asm!("int 0x80", inlateout("eax") nr => r, options(nostack, preserves_flags));
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
    // eax, which is declared, and restores every other register and eflags.
    unsafe {
        asm!("int 0x80", inlateout("eax") nr => r, in("ebx") a0,
            options(nostack, preserves_flags));
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
    // eax, which is declared, and restores every other register and eflags.
    unsafe {
        asm!("int 0x80", inlateout("eax") nr => r, in("ebx") a0, in("ecx") a1,
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
    // eax, which is declared, and restores every other register and eflags.
    unsafe {
        asm!("int 0x80", inlateout("eax") nr => r, in("ebx") a0, in("ecx") a1, in("edx") a2,
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
    // eax, which is declared, and restores every other register and eflags; the second xchg
    // gives esi and the `a3` register back their values (xchg leaves the flags alone).
    unsafe {
        asm!(
            "xchg esi, {a3}",
            "int 0x80",
            "xchg esi, {a3}",
            a3 = in(reg) a3,
            inlateout("eax") nr => r,
            in("ebx") a0,
            in("ecx") a1,
            in("edx") a2,
            options(nostack, preserves_flags),
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
    let r;
    // SAFETY: as syscall4, with the fifth argument in edi (an ordinary operand).
    unsafe {
        asm!(
            "xchg esi, {a3}",
            "int 0x80",
            "xchg esi, {a3}",
            a3 = in(reg) a3,
            inlateout("eax") nr => r,
            in("ebx") a0,
            in("ecx") a1,
            in("edx") a2,
            in("edi") a4,
            options(nostack, preserves_flags),
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
    let r;
    // eax points here on entry: what cannot be an operand, and the number.
    let rest: [usize; 3] = [a3, a5, nr as usize];
    // SAFETY: the caller vouches for the call (this function's contract). `rest` is live and
    // readable for the three words loaded. ebp and esi are pushed before they are loaded and
    // popped after the trap, so both (and esp) are the compiler's again when the asm ends; the
    // kernel writes only eax, declared as the result, and restores the other registers and
    // eflags. push, mov and pop leave the flags alone.
    unsafe {
        asm!(
            "push ebp",
            "push esi",
            "mov esi, [eax]",
            "mov ebp, [eax + 4]",
            "mov eax, [eax + 8]",
            "int 0x80",
            "pop esi",
            "pop ebp",
            inlateout("eax") rest.as_ptr() => r,
            in("ebx") a0,
            in("ecx") a1,
            in("edx") a2,
            in("edi") a4,
            options(preserves_flags),
        );
    }
    r
}
