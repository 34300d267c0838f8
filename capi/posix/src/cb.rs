//! What this library reads from and writes to the caller's `struct aiocb`.
//!
//! As in glibc, a request's status lives in its control block: the error status in
//! `__error_code` (`EINPROGRESS` while it runs) and the return status in `__return_value`. So
//! `aio_error` and `aio_return` read the control block alone, without a lock (they are
//! async-signal-safe), and a finished request holds nothing of the library's: a program that
//! never calls `aio_return` leaks nothing.
//!
//! Three words of the reserved area say which request the block names while it runs: the
//! token of the process that submitted it (`owner`, cleared by `aio_return`), and the slot and
//! generation of the request in the engine's table. A forked child's copy of a block still in
//! progress carries its parent's token, which the child's calls recognise (see `engine`).
//!
//! Every access goes through an atomic view of the field: another thread (the one completing
//! the request) may write the block while the caller's thread reads it.

use core::ffi::c_int;
use core::sync::atomic::{AtomicI32, AtomicIsize, AtomicU32, Ordering};

use crate::abi::aiocb;

pub use crate::abi::EINPROGRESS;

/// The words of `__reserved` this library uses.
const OWNER: usize = 0;
const SLOT: usize = 1;
const GENERATION: usize = 2;

/// The error status word.
///
/// # Safety
/// `cb` is a valid, aligned control block for as long as the returned reference is used.
unsafe fn error_word<'a>(cb: *const aiocb) -> &'a AtomicI32 {
    // SAFETY: the caller's; the field is an aligned int inside the block.
    unsafe { AtomicI32::from_ptr(core::ptr::addr_of!((*cb).__error_code).cast_mut()) }
}

/// The return status word.
///
/// # Safety
/// As [`error_word`].
unsafe fn return_word<'a>(cb: *const aiocb) -> &'a AtomicIsize {
    // SAFETY: the caller's; the field is an aligned ssize_t inside the block.
    unsafe { AtomicIsize::from_ptr(core::ptr::addr_of!((*cb).__return_value).cast_mut()) }
}

/// One of this library's words in `__reserved`.
///
/// # Safety
/// As [`error_word`].
unsafe fn private_word<'a>(cb: *const aiocb, index: usize) -> &'a AtomicU32 {
    // SAFETY: the caller's; __reserved is an array of 8 aligned u32 inside the block.
    unsafe {
        AtomicU32::from_ptr(
            core::ptr::addr_of!((*cb).__reserved)
                .cast::<u32>()
                .add(index)
                .cast_mut(),
        )
    }
}

/// The error status (`aio_error`'s value for a block this process's request is using).
///
/// # Safety
/// `cb` is a valid control block.
pub unsafe fn error(cb: *const aiocb) -> c_int {
    // SAFETY: the caller's. Acquire: pairs with `finish`'s Release, so the return status and
    // the data transferred are visible once the error status is.
    unsafe { error_word(cb) }.load(Ordering::Acquire)
}

/// The return status.
///
/// # Safety
/// As [`error`].
pub unsafe fn return_value(cb: *const aiocb) -> isize {
    // SAFETY: the caller's.
    unsafe { return_word(cb) }.load(Ordering::Relaxed)
}

/// Which request `cb` names: `(owner token, slot, generation)`.
///
/// # Safety
/// As [`error`].
pub unsafe fn private(cb: *const aiocb) -> (u32, u32, u32) {
    // SAFETY: the caller's.
    unsafe {
        (
            private_word(cb, OWNER).load(Ordering::Relaxed),
            private_word(cb, SLOT).load(Ordering::Relaxed),
            private_word(cb, GENERATION).load(Ordering::Relaxed),
        )
    }
}

/// Marks `cb` as the running request `slot`/`generation` of the process `owner`.
///
/// # Safety
/// As [`error`].
pub unsafe fn start(cb: *mut aiocb, owner: u32, slot: u32, generation: u32) {
    // SAFETY: the caller's.
    unsafe {
        private_word(cb, OWNER).store(owner, Ordering::Relaxed);
        private_word(cb, SLOT).store(slot, Ordering::Relaxed);
        private_word(cb, GENERATION).store(generation, Ordering::Relaxed);
        return_word(cb).store(0, Ordering::Relaxed);
        error_word(cb).store(EINPROGRESS, Ordering::Release);
    }
}

/// Sets the final status: the return status, then (Release) the error status.
///
/// # Safety
/// As [`error`].
pub unsafe fn finish(cb: *mut aiocb, ret: isize, err: c_int) {
    // SAFETY: the caller's.
    unsafe {
        return_word(cb).store(ret, Ordering::Relaxed);
        error_word(cb).store(err, Ordering::Release);
    }
}

/// A request refused before it was queued: its status says why (`lio_listio`'s callers read
/// it with `aio_error`), and it names no request.
///
/// # Safety
/// As [`error`].
pub unsafe fn refuse(cb: *mut aiocb, owner: u32, err: c_int) {
    // SAFETY: the caller's.
    unsafe {
        private_word(cb, OWNER).store(owner, Ordering::Relaxed);
        private_word(cb, SLOT).store(u32::MAX, Ordering::Relaxed);
        finish(cb, -1, err);
    }
}

/// `aio_return` retrieved the status: a second `aio_return` gets `EINVAL`.
///
/// # Safety
/// As [`error`].
pub unsafe fn retrieved(cb: *mut aiocb) {
    // SAFETY: the caller's.
    unsafe { private_word(cb, OWNER) }.store(0, Ordering::Relaxed);
}

/// `aio_offset`: all 64 bits (`aio_read64` and friends, every 64-bit target, musl), or the
/// 32-bit `off_t` that glibc's `struct aiocb` has there on 32-bit targets without
/// `_FILE_OFFSET_BITS=64` (`wide` false).
///
/// # Safety
/// As [`error`].
pub unsafe fn offset(cb: *const aiocb, wide: bool) -> i64 {
    // SAFETY: the caller's.
    let field = unsafe { core::ptr::addr_of!((*cb).aio_offset) };
    if wide {
        // SAFETY: the caller's; the field may be only 4-aligned (see abi::Offset).
        unsafe { field.cast::<i64>().read_unaligned() }
    } else {
        // SAFETY: the caller's; the 32-bit off_t is the field's first word (the padding
        // follows it whatever the byte order).
        i64::from(unsafe { field.cast::<i32>().read_volatile() })
    }
}
