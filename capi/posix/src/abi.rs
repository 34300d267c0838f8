//! The C types of `<aio.h>` and `<signal.h>` that cross this library's boundary, as glibc and
//! musl lay them out on Linux. tests/layout.rs compares every size, alignment, field offset and
//! constant here with the C compiler's view of the target's headers (probe/probe.c).
//!
//! One `struct aiocb` serves glibc and musl alike: their public fields sit at the same offsets,
//! and so do the private words used here (glibc's `__error_code` and `__return_value` are musl's
//! `__err` and `__ret`; the 32 bytes after `aio_offset` are glibc's `__glibc_reserved` and
//! musl's `__next`, `__prev` and padding). On 32-bit glibc targets `struct aiocb` has a 32-bit
//! `aio_offset` followed by 4 bytes of padding where `struct aiocb64` has a 64-bit one, at the
//! same place: the layouts are identical, only the calls read the offset differently (see
//! `cb::offset`).

#![allow(non_camel_case_types)]

use core::ffi::{c_int, c_void};

/// `union sigval`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union sigval {
    pub sival_int: c_int,
    pub sival_ptr: *mut c_void,
}

impl sigval {
    pub const ZERO: sigval = sigval {
        sival_ptr: core::ptr::null_mut(),
    };
}

/// A `SIGEV_THREAD` notification function.
pub type NotifyFunction = unsafe extern "C" fn(sigval);

/// The `_sigev_thread` member of `struct sigevent`'s union.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sigev_thread {
    pub function: Option<NotifyFunction>,
    pub attribute: *mut c_void,
}

/// `struct sigevent` is 64 bytes (`__SIGEV_MAX_SIZE`); the union fills what the first three
/// members leave.
const SIGEV_PAD: usize = 16
    - if cfg!(target_pointer_width = "64") {
        4
    } else {
        3
    };

/// `struct sigevent`'s union (`_sigev_un`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union sigev_un {
    pub pad: [c_int; SIGEV_PAD],
    /// `sigev_notify_thread_id` (`SIGEV_THREAD_ID`).
    pub tid: c_int,
    pub thread: sigev_thread,
}

/// `struct sigevent`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sigevent {
    pub sigev_value: sigval,
    pub sigev_signo: c_int,
    pub sigev_notify: c_int,
    pub sigev_un: sigev_un,
}

/// `struct aiocb` (and `struct aiocb64`): the public members, glibc's and musl's private ones
/// under neutral names.
#[repr(C)]
pub struct aiocb {
    pub aio_fildes: c_int,
    pub aio_lio_opcode: c_int,
    pub aio_reqprio: c_int,
    pub aio_buf: *mut c_void,
    pub aio_nbytes: usize,
    pub aio_sigevent: sigevent,
    /// glibc's `__next_prio`, musl's `__td`: unused here.
    pub __private0: *mut c_void,
    /// glibc's `__abs_prio` and `__policy`, musl's `__lock`: unused here.
    pub __private1: [c_int; 2],
    /// The error status (glibc's `__error_code`, musl's `__err`): `EINPROGRESS` while the
    /// request runs, then 0 or the error. What `aio_error` returns.
    pub __error_code: c_int,
    /// The return status (glibc's `__return_value`, musl's `__ret`). What `aio_return` returns.
    pub __return_value: isize,
    /// `off_t` (glibc without `_FILE_OFFSET_BITS=64` on 32-bit targets: 32 bits and 4 bytes of
    /// padding) or `off64_t`. Read through `cb::offset`.
    pub aio_offset: Offset,
    /// glibc's `__glibc_reserved`, musl's `__next`, `__prev` and padding: this library's
    /// bookkeeping (`cb::Private`).
    pub __reserved: [u32; 8],
}

/// `aio_offset`'s type: on 32-bit glibc targets two words, because glibc's `struct aiocb` has
/// no 64-bit member there and is only 4-aligned (on arm too, where `struct aiocb64` is
/// 8-aligned): a control block may sit at any 4-aligned address, and Rust must not assume more.
#[cfg(all(target_pointer_width = "32", target_env = "gnu"))]
pub type Offset = [u32; 2];
#[cfg(not(all(target_pointer_width = "32", target_env = "gnu")))]
pub type Offset = i64;

/// `siginfo_t` as `rt_sigqueueinfo(2)` takes it, with the members an `SI_ASYNCIO` signal
/// carries (the kernel's `_rt` layout: `si_pid`, `si_uid`, `si_value`). 128 bytes.
#[repr(C)]
pub struct siginfo {
    pub si_signo: c_int,
    pub si_errno: c_int,
    pub si_code: c_int,
    /// The union is pointer-aligned.
    #[cfg(target_pointer_width = "64")]
    pub __pad0: c_int,
    pub si_pid: c_int,
    pub si_uid: u32,
    pub si_value: sigval,
    pub __rest: [u8; SIGINFO_REST],
}

/// What follows `si_value`: 32 bytes of header and union on 64-bit targets, 24 on 32-bit ones.
const SIGINFO_REST: usize = 128
    - if cfg!(target_pointer_width = "64") {
        32
    } else {
        24
    };

// Values shared by glibc and musl on every Linux architecture this library builds for.

/// `aio_cancel` results.
pub const AIO_CANCELED: c_int = 0;
pub const AIO_NOTCANCELED: c_int = 1;
pub const AIO_ALLDONE: c_int = 2;

/// `aio_lio_opcode` values.
pub const LIO_READ: c_int = 0;
pub const LIO_WRITE: c_int = 1;
pub const LIO_NOP: c_int = 2;

/// `lio_listio` modes.
pub const LIO_WAIT: c_int = 0;
pub const LIO_NOWAIT: c_int = 1;

/// `sigev_notify` values.
pub const SIGEV_SIGNAL: c_int = 0;
pub const SIGEV_NONE: c_int = 1;
pub const SIGEV_THREAD: c_int = 2;
/// Linux: the signal goes to the thread `sigev_notify_thread_id`.
pub const SIGEV_THREAD_ID: c_int = 4;

/// `si_code` of a signal that announces a completed asynchronous I/O request.
pub const SI_ASYNCIO: c_int = -4;

/// The highest signal number (`SIGRTMAX`, `_NSIG - 1`).
pub const SIGNAL_MAX: c_int = 64;

/// `aio_fsync`'s operations: `O_SYNC` and `O_DSYNC`, the target's values.
pub const O_SYNC: c_int = libc::O_SYNC;
pub const O_DSYNC: c_int = libc::O_DSYNC;

/// `EINPROGRESS` and `ECANCELED` (the same on every architecture this library builds for).
pub const EINPROGRESS: c_int = 115;
pub const ECANCELED: c_int = 125;

/// The largest `aio_reqprio` (`AIO_PRIO_DELTA_MAX`, glibc's `sysconf` value).
pub const AIO_PRIO_DELTA_MAX: c_int = 20;

// The layouts every caller's memory is read with, checked at compile time for each target (the
// C headers' values are compared at run time by tests/layout.rs).
const PTR: usize = core::mem::size_of::<usize>();
const _: () = {
    assert!(core::mem::size_of::<sigevent>() == 64);
    assert!(core::mem::size_of::<siginfo>() == 128);
    assert!(core::mem::offset_of!(aiocb, aio_sigevent) == if PTR == 8 { 32 } else { 20 });
    assert!(core::mem::size_of::<aiocb>() == if PTR == 8 { 168 } else { 144 });
    assert!(core::mem::offset_of!(aiocb, aio_offset) == if PTR == 8 { 128 } else { 104 });
};
