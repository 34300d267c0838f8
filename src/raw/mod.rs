//! The kernel interface, as the kernel spells it.
//!
//! Each function issues one system call through the architecture's inline-asm entry and returns
//! the kernel's value unchanged: a count or 0 on success, a negated errno (`-4095..=-1`) on
//! failure, as libaio returns it. On targets without an architecture module every function
//! returns `-ENOSYS` without entering the kernel.
//!
//! This module and `arch/` have no dependencies at all (not even on the rest of this crate), so
//! another syscall crate can vendor them; see the README's "Vendoring the raw layer".
//!
//! # What is promised
//! Everything documented here follows semver: the six calls (and [`is_error`]), the kernel's
//! types (`iocb`, `io_event`, `aio_context_t`, `aio_ring`, `__aio_sigset`,
//! `__kernel_timespec`) with their layouts, the `IOCB_*`, `RWF_*` and `AIO_RING_*` constants,
//! the AIO syscall numbers and [`ARCH`]. The generic entry (`syscall0`..`syscall6`) and the
//! numbers of other calls are public only for this crate's own tests and probe, hidden from the
//! docs, and may change in any release.
//!
//! # Time on 32-bit architectures
//! [`io_getevents`] and [`io_pgetevents`] take a [`__kernel_timespec`] (64-bit seconds) on every
//! architecture. On arm and x86, where the kernel's calls of those names take the 32-bit
//! `struct timespec` (the y2038-unsafe ABI, which kernels built without
//! `CONFIG_COMPAT_32BIT_TIME` leave out), both are made as `io_pgetevents_time64` (Linux 5.1;
//! `io_getevents` with a null signal mask). Only if the kernel answers `ENOSYS` (before 5.1)
//! do they fall back to the old calls, with the timeout converted and clamped (seconds beyond
//! `i32::MAX` wait `i32::MAX` seconds, never a wrapped shorter time), and that answer is
//! remembered, so later calls go straight to the old ones. On that fallback path the raw layer
//! reads `*timeout` itself: an unreadable pointer is then undefined behaviour, not `EFAULT`.
//! One behaviour comes with `io_pgetevents_time64`: a wait that a signal interrupts with no
//! handler running (a stop and continue) is restarted by the kernel instead of ending in
//! `EINTR`; with a handler both give `EINTR`.

// Carried into crates that vendor this folder, whatever lints they set themselves.
#![deny(unsafe_op_in_unsafe_fn)]
// `aio_context_t` is the kernel's `unsigned long`: u64, u32 or usize depending on the module, so
// the `as usize` casts below are needed somewhere even where one is a no-op.
#![allow(clippy::unnecessary_cast)]
// Everything here is interface; a crate that vendors the folder uses only part of it.
#![allow(dead_code)]

/// Size, alignment and every offset of the kernel's types, checked at compile time.
mod layout;

#[path = "../../arch/mod.rs"]
mod arch;

/// `io_getevents` and `io_pgetevents` where the kernel's calls of those names take a 32-bit
/// timespec: `io_pgetevents_time64` first, the old calls before Linux 5.1.
#[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
mod time32;

use core::ffi::{c_long, c_uint};

pub use arch::*;
#[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
pub use time32::{__force_time32_calls, __time32_calls};

/// True if `ret`, a value returned by a function of this module, is a negated errno.
#[inline]
pub const fn is_error(ret: c_long) -> bool {
    ret >= -4095 && ret < 0
}

/// `io_setup(2)`: creates a context able to hold `nr_events` in-flight requests and stores its id
/// in `*ctxp`, which must be 0 on entry. Returns 0 or a negated errno (`EINVAL`, `EAGAIN` past
/// `fs.aio-max-nr`, `EFAULT`, `ENOMEM`, `ENOSYS`).
///
/// # Safety
/// `ctxp` must be valid for reads and writes of an `aio_context_t`.
#[inline]
pub unsafe fn io_setup(nr_events: c_uint, ctxp: *mut aio_context_t) -> c_long {
    // SAFETY: the number is io_setup's on this architecture; the kernel checks `ctxp` itself
    // (EFAULT), and the caller vouches that it is ours to write.
    unsafe { syscall2(__NR_io_setup, nr_events as usize, ctxp as usize) }
}

/// `io_destroy(2)`: waits for every request in flight on `ctx`, then destroys it and unmaps its
/// ring. Returns 0 or a negated errno (`EINVAL` for an unknown context).
///
/// # Safety
/// No thread may use `ctx`, or its ring, once this is called.
#[inline]
pub unsafe fn io_destroy(ctx: aio_context_t) -> c_long {
    // SAFETY: io_destroy touches no user memory but the ring, which the caller has stopped
    // using (this function's contract); an unknown `ctx` is EINVAL.
    unsafe { syscall1(__NR_io_destroy, ctx as usize) }
}

