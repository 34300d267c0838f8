//! The exported functions, with glibc's names: `aio_read`, `aio_write`, `aio_fsync`,
//! `aio_error`, `aio_return`, `aio_suspend`, `aio_cancel`, `lio_listio`, their `*64` twins,
//! and on 32-bit glibc targets `__aio_suspend_time64` (what `aio_suspend` becomes with
//! `_TIME_BITS=64`). They carry no symbol version, so they satisfy references to glibc's
//! (`aio_read@GLIBC_2.34`, `aio_read@GLIBC_2.2.5`, ...) when the library is preloaded or linked
//! before libc.
//!
//! Every function follows POSIX for its return value and `errno`. Where POSIX leaves the result
//! undefined, these choices (glibc crashes or answers something else; capi/README.md has both):
//! - a null control block (or list) is `EINVAL`;
//! - `aio_error` on a block whose request was made by another process (a forked child's copy
//!   of its parent's request) or on a copy of a block: `EINVAL` while it says `EINPROGRESS`
//!   (nothing will ever complete it); otherwise the status it holds;
//! - `aio_return` before completion: -1 with `EINPROGRESS`; a second time, or on a block that
//!   was never submitted: -1 with `EINVAL`;
//! - `aio_suspend` treats a block that names no request in progress of this process as
//!   complete (it never waits for what cannot complete).
//!
//! Async-signal-safe, as POSIX asks: `aio_error`, `aio_return` and `aio_suspend` (they read the
//! control blocks, and take the library's locks only when free; from a handler that interrupted
//! the library in the same thread they take none and wait only for other threads' progress).
//! The others may be called from a handler too but are not async-signal-safe there: interrupting
//! this library in the same thread, they fail with `EAGAIN` instead of deadlocking.

use core::ffi::c_int;

use crate::abi::{
    aiocb, sigevent, AIO_ALLDONE, LIO_NOP, LIO_NOWAIT, LIO_READ, LIO_WAIT, LIO_WRITE, O_DSYNC,
    O_SYNC,
};
use crate::cb::{self, EINPROGRESS};
use crate::engine::{self, in_progress, Op, State, NONE, SLOTS};
use crate::lock::Deadline;
use crate::notify::{self, Notify};
use crate::queue::{enqueue, Batch};
use crate::wait::{self, set_errno};

/// Whether `aio_read`, `aio_write` and `lio_listio` read all 64 bits of `aio_offset`: not on
/// 32-bit glibc targets, whose `struct aiocb` has a 32-bit `off_t` there (the `*64` calls do).
const WIDE: bool = cfg!(any(target_pointer_width = "64", not(target_env = "gnu")));

fn fail(e: c_int) -> c_int {
    set_errno(e);
    -1
}

