//! Queueing requests: `aio_read`, `aio_write`, `aio_fsync` and each entry of `lio_listio`.
//!
//! A request is checked (`aio_reqprio`, `aio_nbytes`, `aio_sigevent`, the descriptor) before
//! anything is queued; what fails there is refused synchronously (-1 and `errno`, and the
//! control block's error status says the same, so that `lio_listio`'s callers can read it).
//! File requests are handed to the kernel without the engine lock (a buffered read is performed
//! inside `io_submit`, which other threads need not wait for), several at once for
//! `lio_listio`. A refusal of the kernel's at submission is the request's result (its error
//! status, and its notification), except "no room" (`EAGAIN`), which refuses the request as
//! not queued.

use core::ffi::c_int;

use linux_aio::raw::{self, iocb};
use linux_aio::ring::Ring;
use rustix::io::Errno;

use crate::abi::{aiocb, AIO_PRIO_DELTA_MAX};
use crate::cb;
use crate::engine::{self, Engine, Kind, Mode, Op, State, NONE, SLOTS};
use crate::kernel::{classify, Submit};
use crate::notify::{self, Notify};

/// File requests waiting to be handed to the kernel in one `io_submit`.
pub struct Batch {
    /// A request was refused by the kernel for lack of room (`EAGAIN`): not queued.
    pub again: bool,
    n: usize,
    slots: [(u32, u32); BATCH],
    iocbs: [*mut iocb; BATCH],
    ctx: raw::aio_context_t,
}

const BATCH: usize = 64;

impl Batch {
    pub const fn new() -> Batch {
        Batch {
            again: false,
            n: 0,
            slots: [(0, 0); BATCH],
            iocbs: [core::ptr::null_mut(); BATCH],
            ctx: 0,
        }
    }

    /// Submits the batch (no engine lock held). A request the kernel refuses for lack of room
    /// (`EAGAIN`) is refused as not queued (and `again` set); other refusals complete their
    /// request with the error.
    pub fn flush(&mut self) {
        let mut k = 0;
        while k < self.n {
            // SAFETY: iocbs[k..n] are the iocbs of slots handed to this batch, written under the
            // lock and untouched until their completion; their buffers are the callers'.
            let ret = unsafe {
                raw::io_submit(self.ctx, (self.n - k) as _, self.iocbs.as_mut_ptr().add(k))
            };
            if ret > 0 {
                k += ret as usize;
                continue;
            }
            // The kernel refused iocbs[k] (io_submit reports the first refusal alone).
            let e = Errno::from_raw_os_error(if ret < 0 { -ret as i32 } else { libc::EAGAIN });
            let (i, generation) = self.slots[k];
            let i = i as usize;
            if let Some(mut eng) = engine::lock() {
                let s = &eng.slots[i];
                if s.generation == generation && s.state == State::InKernel {
                    if e == Errno::AGAIN {
                        let cb = s.cb;
                        eng.discard(i);
                        // SAFETY: the caller's control block, just refused.
                        unsafe { cb::refuse(cb, crate::process::me(), libc::EAGAIN) };
                        self.again = true;
                    } else {
                        eng.finish(i, Err(e));
                    }
                }
            }
            k += 1;
        }
        self.n = 0;
    }

    fn push(&mut self, ctx: raw::aio_context_t, i: usize, generation: u32, io: *mut iocb) {
        self.ctx = ctx;
        self.slots[self.n] = (i as u32, generation);
        self.iocbs[self.n] = io;
        self.n += 1;
    }

    fn full(&self) -> bool {
        self.n == BATCH
    }
}

/// Decides how this process runs requests, once: kernel AIO, or synchronous execution where
/// the kernel has none. `Err(EAGAIN)` if a context cannot be had now (`fs.aio-max-nr`).
fn ensure_mode(e: &mut Engine) -> Result<(), c_int> {
    if e.mode != Mode::Unset {
        return Ok(());
    }
    // Set and neither empty nor "0" (so that `LINUX_AIO_POSIX_FORCE_SYNC= prog` is not forced).
    // SAFETY: getenv reads the environment, a C string is returned or NULL.
    let value = unsafe { libc::getenv(c"LINUX_AIO_POSIX_FORCE_SYNC".as_ptr()) };
    // SAFETY: a non-null getenv result is a NUL-terminated string; reading its first two bytes
    // stays inside it (the second is read only when the first is not NUL).
    let forced = !value.is_null()
        && unsafe { *value != 0 && !(*value == b'0' as libc::c_char && *value.add(1) == 0) };
    if forced {
        e.mode = Mode::Sync;
        return Ok(());
    }
    let mut ctx: raw::aio_context_t = 0;
    // One more than the slots: the wake-up POLL.
    // SAFETY: ctx is a zeroed aio_context_t.
    match unsafe { raw::io_setup(SLOTS as u32 + 1, &mut ctx) } {
        0 => {
            e.mode = Mode::Async;
            e.ctx = ctx;
            // The ring is read in user space only where a child can be told apart in one load.
            e.ring = if linux_aio::ring::process_token().is_some() {
                // SAFETY: io_setup has just mapped the ring at ctx in this process, and nothing
                // else has written it; the context is never destroyed (it lives as long as the
                // process), and a forked child forgets the Ring (engine::reset).
                unsafe { Ring::attach(ctx as *mut raw::aio_ring) }
            } else {
                None
            };
            e.efd = crate::wait::make_efd();
            Ok(())
        }
        r if r == -(libc::ENOSYS as core::ffi::c_long) => {
            e.mode = Mode::Sync;
            Ok(())
        }
        _ => Err(libc::EAGAIN),
    }
}