/// `io_submit(2)`: queues the `nr` requests pointed to by `iocbpp[0..nr]`. Returns how many were
/// accepted (stopping at the first failure), or a negated errno if the first one failed.
///
/// # Safety
/// `iocbpp` must point to `nr` valid pointers to valid `iocb`s. The kernel copies the `iocb`s
/// (and iovec arrays) during the call, but every data buffer they name must stay valid, and not
/// be otherwise accessed, until the request's completion event has been reaped.
#[inline]
pub unsafe fn io_submit(ctx: aio_context_t, nr: c_long, iocbpp: *mut *mut iocb) -> c_long {
    // SAFETY: the kernel reads `nr` iocb pointers and the iocbs with fault-checked copies; the
    // memory the requests name is the caller's to lend (this function's contract).
    unsafe { syscall3(__NR_io_submit, ctx as usize, nr as usize, iocbpp as usize) }
}

/// `io_cancel(2)`: asks the kernel to cancel the request submitted from `iocb`.
///
/// Since Linux 3.12 success is `-EINPROGRESS`: the request's event arrives through the ring
/// later and `result` is not written. Older kernels returned 0 and wrote the event to `*result`.
/// Requests that cannot be cancelled (file I/O), or have already completed, give `-EINVAL`
/// (`-EAGAIN` before 3.12).
///
/// # Safety
/// `iocb` must be readable (the kernel reads its `aio_key`); `result` must be writable.
#[inline]
pub unsafe fn io_cancel(ctx: aio_context_t, iocb: *mut iocb, result: *mut io_event) -> c_long {
    // SAFETY: the kernel reads `aio_key` through `iocb` and may write one event to `result`,
    // both with fault-checked copies, into memory the caller vouches for.
    unsafe { syscall3(__NR_io_cancel, ctx as usize, iocb as usize, result as usize) }
}

/// `io_getevents(2)`: waits until at least `min_nr` events are available (or `timeout`, relative,
/// expires; null waits forever), then stores up to `nr` events at `events`. Returns the number
/// stored or a negated errno (`EINVAL`, `EINTR`, `EFAULT`).
///
/// The kernel does not validate `timeout`: a negative one with `min_nr > 0` blocks indefinitely
/// instead of failing (observed on Linux 6.18), so callers must never pass one.
///
/// # Safety
/// `events` must be writable for `nr` events; `timeout` must be null or readable.
#[inline]
pub unsafe fn io_getevents(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut __kernel_timespec,
) -> c_long {
    // SAFETY: the kernel writes at most `nr` events to `events` and reads `timeout`, both with
    // fault-checked copies, into memory the caller vouches for.
    #[cfg(not(any(linux_aio_arch = "arm", linux_aio_arch = "x86")))]
    unsafe {
        syscall5(
            __NR_io_getevents,
            ctx as usize,
            min_nr as usize,
            nr as usize,
            events as usize,
            timeout as usize,
        )
    }
    // SAFETY: as above; a null signal-mask argument leaves the mask alone.
    #[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
    unsafe {
        time32::getevents(ctx, min_nr, nr, events, timeout, core::ptr::null(), false)
    }
}

/// `io_pgetevents(2)` (Linux 4.18): as [`io_getevents`], with the signal mask in `*usig` installed
/// atomically for the duration of the wait. `usig` may be null (no mask change).
///
/// On arm and x86 this is `io_pgetevents_time64`, or before Linux 5.1 the 32-bit-timespec
/// `io_pgetevents` with the timeout clamped (see the module documentation).
///
/// # Safety
/// As [`io_getevents`]; `usig` must be null or readable, and its `sigmask` null or readable for
/// `sigsetsize` bytes.
#[inline]
pub unsafe fn io_pgetevents(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut __kernel_timespec,
    usig: *const __aio_sigset,
) -> c_long {
    // SAFETY: as io_getevents, plus a fault-checked read of `*usig` and of the mask it names.
    #[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
    unsafe {
        time32::getevents(ctx, min_nr, nr, events, timeout, usig, true)
    }
    // SAFETY: as io_getevents, plus a fault-checked read of `*usig` and of the mask it names.
    #[cfg(not(any(linux_aio_arch = "arm", linux_aio_arch = "x86")))]
    unsafe {
        syscall6(
            __NR_io_pgetevents,
            ctx as usize,
            min_nr as usize,
            nr as usize,
            events as usize,
            timeout as usize,
            usig as usize,
        )
    }
}