/// aio_read, aio_write, aio_fsync.
///
/// # Safety
/// POSIX's contract for `cb`.
unsafe fn submit(cb: *mut aiocb, op: Op, wide: bool) -> c_int {
    if cb.is_null() {
        return fail(libc::EINVAL);
    }
    let mut batch = Batch::new();
    // SAFETY: the caller's.
    match unsafe { enqueue(cb, op, wide, NONE, &mut batch) } {
        Ok(run) => {
            batch.flush();
            if let Some(run) = run {
                run.run();
            }
            if batch.again {
                fail(libc::EAGAIN)
            } else {
                0
            }
        }
        Err(e) => fail(e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn aio_read(cb: *mut aiocb) -> c_int {
    // SAFETY: the caller's.
    unsafe { submit(cb, Op::Read, WIDE) }
}

#[no_mangle]
pub unsafe extern "C" fn aio_read64(cb: *mut aiocb) -> c_int {
    // SAFETY: the caller's.
    unsafe { submit(cb, Op::Read, true) }
}

#[no_mangle]
pub unsafe extern "C" fn aio_write(cb: *mut aiocb) -> c_int {
    // SAFETY: the caller's.
    unsafe { submit(cb, Op::Write, WIDE) }
}

#[no_mangle]
pub unsafe extern "C" fn aio_write64(cb: *mut aiocb) -> c_int {
    // SAFETY: the caller's.
    unsafe { submit(cb, Op::Write, true) }
}

/// `aio_fsync(O_SYNC | O_DSYNC, cb)`: `EINVAL` for any other operation (the block untouched).
unsafe fn fsync(op: c_int, cb: *mut aiocb) -> c_int {
    let op = match op {
        O_SYNC => Op::Fsync,
        O_DSYNC => Op::Fdsync,
        _ => return fail(libc::EINVAL),
    };
    // SAFETY: the caller's.
    unsafe { submit(cb, op, true) }
}

#[no_mangle]
pub unsafe extern "C" fn aio_fsync(op: c_int, cb: *mut aiocb) -> c_int {
    // SAFETY: the caller's.
    unsafe { fsync(op, cb) }
}

#[no_mangle]
pub unsafe extern "C" fn aio_fsync64(op: c_int, cb: *mut aiocb) -> c_int {
    // SAFETY: the caller's.
    unsafe { fsync(op, cb) }
}

/// `aio_error`: the error status; moves requests on first (without waiting).
unsafe fn error(cb: *const aiocb) -> c_int {
    if cb.is_null() {
        return fail(libc::EINVAL);
    }
    // SAFETY: the caller's.
    let e = unsafe { cb::error(cb) };
    if e != EINPROGRESS {
        return e;
    }
    crate::process::check();
    wait::progress();
    // SAFETY: the caller's.
    let e = unsafe { cb::error(cb) };
    // SAFETY: the caller's.
    if e == EINPROGRESS && !unsafe { in_progress(cb) } {
        // Completed between the two reads, or naming no request of this process.
        // SAFETY: the caller's.
        let again = unsafe { cb::error(cb) };
        return if again == EINPROGRESS {
            fail(libc::EINVAL)
        } else {
            again
        };
    }
    e
}

#[no_mangle]
pub unsafe extern "C" fn aio_error(cb: *const aiocb) -> c_int {
    // SAFETY: the caller's.
    unsafe { error(cb) }
}

#[no_mangle]
pub unsafe extern "C" fn aio_error64(cb: *const aiocb) -> c_int {
    // SAFETY: the caller's.
    unsafe { error(cb) }
}

/// `aio_return`: the return status, once.
unsafe fn return_(cb: *mut aiocb) -> isize {
    if cb.is_null() {
        return fail(libc::EINVAL) as isize;
    }
    // SAFETY (this block): the caller's.
    unsafe {
        if cb::error(cb) == EINPROGRESS {
            crate::process::check();
            wait::progress();
            if cb::error(cb) == EINPROGRESS {
                let e = if in_progress(cb) {
                    EINPROGRESS
                } else {
                    libc::EINVAL
                };
                // Unless it completed between the two reads (see engine::in_progress).
                if cb::error(cb) == EINPROGRESS {
                    return fail(e) as isize;
                }
            }
        }
        if cb::private(cb).0 == 0 {
            return fail(libc::EINVAL) as isize;
        }
        let ret = cb::return_value(cb);
        cb::retrieved(cb);
        ret
    }
}

#[no_mangle]
pub unsafe extern "C" fn aio_return(cb: *mut aiocb) -> isize {
    // SAFETY: the caller's.
    unsafe { return_(cb) }
}

#[no_mangle]
pub unsafe extern "C" fn aio_return64(cb: *mut aiocb) -> isize {
    // SAFETY: the caller's.
    unsafe { return_(cb) }
}

/// `aio_suspend` with the timeout already read (`None`: none).
unsafe fn suspend(list: *const *const aiocb, nent: c_int, timeout: Option<(i64, i64)>) -> c_int {
    if nent < 0 || (list.is_null() && nent > 0) {
        return fail(libc::EINVAL);
    }
    if let Some((s, ns)) = timeout {
        if s < 0 || !(0..1_000_000_000).contains(&ns) {
            return fail(libc::EINVAL);
        }
    }
    let entries = || {
        // SAFETY: the caller's list of nent pointers.
        (0..nent as usize).map(move |k| unsafe { *list.add(k) })
    };
    // SAFETY: each non-null entry is the caller's control block.
    let done = || entries().any(|cb| !cb.is_null() && !unsafe { in_progress(cb) });
    if entries().all(|cb| cb.is_null()) || done() {
        return 0;
    }
    crate::process::check();
    match wait::wait_until(&done, Deadline::after(timeout)) {
        Ok(()) => 0,
        Err(e) => fail(e.raw_os_error()),
    }
}

/// The C library's `struct timespec` of the caller, 32-bit (`time_t` and `long`) on 32-bit
/// glibc targets without `_TIME_BITS=64`.
#[cfg(all(target_pointer_width = "32", target_env = "gnu"))]
#[repr(C)]
pub struct timespec {
    tv_sec: i32,
    tv_nsec: i32,
}

/// The caller's `struct timespec` elsewhere: 64-bit seconds, a `long` of nanoseconds (on
/// 32-bit musl and `__timespec64`, 32 bits followed by padding: read as such).
#[cfg(not(all(target_pointer_width = "32", target_env = "gnu")))]
#[repr(C)]
pub struct timespec {
    tv_sec: i64,
    tv_nsec: core::ffi::c_long,
}

/// glibc's `struct __timespec64` on 32-bit targets (`_TIME_BITS=64`).
#[cfg(all(target_pointer_width = "32", target_env = "gnu"))]
#[repr(C)]
pub struct timespec64 {
    tv_sec: i64,
    tv_nsec: i32,
    _pad: i32,
}

#[no_mangle]
pub unsafe extern "C" fn aio_suspend(
    list: *const *const aiocb,
    nent: c_int,
    timeout: *const timespec,
) -> c_int {
    // time_t and long are 32 bits on 32-bit targets (`aio_suspend` without _TIME_BITS=64).
    #[allow(clippy::useless_conversion)]
    // SAFETY: the caller's timeout, if any.
    let t = unsafe { timeout.as_ref() }.map(|t| (i64::from(t.tv_sec), i64::from(t.tv_nsec)));
    // SAFETY: the caller's.
    unsafe { suspend(list, nent, t) }
}

#[no_mangle]
pub unsafe extern "C" fn aio_suspend64(
    list: *const *const aiocb,
    nent: c_int,
    timeout: *const timespec,
) -> c_int {
    // SAFETY: the caller's.
    unsafe { aio_suspend(list, nent, timeout) }
}

#[cfg(all(target_pointer_width = "32", target_env = "gnu"))]
#[no_mangle]
pub unsafe extern "C" fn __aio_suspend_time64(
    list: *const *const aiocb,
    nent: c_int,
    timeout: *const timespec64,
) -> c_int {
    // SAFETY: the caller's timeout, if any.
    let t = unsafe { timeout.as_ref() }.map(|t| (t.tv_sec, i64::from(t.tv_nsec)));
    // SAFETY: the caller's.
    unsafe { suspend(list, nent, t) }
}

/// `aio_cancel`, as aio_cancel.3p says.
unsafe fn cancel(fd: c_int, cb: *mut aiocb) -> c_int {
    // EBADF first, as glibc.
    let open = fd >= 0
        // SAFETY: fd is not -1; fcntl only inspects it.
        && rustix::io::fcntl_getfd(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) }).is_ok();
    if !open {
        return fail(libc::EBADF);
    }
    let only = if cb.is_null() {
        None
    } else {
        // SAFETY: the caller's.
        let c = unsafe { &*cb };
        // "Unspecified results" in POSIX; glibc and musl answer EINVAL.
        if c.aio_fildes != fd {
            return fail(libc::EINVAL);
        }
        // SAFETY: the caller's.
        if unsafe { cb::error(cb) } != EINPROGRESS {
            return AIO_ALLDONE;
        }
        // SAFETY: the caller's.
        let (owner, slot, generation) = unsafe { cb::private(cb) };
        if owner != crate::process::me() || slot as usize >= SLOTS {
            return AIO_ALLDONE; // no request of this process
        }
        Some((cb, slot as usize, generation))
    };
    let answer = wait::with_reaped(|e| match only {
        None => e.cancel(fd, None),
        Some((cb, i, generation)) => {
            let s = &e.slots[i];
            let live = matches!(s.state, State::Queued | State::Polling | State::InKernel);
            if s.cb == cb && s.generation == generation && live {
                e.cancel(fd, Some(i))
            } else {
                AIO_ALLDONE
            }
        }
    });
    match answer {
        Some(a) => a,
        None => fail(libc::EAGAIN),
    }
}

#[no_mangle]
pub unsafe extern "C" fn aio_cancel(fd: c_int, cb: *mut aiocb) -> c_int {
    // SAFETY: the caller's.
    unsafe { cancel(fd, cb) }
}

#[no_mangle]
pub unsafe extern "C" fn aio_cancel64(fd: c_int, cb: *mut aiocb) -> c_int {
    // SAFETY: the caller's.
    unsafe { cancel(fd, cb) }
}

/// `lio_listio`.
unsafe fn listio(
    mode: c_int,
    list: *const *mut aiocb,
    nent: c_int,
    sig: *mut sigevent,
    wide: bool,
) -> c_int {
    // Nothing is initiated when the call fails with anything but EAGAIN, EINTR or EIO.
    if (mode != LIO_WAIT && mode != LIO_NOWAIT) || nent < 0 || (list.is_null() && nent > 0) {
        return fail(libc::EINVAL);
    }
    let notify = match sig.is_null() || mode == LIO_WAIT {
        true => Notify::None,
        // SAFETY: the caller's sigevent.
        false => match Notify::parse(unsafe { &*sig }) {
            Ok(n) => n,
            Err(e) => return fail(e),
        },
    };
    if notify.needs_service() {
        if let Err(e) = notify::ensure_service() {
            return fail(e);
        }
    }
    // SAFETY: the caller's list of nent pointers.
    let entry = |k: usize| unsafe { *list.add(k) };
    let mut group = NONE;
    if !notify.is_none() {
        let Some(mut e) = engine::lock() else {
            return fail(libc::EAGAIN);
        };
        match e.alloc_list(notify) {
            Some(l) => group = l as u32,
            None => {
                drop(e);
                // No list slot: nothing is queued, and each entry says so (EAGAIN, and -1
                // for aio_return), as for a request refused for lack of resources.
                let me = crate::process::me();
                for k in 0..nent as usize {
                    let cb = entry(k);
                    // SAFETY: the caller's control block; a block still in progress keeps
                    // its running request's status.
                    unsafe {
                        if !cb.is_null()
                            && matches!((*cb).aio_lio_opcode, LIO_READ | LIO_WRITE)
                            && !in_progress(cb)
                        {
                            cb::refuse(cb, me, libc::EAGAIN);
                        }
                    }
                }
                return fail(libc::EAGAIN);
            }
        }
    }
    let (mut again, mut failed) = (false, false);
    let mut batch = Batch::new();
    for k in 0..nent as usize {
        let cb = entry(k);
        if cb.is_null() {
            continue;
        }
        // SAFETY: the caller's control block.
        let op = match unsafe { (*cb).aio_lio_opcode } {
            LIO_NOP => continue,
            LIO_READ => Op::Read,
            LIO_WRITE => Op::Write,
            _ => {
                // A block still in progress keeps its running request's status.
                // SAFETY: the caller's.
                if !unsafe { in_progress(cb) } {
                    // SAFETY: the caller's.
                    unsafe { cb::refuse(cb, crate::process::me(), libc::EINVAL) };
                }
                failed = true;
                continue;
            }
        };
        // SAFETY: the caller's.
        match unsafe { enqueue(cb, op, wide, group, &mut batch) } {
            Ok(Some(run)) => {
                batch.flush();
                run.run();
            }
            Ok(None) => {}
            Err(libc::EAGAIN) => again = true,
            Err(_) => failed = true,
        }
    }
    batch.flush();
    again |= batch.again;
    if group != NONE {
        // The guard: the list's notification may go once every request is queued.
        if let Some(mut e) = engine::lock() {
            e.list_done(group as usize);
        }
    }
    if mode == LIO_WAIT {
        // SAFETY: each non-null entry is the caller's control block.
        let all_done = || {
            (0..nent as usize).all(|k| {
                let cb = entry(k);
                cb.is_null() || !unsafe { in_progress(cb) }
            })
        };
        crate::process::check();
        if let Err(e) = wait::wait_until(&all_done, Deadline::NEVER) {
            return fail(e.raw_os_error());
        }
        for k in 0..nent as usize {
            let cb = entry(k);
            // SAFETY: the caller's.
            if !cb.is_null()
                && unsafe { (*cb).aio_lio_opcode } != LIO_NOP
                && unsafe { cb::error(cb) } != 0
            {
                failed = true;
            }
        }
    }
    if again {
        fail(libc::EAGAIN)
    } else if failed {
        fail(libc::EIO)
    } else {
        0
    }
}

#[no_mangle]
pub unsafe extern "C" fn lio_listio(
    mode: c_int,
    list: *const *mut aiocb,
    nent: c_int,
    sig: *mut sigevent,
) -> c_int {
    // SAFETY: the caller's.
    unsafe { listio(mode, list, nent, sig, WIDE) }
}

#[no_mangle]
pub unsafe extern "C" fn lio_listio64(
    mode: c_int,
    list: *const *mut aiocb,
    nent: c_int,
    sig: *mut sigevent,
) -> c_int {
    // SAFETY: the caller's.
    unsafe { listio(mode, list, nent, sig, true) }
}