/// A synchronous-mode request to run once the lock is released.
pub struct RunNow {
    i: usize,
    generation: u32,
    op: Op,
    kind: Kind,
    fd: c_int,
    buf: usize,
    nbytes: usize,
    offset: i64,
}

impl RunNow {
    /// Performs it and completes it.
    pub fn run(self) {
        let result = crate::sync::run(
            self.op,
            self.kind,
            self.fd,
            self.buf,
            self.nbytes,
            self.offset,
        );
        if let Some(mut e) = engine::lock() {
            let s = &e.slots[self.i];
            if s.generation == self.generation && s.state == State::InKernel {
                e.finish(self.i, result);
            }
        }
    }
}

/// Queues the request `cb` describes (`op`, its offset read as `wide` says), counting toward
/// list `list` (or `NONE`). File requests are left in `batch` for the caller to flush;
/// synchronous-mode requests are returned, to be run by the caller without the lock. `Err`: the
/// request was refused before being queued, with this `errno` (the control block's status says
/// the same unless it is still in progress, see below).
///
/// # Safety
/// `cb` is a valid control block that stays valid, with its buffer, until the request
/// completes (POSIX's contract).
pub unsafe fn enqueue(
    cb: *mut aiocb,
    op: Op,
    wide: bool,
    list: u32,
    batch: &mut Batch,
) -> Result<Option<RunNow>, c_int> {
    // SAFETY: the caller's.
    let c = unsafe { &*cb };
    let (fd, buf, nbytes, reqprio) = (
        c.aio_fildes,
        c.aio_buf as usize,
        c.aio_nbytes,
        c.aio_reqprio,
    );
    // SAFETY: the caller's.
    let offset = unsafe { cb::offset(cb, wide) };
    let sigevent = c.aio_sigevent;
    let me = crate::process::me();
    let refuse = |e: c_int| {
        // SAFETY: the caller's.
        unsafe { cb::refuse(cb, me, e) };
        Err(e)
    };
    // The same control block for a request still in progress: undefined in POSIX; refused
    // with EINVAL before anything else is looked at, so that no check below writes the
    // running request's status (checked again under the lock, for a racing completion).
    // SAFETY: the caller's.
    if unsafe { engine::in_progress(cb) } {
        return Err(libc::EINVAL);
    }
    if !(0..=AIO_PRIO_DELTA_MAX).contains(&reqprio) {
        return refuse(libc::EINVAL);
    }
    if matches!(op, Op::Read | Op::Write) && nbytes > isize::MAX as usize {
        return refuse(libc::EINVAL);
    }
    let notify = match Notify::parse(&sigevent) {
        Ok(n) => n,
        Err(e) => return refuse(e),
    };
    let (kind, immediate, file) = match classify(fd, op, nbytes) {
        Ok(k) => k,
        Err(e) => return refuse(e.raw_os_error()),
    };
    if notify.needs_service() {
        if let Err(e) = notify::ensure_service() {
            return refuse(e);
        }
    }
    let Some(mut e) = engine::lock() else {
        // A signal handler that interrupted this thread inside the library.
        return refuse(libc::EAGAIN);
    };
    if let Err(err) = ensure_mode(&mut e) {
        drop(e);
        return refuse(err);
    }
    // Again under the lock (see above): refused without touching the block.
    // SAFETY: the caller's.
    let (owner, slot, generation) = unsafe { cb::private(cb) };
    if owner == me
        && (slot as usize) < SLOTS
        && e.slots[slot as usize].cb == cb
        && e.slots[slot as usize].generation == generation
        && matches!(
            e.slots[slot as usize].state,
            State::Queued | State::Polling | State::InKernel
        )
    {
        return Err(libc::EINVAL);
    }
    let Some(i) = e.alloc(cb) else {
        drop(e);
        return refuse(libc::EAGAIN);
    };
    // A stream transfer is tried again after readiness: on a private duplicate, so that it
    // stays on this file whatever the program does with the number meanwhile.
    let mut kfd = -1;
    if e.mode == Mode::Async && kind != Kind::File && matches!(op, Op::Read | Op::Write) {
        match crate::kernel::private_dup(fd) {
            Ok(k) => kfd = k,
            Err(err) => {
                e.discard(i);
                drop(e);
                let err = if err == Errno::BADF {
                    libc::EBADF
                } else {
                    libc::EAGAIN
                };
                return refuse(err);
            }
        }
    }
    let generation = {
        let s = &mut e.slots[i];
        s.op = op;
        s.fd = fd;
        s.kfd = kfd;
        s.buf = buf;
        s.nbytes = nbytes;
        s.offset = offset;
        s.reqprio = reqprio;
        s.kind = kind;
        s.immediate = immediate;
        s.file = file;
        s.nowait = kind != Kind::File;
        s.notify = notify;
        s.list = list;
        s.generation
    };
    if list != NONE {
        e.lists[list as usize].remaining += 1;
    }
    // SAFETY: the caller's; the request cannot complete before this (the lock is held).
    unsafe { cb::start(cb, me, i as u32, generation) };
    match e.mode {
        Mode::Sync => {
            e.set_state(i, State::InKernel);
            return Ok(Some(RunNow {
                i,
                generation,
                op,
                kind,
                fd,
                buf,
                nbytes,
                offset,
            }));
        }
        _ if kind == Kind::File && matches!(op, Op::Read | Op::Write) => {
            let io = e.prepare_iocb(i, Submit::Transfer);
            e.set_state(i, State::InKernel);
            let ctx = e.ctx;
            batch.push(ctx, i, generation, io);
        }
        _ => e.start_streams(),
    }
    let full = batch.full();
    drop(e);
    if full {
        batch.flush();
    }
    Ok(None)
}
