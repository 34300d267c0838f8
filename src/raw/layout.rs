//! Compile-time layout assertions for every type the kernel reads or writes: size, alignment and
//! every field offset, on each architecture module. They state the kernel's ABI independently of
//! the generator, so a generator that produced a wrong layout (say, a big-endian `iocb` for
//! ppc64le) stops the build. The ENOSYS module is checked for size only: no kernel reads it.
//!
//! What differs between the architecture modules is stated per module below, from each psABI:
//! the alignment of a 64-bit field inside a struct (4 on i386, 8 elsewhere, 32-bit arm's AAPCS
//! included) and the width of a pointer, `size_t` and `unsigned long` (4 on arm and x86, 8
//! elsewhere). Every offset in `iocb` and `io_event` is the same everywhere (the kernel pads
//! pointers to 64 bits), except that byte order swaps `aio_key` and `aio_rw_flags`.

//!
//! The file lives in `src/raw/`, beside the calls, so that a crate vendoring `arch/` and
//! `src/raw/` carries the assertions too; `const_assert_eq!` below is a two-line macro of its
//! own, like `static_assertions`' of that name, so that the folder stays free of dependencies.

use super::{aio_ring, io_event, iocb};
use core::mem::{align_of, offset_of, size_of};

/// Stops the build unless `$a == $b` (both `usize` constants).
macro_rules! const_assert_eq {
    ($a:expr, $b:expr $(,)?) => {
        const _: () = assert!($a == $b);
    };
}

const_assert_eq!(size_of::<iocb>(), 64);
const_assert_eq!(size_of::<io_event>(), 32);
const_assert_eq!(size_of::<aio_ring>(), 32);

const_assert_eq!(offset_of!(aio_ring, id), 0);
const_assert_eq!(offset_of!(aio_ring, nr), 4);
const_assert_eq!(offset_of!(aio_ring, head), 8);
const_assert_eq!(offset_of!(aio_ring, tail), 12);
const_assert_eq!(offset_of!(aio_ring, magic), 16);
const_assert_eq!(offset_of!(aio_ring, compat_features), 20);
const_assert_eq!(offset_of!(aio_ring, incompat_features), 24);
const_assert_eq!(offset_of!(aio_ring, header_length), 28);
const_assert_eq!(align_of::<aio_ring>(), 4);

#[cfg(not(linux_aio_arch = "enosys"))]
mod kernel {
    use super::super::{__aio_sigset, __kernel_timespec, aio_context_t};
    use super::*;

    use psabi::{U64_ALIGN, WORD};

    /// The 64-bit architectures: LP64, 64-bit fields 8-aligned.
    #[cfg(any(
        linux_aio_arch = "x86_64",
        linux_aio_arch = "aarch64",
        linux_aio_arch = "riscv64",
        linux_aio_arch = "powerpc64le",
        linux_aio_arch = "s390x",
    ))]
    mod psabi {
        /// Alignment of a `__u64` inside a struct.
        pub const U64_ALIGN: usize = 8;
        /// Width of a pointer, `size_t` and `unsigned long`.
        pub const WORD: usize = 8;
    }

    /// 32-bit arm (AAPCS): ILP32, but 64-bit fields 8-aligned.
    #[cfg(linux_aio_arch = "arm")]
    mod psabi {
        pub const U64_ALIGN: usize = 8;
        pub const WORD: usize = 4;
    }

    /// i386 (System V i386 psABI): ILP32, and a 64-bit field inside a struct only 4-aligned.
    #[cfg(linux_aio_arch = "x86")]
    mod psabi {
        pub const U64_ALIGN: usize = 4;
        pub const WORD: usize = 4;
    }

    const_assert_eq!(align_of::<iocb>(), U64_ALIGN);
    const_assert_eq!(offset_of!(iocb, aio_data), 0);
    #[cfg(target_endian = "little")]
    const_assert_eq!(offset_of!(iocb, aio_key), 8);
    #[cfg(target_endian = "little")]
    const_assert_eq!(offset_of!(iocb, aio_rw_flags), 12);
    #[cfg(target_endian = "big")]
    const_assert_eq!(offset_of!(iocb, aio_rw_flags), 8);
    #[cfg(target_endian = "big")]
    const_assert_eq!(offset_of!(iocb, aio_key), 12);
    const_assert_eq!(offset_of!(iocb, aio_lio_opcode), 16);
    const_assert_eq!(offset_of!(iocb, aio_reqprio), 18);
    const_assert_eq!(offset_of!(iocb, aio_fildes), 20);
    const_assert_eq!(offset_of!(iocb, aio_buf), 24);
    const_assert_eq!(offset_of!(iocb, aio_nbytes), 32);
    const_assert_eq!(offset_of!(iocb, aio_offset), 40);
    const_assert_eq!(offset_of!(iocb, aio_reserved2), 48);
    const_assert_eq!(offset_of!(iocb, aio_flags), 56);
    const_assert_eq!(offset_of!(iocb, aio_resfd), 60);

    const_assert_eq!(align_of::<io_event>(), U64_ALIGN);
    const_assert_eq!(offset_of!(io_event, data), 0);
    const_assert_eq!(offset_of!(io_event, obj), 8);
    const_assert_eq!(offset_of!(io_event, res), 16);
    const_assert_eq!(offset_of!(io_event, res2), 24);

    const_assert_eq!(size_of::<__aio_sigset>(), 2 * WORD);
    const_assert_eq!(align_of::<__aio_sigset>(), WORD);
    const_assert_eq!(offset_of!(__aio_sigset, sigmask), 0);
    const_assert_eq!(offset_of!(__aio_sigset, sigsetsize), WORD);

    // 64-bit seconds and nanoseconds on every architecture (the time64 ABI).
    const_assert_eq!(size_of::<__kernel_timespec>(), 16);
    const_assert_eq!(align_of::<__kernel_timespec>(), U64_ALIGN);
    const_assert_eq!(offset_of!(__kernel_timespec, tv_sec), 0);
    const_assert_eq!(offset_of!(__kernel_timespec, tv_nsec), 8);

    // The kernel's `unsigned long`.
    const_assert_eq!(size_of::<aio_context_t>(), WORD);

    /// The 32-bit `struct timespec` of `io_getevents` and `io_pgetevents` on 32-bit
    /// architectures, which the raw layer falls back to before Linux 5.1.
    #[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
    mod time32 {
        use super::super::super::__kernel_old_timespec;
        use super::*;

        const_assert_eq!(size_of::<__kernel_old_timespec>(), 8);
        const_assert_eq!(align_of::<__kernel_old_timespec>(), 4);
        const_assert_eq!(offset_of!(__kernel_old_timespec, tv_sec), 0);
        const_assert_eq!(offset_of!(__kernel_old_timespec, tv_nsec), 4);
    }
}
