//! Every target without an architecture module: other architectures (mips, sparc, loongarch64,
//! ...), the x32 ABI, big-endian powerpc64 and arm, non-Linux systems, bare metal
//! (`x86_64-unknown-none`), or any target built with `LINUX_AIO_FORCE_ENOSYS=1`.
//!
//! The crate compiles unchanged, and every call answers `-ENOSYS` without issuing a system call,
//! exactly as a Linux kernel built without `CONFIG_AIO` answers. Nothing here is borrowed from
//! another architecture: the types below carry the UAPI field names so that code compiles, but
//! no kernel ever sees them, and the syscall numbers are placeholders that are never used.

#![allow(non_camel_case_types, non_upper_case_globals)]

use core::ffi::c_long;

/// The architecture module in use.
pub const ARCH: &str = "enosys";

/// Linux's `ENOSYS`: 38 on the generic syscall ABI, 89 on MIPS and 90 on SPARC (the raw layer
/// speaks Linux errno values on every target, including non-Linux ones).
#[cfg(any(
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6"
))]
pub const ENOSYS: c_long = 89;
/// Linux's `ENOSYS`: 38 on the generic syscall ABI, 89 on MIPS and 90 on SPARC (the raw layer
/// speaks Linux errno values on every target, including non-Linux ones).
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
pub const ENOSYS: c_long = 90;
/// Linux's `ENOSYS`: 38 on the generic syscall ABI, 89 on MIPS and 90 on SPARC (the raw layer
/// speaks Linux errno values on every target, including non-Linux ones).
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
pub const ENOSYS: c_long = 38;

/// Placeholder: never passed to a kernel.
pub const __NR_io_setup: c_long = -1;
/// Placeholder: never passed to a kernel.
pub const __NR_io_destroy: c_long = -1;
/// Placeholder: never passed to a kernel.
pub const __NR_io_submit: c_long = -1;
/// Placeholder: never passed to a kernel.
pub const __NR_io_cancel: c_long = -1;
/// Placeholder: never passed to a kernel.
pub const __NR_io_getevents: c_long = -1;
/// Placeholder: never passed to a kernel.
pub const __NR_io_pgetevents: c_long = -1;
/// Placeholder: never passed to a kernel.
#[doc(hidden)]
pub const __NR_read: c_long = -1;
/// Placeholder: never passed to a kernel.
#[doc(hidden)]
pub const __NR_write: c_long = -1;
/// Placeholder: never passed to a kernel.
#[doc(hidden)]
pub const __NR_close: c_long = -1;
/// Placeholder: never passed to a kernel.
#[doc(hidden)]
pub const __NR_pipe2: c_long = -1;
/// Placeholder: never passed to a kernel.
#[doc(hidden)]
pub const __NR_mmap: c_long = -1;
/// Placeholder: never passed to a kernel.
#[doc(hidden)]
pub const __NR_munmap: c_long = -1;

pub type __s16 = i16;
pub type __u16 = u16;
pub type __u32 = u32;
pub type __s64 = i64;
pub type __u64 = u64;
pub type __kernel_rwf_t = i32;
pub type __kernel_time64_t = i64;
pub type aio_context_t = usize;

/// Same field names as the UAPI `struct io_event`; never filled by a kernel here.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, Hash, PartialEq, Eq)]
pub struct io_event {
    pub data: __u64,
    pub obj: __u64,
    pub res: __s64,
    pub res2: __s64,
}

/// Same field names as the UAPI `struct iocb`; never read by a kernel here.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, Hash, PartialEq, Eq)]
pub struct iocb {
    pub aio_data: __u64,
    pub aio_key: __u32,
    pub aio_rw_flags: __kernel_rwf_t,
    pub aio_lio_opcode: __u16,
    pub aio_reqprio: __s16,
    pub aio_fildes: __u32,
    pub aio_buf: __u64,
    pub aio_nbytes: __u64,
    pub aio_offset: __s64,
    pub aio_reserved2: __u64,
    pub aio_flags: __u32,
    pub aio_resfd: __u32,
}

/// Same field names as the UAPI `struct __kernel_timespec`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, Hash, PartialEq, Eq)]
pub struct __kernel_timespec {
    pub tv_sec: __kernel_time64_t,
    pub tv_nsec: i64,
}

#[doc(hidden)]
/// Returns `-ENOSYS`; issues no system call.
///
/// # Safety
/// Always safe to call; `unsafe` only to match the architecture modules.
#[inline]
pub unsafe fn syscall0(_nr: c_long) -> c_long {
    -ENOSYS
}

#[doc(hidden)]
/// Returns `-ENOSYS`; issues no system call.
///
/// # Safety
/// Always safe to call; `unsafe` only to match the architecture modules.
#[inline]
pub unsafe fn syscall1(_nr: c_long, _a0: usize) -> c_long {
    -ENOSYS
}

#[doc(hidden)]
/// Returns `-ENOSYS`; issues no system call.
///
/// # Safety
/// Always safe to call; `unsafe` only to match the architecture modules.
#[inline]
pub unsafe fn syscall2(_nr: c_long, _a0: usize, _a1: usize) -> c_long {
    -ENOSYS
}

#[doc(hidden)]
/// Returns `-ENOSYS`; issues no system call.
///
/// # Safety
/// Always safe to call; `unsafe` only to match the architecture modules.
#[inline]
pub unsafe fn syscall3(_nr: c_long, _a0: usize, _a1: usize, _a2: usize) -> c_long {
    -ENOSYS
}

#[doc(hidden)]
/// Returns `-ENOSYS`; issues no system call.
///
/// # Safety
/// Always safe to call; `unsafe` only to match the architecture modules.
#[inline]
pub unsafe fn syscall4(_nr: c_long, _a0: usize, _a1: usize, _a2: usize, _a3: usize) -> c_long {
    -ENOSYS
}

#[doc(hidden)]
/// Returns `-ENOSYS`; issues no system call.
///
/// # Safety
/// Always safe to call; `unsafe` only to match the architecture modules.
#[inline]
pub unsafe fn syscall5(
    _nr: c_long,
    _a0: usize,
    _a1: usize,
    _a2: usize,
    _a3: usize,
    _a4: usize,
) -> c_long {
    -ENOSYS
}

#[doc(hidden)]
/// Returns `-ENOSYS`; issues no system call.
///
/// # Safety
/// Always safe to call; `unsafe` only to match the architecture modules.
#[inline]
#[allow(clippy::too_many_arguments)]
pub unsafe fn syscall6(
    _nr: c_long,
    _a0: usize,
    _a1: usize,
    _a2: usize,
    _a3: usize,
    _a4: usize,
    _a5: usize,
) -> c_long {
    -ENOSYS
}
