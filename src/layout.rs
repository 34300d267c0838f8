//! Compile-time layout assertions for every type the kernel reads or writes: size, alignment and
//! every field offset, on each architecture module. They state the kernel's ABI independently of
//! the generator, so a generator that produced a wrong layout (say, a big-endian `iocb` for
//! ppc64le) stops the build. The ENOSYS module is checked for size only: no kernel reads it.

use crate::raw::{aio_ring, io_event, iocb};
use core::mem::{align_of, offset_of, size_of};
use static_assertions::const_assert_eq;

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
    use super::*;
    use crate::raw::{__aio_sigset, __kernel_timespec, aio_context_t};

    const_assert_eq!(align_of::<iocb>(), 8);
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

    const_assert_eq!(align_of::<io_event>(), 8);
    const_assert_eq!(offset_of!(io_event, data), 0);
    const_assert_eq!(offset_of!(io_event, obj), 8);
    const_assert_eq!(offset_of!(io_event, res), 16);
    const_assert_eq!(offset_of!(io_event, res2), 24);

    const_assert_eq!(size_of::<__aio_sigset>(), 16);
    const_assert_eq!(align_of::<__aio_sigset>(), 8);
    const_assert_eq!(offset_of!(__aio_sigset, sigmask), 0);
    const_assert_eq!(offset_of!(__aio_sigset, sigsetsize), 8);

    const_assert_eq!(size_of::<__kernel_timespec>(), 16);
    const_assert_eq!(align_of::<__kernel_timespec>(), 8);
    const_assert_eq!(offset_of!(__kernel_timespec, tv_sec), 0);
    const_assert_eq!(offset_of!(__kernel_timespec, tv_nsec), 8);

    const_assert_eq!(size_of::<aio_context_t>(), 8);
}
