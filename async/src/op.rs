//! The future of one request, and the operations it can carry.
//!
//! An [`Op`] does nothing until polled. Its first poll takes a slot of the driver's table (or
//! waits for one: back-pressure), writes the request into it and joins the queue; the driving
//! turn submits it. Later polls look for the result. Dropping it:
//! - before its first poll, or while it waits for a slot: nothing was queued;
//! - while queued: the request is taken off the queue and never reaches the kernel;
//! - while the kernel holds it: the buffer moves into the slot (`orphan`) and stays there until
//!   the request's completion has been reaped (or, at teardown, until `io_destroy` has returned);
//!   a poll is cancelled (`io_cancel`) by the next turn;
//! - after completion, before the result was taken: the slot is released.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use linux_aio::raw::{self, io_event, iocb};
use linux_aio::RwFlags;
use rustix::event::PollFlags;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

use crate::buf::{IoBuf, IoBufMut};
use crate::driver::{lock, Driver, Shared};
use crate::table::{Flush, Iovec, State, Table, Trash};

mod private {
    pub trait Sealed {}
}

/// What an [`Op`] carries: the request's own part of the `iocb`, and what it hands back.
/// Implemented by this crate's operation types only.
pub trait Operation: private::Sealed + Send + Unpin + 'static {
    /// What the future resolves to.
    type Output;
    /// True for requests the kernel can cancel (polls).
    #[doc(hidden)]
    const CANCELABLE: bool = false;
    /// True for the reads and writes a filesystem may perform inside `io_submit` (buffered
    /// I/O), which then need no eventfd signal; false for syncs (a kernel work queue) and polls.
    #[doc(hidden)]
    const MAY_BE_QUIET: bool = false;
    /// Writes opcode, buffer, length and offset.
    #[doc(hidden)]
    fn prepare(&mut self, cb: &mut iocb, iov: &mut Vec<Iovec>);
    /// Turns the kernel's result into the output, handing the buffer back.
    #[doc(hidden)]
    fn finish(self, res: Result<usize, Errno>) -> Self::Output;
}

/// Offsets beyond `i64::MAX` become negative, which the kernel refuses with `EINVAL`.
fn offset(offset: u64) -> i64 {
    offset as i64
}

fn err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// A read (`IOCB_CMD_PREAD`) into all of the buffer's `bytes_total()` (a `Vec`'s capacity).
#[derive(Debug)]
pub struct Read<B> {
    buf: B,
    offset: u64,
}

impl<B> private::Sealed for Read<B> {}
impl<B: IoBufMut> Operation for Read<B> {
    type Output = (io::Result<usize>, B);
    const MAY_BE_QUIET: bool = true;
    fn prepare(&mut self, cb: &mut iocb, _: &mut Vec<Iovec>) {
        cb.aio_lio_opcode = raw::IOCB_CMD_PREAD;
        cb.aio_buf = self.buf.stable_mut_ptr() as u64;
        cb.aio_nbytes = self.buf.bytes_total() as u64;
        cb.aio_offset = offset(self.offset);
    }
    fn finish(mut self, res: Result<usize, Errno>) -> Self::Output {
        if let Ok(n) = res {
            // SAFETY: the kernel wrote `n` bytes from the start (never more than asked for).
            unsafe { self.buf.set_init(n.min(self.buf.bytes_total())) };
        }
        (res.map_err(err), self.buf)
    }
}

/// A write (`IOCB_CMD_PWRITE`) of the buffer's `bytes_init()` (a `Vec`'s length).
#[derive(Debug)]
pub struct Write<B> {
    buf: B,
    offset: u64,
}

impl<B> private::Sealed for Write<B> {}
impl<B: IoBuf> Operation for Write<B> {
    type Output = (io::Result<usize>, B);
    const MAY_BE_QUIET: bool = true;
    fn prepare(&mut self, cb: &mut iocb, _: &mut Vec<Iovec>) {
        cb.aio_lio_opcode = raw::IOCB_CMD_PWRITE;
        cb.aio_buf = self.buf.stable_ptr() as u64;
        cb.aio_nbytes = self.buf.bytes_init() as u64;
        cb.aio_offset = offset(self.offset);
    }
    fn finish(self, res: Result<usize, Errno>) -> Self::Output {
        (res.map_err(err), self.buf)
    }
}

/// A vectored read (`IOCB_CMD_PREADV`) filling the buffers in order.
#[derive(Debug)]
pub struct ReadV<B> {
    bufs: Vec<B>,
    offset: u64,
}

impl<B> private::Sealed for ReadV<B> {}
impl<B: IoBufMut> Operation for ReadV<B> {
    type Output = (io::Result<usize>, Vec<B>);
    const MAY_BE_QUIET: bool = true;
    fn prepare(&mut self, cb: &mut iocb, iov: &mut Vec<Iovec>) {
        iov.clear();
        iov.extend(self.bufs.iter_mut().map(|b| Iovec {
            base: b.stable_mut_ptr() as usize,
            len: b.bytes_total(),
        }));
        cb.aio_lio_opcode = raw::IOCB_CMD_PREADV;
        cb.aio_buf = iov.as_ptr() as u64;
        cb.aio_nbytes = iov.len() as u64;
        cb.aio_offset = offset(self.offset);
    }
    fn finish(mut self, res: Result<usize, Errno>) -> Self::Output {
        if let Ok(mut n) = res {
            for b in &mut self.bufs {
                let here = n.min(b.bytes_total());
                // SAFETY: the kernel fills the buffers in order; `here` bytes of this one.
                unsafe { b.set_init(here) };
                n -= here;
            }
        }
        (res.map_err(err), self.bufs)
    }
}

/// A vectored write (`IOCB_CMD_PWRITEV`) of each buffer's `bytes_init()`, in order.
#[derive(Debug)]
pub struct WriteV<B> {
    bufs: Vec<B>,
    offset: u64,
}

impl<B> private::Sealed for WriteV<B> {}
impl<B: IoBuf> Operation for WriteV<B> {
    type Output = (io::Result<usize>, Vec<B>);
    const MAY_BE_QUIET: bool = true;
    fn prepare(&mut self, cb: &mut iocb, iov: &mut Vec<Iovec>) {
        iov.clear();
        iov.extend(self.bufs.iter().map(|b| Iovec {
            base: b.stable_ptr() as usize,
            len: b.bytes_init(),
        }));
        cb.aio_lio_opcode = raw::IOCB_CMD_PWRITEV;
        cb.aio_buf = iov.as_ptr() as u64;
        cb.aio_nbytes = iov.len() as u64;
        cb.aio_offset = offset(self.offset);
    }
    fn finish(self, res: Result<usize, Errno>) -> Self::Output {
        (res.map_err(err), self.bufs)
    }
}

/// `fsync` (`IOCB_CMD_FSYNC`) or `fdatasync` (`IOCB_CMD_FDSYNC`).
#[derive(Debug)]
pub struct Sync {
    data_only: bool,
}

impl private::Sealed for Sync {}
impl Operation for Sync {
    type Output = io::Result<()>;
    fn prepare(&mut self, cb: &mut iocb, _: &mut Vec<Iovec>) {
        cb.aio_lio_opcode = if self.data_only {
            raw::IOCB_CMD_FDSYNC
        } else {
            raw::IOCB_CMD_FSYNC
        };
    }
    fn finish(self, res: Result<usize, Errno>) -> Self::Output {
        res.map(drop).map_err(err)
    }
}

/// A readiness wait (`IOCB_CMD_POLL`, Linux 4.19); cancelled when dropped in flight.
#[derive(Debug)]
pub struct PollOp {
    events: PollFlags,
}

impl private::Sealed for PollOp {}
impl Operation for PollOp {
    type Output = io::Result<PollFlags>;
    const CANCELABLE: bool = true;
    fn prepare(&mut self, cb: &mut iocb, _: &mut Vec<Iovec>) {
        cb.aio_lio_opcode = raw::IOCB_CMD_POLL;
        // `bits()` is u16 or i16 depending on rustix's backend; the kernel wants the mask.
        #[allow(clippy::unnecessary_cast)]
        let mask = self.events.bits() as u16;
        cb.aio_buf = u64::from(mask);
    }
    fn finish(self, res: Result<usize, Errno>) -> Self::Output {
        match res {
            // A cancelled poll completes with an empty mask (the kernel adds POLLERR and
            // POLLHUP to every other result).
            Ok(0) => Err(err(Errno::CANCELED)),
            #[allow(clippy::unnecessary_cast)]
            Ok(mask) => Ok(PollFlags::from_bits_retain(mask as _)),
            Err(e) => Err(err(e)),
        }
    }
}

/// The future of one request; see [`File`](crate::File) for the operations. Resolves to the
/// result and, for reads and writes, the buffer. Dropping it in flight is safe: see the module
/// and crate documentation.
///
/// It keeps the driver's table alive, not the driver: the kernel context is shut down and
/// destroyed once every [`Driver`] and [`File`](crate::File) handle is gone and nothing is in
/// flight, even if a future is leaked (`mem::forget`).
#[must_use = "a request does nothing unless awaited"]
pub struct Op<T: Operation> {
    shared: Arc<Shared>,
    fd: Option<Arc<OwnedFd>>,
    /// The file performs buffered reads and writes inside `io_submit` (see `File`).
    synchronous: bool,
    op: Option<T>,
    flags: RwFlags,
    /// Completes with this error at its first poll, never reaching the kernel (a read or write
    /// on a blocking stream, see `File`).
    refused: Option<Errno>,
    /// A read or write on a stream: the turn checks again, right before `io_submit`, that the
    /// descriptor is non-blocking (see `File`).
    stream: bool,
    /// The table slot, and its generation, once queued.
    slot: Option<(u32, u32)>,
    /// Our id in the queue of futures waiting for a slot.
    waiter: Option<u64>,
}

/// Never shows the operation: while the request is in flight the kernel may be writing into
/// its buffer, which no shared borrow may look at.
impl<T: Operation> std::fmt::Debug for Op<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("operation", &std::any::type_name::<T>())
            .field("slot", &self.slot)
            .field("finished", &self.op.is_none())
            .finish_non_exhaustive()
    }
}

impl<T: Operation> Op<T> {
    pub(crate) fn new(driver: &Driver, fd: &Arc<OwnedFd>, synchronous: bool, op: T) -> Op<T> {
        Op {
            shared: driver.shared().clone(),
            fd: Some(fd.clone()),
            synchronous,
            op: Some(op),
            flags: RwFlags::empty(),
            refused: None,
            stream: false,
            slot: None,
            waiter: None,
        }
    }

    /// A read or write on a stream: with `error` (the descriptor is in blocking mode now) it
    /// completes at its first poll without reaching the kernel; else the driving turn checks
    /// the mode again right before it submits the request.
    pub(crate) fn on_stream(mut self, error: Option<Errno>) -> Op<T> {
        self.refused = error;
        self.stream = true;
        self
    }

    /// Per-request `RWF_*` flags (`aio_rw_flags`) for a read or write, such as
    /// `RwFlags::NOWAIT` or `RwFlags::DSYNC`; the kernel refuses them on syncs and polls
    /// (`EINVAL`) and unknown bits (`EOPNOTSUPP`). Takes effect if set before the first poll.
    pub fn rw_flags(mut self, flags: RwFlags) -> Op<T> {
        self.flags = flags;
        self
    }
}

/// The output of a finished request, taking its operation (and buffer) out of the future.
fn output<T: Operation>(op: &mut Option<T>, res: Result<usize, Errno>) -> T::Output {
    // Polled after it returned Ready: a caller bug, as with any future.
    op.take().expect("Op polled after completion").finish(res)
}

/// The kernel's `res` as a result (a value outside the errno range reads as `EIO`).
fn decode(res: i64) -> Result<usize, Errno> {
    linux_aio::Event::from_raw(io_event {
        res,
        ..Default::default()
    })
    .result()
}

/// Why the table takes no more requests, if it does not.
fn refusal(t: &Table) -> Option<Errno> {
    t.broken.or(t.closed.then_some(Errno::CANCELED))
}

impl<T: Operation> Future for Op<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = self.get_mut();
        if this.shared.forked() {
            // A forked child's copy of the driver: the kernel context is the parent's, and the
            // kernel writes the parent's memory, never this copy of the buffer. Fail at once,
            // without the table's lock (another thread may have held it at the fork).
            this.slot = None;
            this.waiter = None;
            return Poll::Ready(output(&mut this.op, Err(Errno::INVAL)));
        }
        // Borrowed, not cloned: no reference-count traffic per poll.
        let shared = &*this.shared;
        if let Some((i, generation)) = this.slot {
            // No user code (a waker's clone or drop) under the lock: a waker is cloned only
            // when the stored one would not wake this task, between two lock sections.
            let mut new = None;
            loop {
                let mut t = lock(&shared.table);
                let slot = &mut t.slots[i as usize];
                debug_assert_eq!(slot.generation, generation);
                if let State::Done(res) = slot.state {
                    let fd = slot.fd.take();
                    let old = slot.waker.take();
                    let mut none = Vec::new(); // the slot keeps nothing else: stays empty
                    let next = t.release(i, &mut none);
                    drop(t);
                    this.slot = None;
                    if let Some(w) = next {
                        w.wake();
                    }
                    drop((old, new, fd));
                    return Poll::Ready(output(&mut this.op, decode(res)));
                }
                if slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    drop(t);
                    drop(new);
                    return Poll::Pending;
                }
                if let Some(w) = new.take() {
                    let old = slot.waker.replace(w);
                    drop(t);
                    drop(old);
                    return Poll::Pending;
                }
                drop(t);
                new = Some(cx.waker().clone());
            }
        }
        if this.op.is_none() {
            panic!("Op polled after completion");
        }
        // First poll, or waiting for a slot: clone the waker before locking.
        let waker = cx.waker().clone();
        let mut t = lock(&shared.table);
        if let Some(e) = refusal(&t).or(this.refused) {
            let next = this.waiter.take().and_then(|id| t.leave_room(id));
            drop(t);
            if let Some(w) = next {
                w.wake();
            }
            drop(waker);
            return Poll::Ready(output(&mut this.op, Err(e)));
        }
        let i = if let Some(i) = this.waiter.and_then(|id| t.granted.remove(&id)) {
            // A released slot was handed to us.
            this.waiter = None;
            i
        } else if let Some(i) = t.free.pop() {
            // (Free slots only exist while nobody waits: a released slot goes to the oldest
            // waiter first.)
            if let Some(id) = this.waiter.take() {
                t.room.remove(&id);
            }
            i
        } else {
            // Back-pressure: wait for a slot, in order of arrival.
            let old = match this.waiter {
                Some(id) if t.room.contains_key(&id) => t.room.insert(id, waker),
                _ => {
                    let id = t.next_waiter;
                    t.next_waiter += 1;
                    this.waiter = Some(id);
                    t.room.insert(id, waker)
                }
            };
            drop(t);
            drop(old);
            return Poll::Pending;
        };
        let slot = &mut t.slots[i as usize];
        let generation = slot.generation;
        let iov = std::mem::take(&mut slot.iov);
        let quiet = T::MAY_BE_QUIET && this.synchronous && !t.always_signal;
        drop(t);
        // The request is written outside the lock: `prepare` calls the buffer's `IoBuf`
        // methods (user code). The slot is ours: off the free list, not yet queued. Should
        // that code panic, the guard gives the slot back as it unwinds: the panic fails this
        // request only (the future, polled again, starts over).
        let mut guard = Taken {
            shared,
            slot: i,
            iov: Some(iov),
        };
        let op = this.op.as_mut().expect("checked above");
        let mut cb = iocb::default();
        op.prepare(
            &mut cb,
            guard.iov.as_mut().expect("the guard holds the iovecs"),
        );
        let iov = guard.iov.take().expect("the guard holds the iovecs");
        std::mem::forget(guard);
        let fd = this.fd.take().expect("an unqueued Op has its fd");
        cb.aio_rw_flags = this.flags.bits() as i32; // __kernel_rwf_t: the same bits
        shared.stamp(&mut cb, i, generation, &fd, !quiet);
        let mut t = lock(&shared.table);
        t.slots[i as usize].iov = iov;
        if let Some(e) = refusal(&t) {
            // Shut down meanwhile: the slot goes back, the request never reaches the kernel.
            let next = t.give(i);
            drop(t);
            if let Some(w) = next {
                w.wake();
            }
            drop((waker, fd));
            return Poll::Ready(output(&mut this.op, Err(e)));
        }
        let slot = &mut t.slots[i as usize];
        slot.cb = cb;
        slot.quiet = quiet;
        slot.fd = Some(fd);
        slot.waker = Some(waker);
        slot.cancelable = T::CANCELABLE;
        slot.stream = this.stream;
        slot.state = State::Queued;
        // The first request of a batch wakes the driving task (after the lock: its waker may
        // make a system call, as the driver thread's does). It registers again at its turn.
        let flush = if t.pending.is_empty() {
            t.take_flush()
        } else {
            Flush::default()
        };
        t.pending.push_back(i);
        drop(t);
        this.slot = Some((i, generation));
        flush.wake(Some(&shared.table));
        Poll::Pending
    }
}

/// A slot taken off the free list by a first poll, while its request is written (user code:
/// the buffer's `IoBuf` methods). Dropped only if that code panics: the slot (and its iovec
/// array) goes back, to the oldest future waiting for one or to the free list.
struct Taken<'a> {
    shared: &'a Shared,
    slot: u32,
    iov: Option<Vec<Iovec>>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        let next = {
            let mut t = lock(&self.shared.table);
            if let Some(iov) = self.iov.take() {
                t.slots[self.slot as usize].iov = iov;
            }
            t.give(self.slot)
        };
        if let Some(w) = next {
            // We are unwinding: a second panic (in that waker) would abort the process.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.wake()));
        }
    }
}

impl<T: Operation> Op<T> {
    /// Leaves the queue of futures waiting for a slot, passing a slot handed to this future
    /// (which it will not use) on to the next waiter.
    fn leave_room_queue(&mut self) {
        if let Some(id) = self.waiter.take() {
            let next = lock(&self.shared.table).leave_room(id);
            if let Some(w) = next {
                w.wake();
            }
        }
    }
}

impl<T: Operation> Drop for Op<T> {
    fn drop(&mut self) {
        if self.shared.forked() {
            // A forked child's copy: the kernel never writes into this process's copy of the
            // buffer, so it may go; the table is left alone (its lock may have been held by a
            // thread of the parent at the fork).
            return;
        }
        self.leave_room_queue();
        let Some((i, generation)) = self.slot.take() else {
            return; // never queued, or completed: the buffer drops with `self`
        };
        let shared = &*self.shared;
        let mut trash: Vec<Trash> = Vec::new();
        let mut wake = None;
        let mut flush = Flush::default();
        let old;
        {
            let mut t = lock(&shared.table);
            let slot = &mut t.slots[i as usize];
            debug_assert_eq!(slot.generation, generation);
            // Our waker is dropped after the lock (user code).
            old = slot.waker.take();
            match slot.state {
                State::Queued => {
                    // Not yet taken by the driver: it never reaches the kernel.
                    t.pending.remove(i);
                    wake = t.release(i, &mut trash);
                }
                State::InFlight => {
                    // The kernel may still read or write the buffer: the slot keeps it until the
                    // completion is reaped. (One allocation, on this cold path only.)
                    slot.abandoned = true;
                    slot.orphan = self.op.take().map(|op| Box::new(op) as Trash);
                    if slot.cancelable {
                        t.cancels.push((i, generation));
                        flush = t.take_flush();
                    }
                }
                State::Done(_) => wake = t.release(i, &mut trash),
                State::Free => debug_assert!(false, "a live Op's slot is never free"),
            }
        }
        if let Some(w) = wake {
            w.wake();
        }
        flush.wake(Some(&shared.table));
        drop(old);
        drop(trash);
    }
}

pub(crate) fn read<B: IoBufMut>(
    d: &Driver,
    fd: &Arc<OwnedFd>,
    sync_io: bool,
    buf: B,
    off: u64,
) -> Op<Read<B>> {
    Op::new(d, fd, sync_io, Read { buf, offset: off })
}

pub(crate) fn write<B: IoBuf>(
    d: &Driver,
    fd: &Arc<OwnedFd>,
    sync_io: bool,
    buf: B,
    off: u64,
) -> Op<Write<B>> {
    Op::new(d, fd, sync_io, Write { buf, offset: off })
}

pub(crate) fn readv<B: IoBufMut>(
    d: &Driver,
    fd: &Arc<OwnedFd>,
    sync_io: bool,
    bufs: Vec<B>,
    off: u64,
) -> Op<ReadV<B>> {
    Op::new(d, fd, sync_io, ReadV { bufs, offset: off })
}

pub(crate) fn writev<B: IoBuf>(
    d: &Driver,
    fd: &Arc<OwnedFd>,
    sync_io: bool,
    bufs: Vec<B>,
    off: u64,
) -> Op<WriteV<B>> {
    Op::new(d, fd, sync_io, WriteV { bufs, offset: off })
}

pub(crate) fn sync(d: &Driver, fd: &Arc<OwnedFd>, sync_io: bool, data_only: bool) -> Op<Sync> {
    Op::new(d, fd, sync_io, Sync { data_only })
}

pub(crate) fn poll(d: &Driver, fd: &Arc<OwnedFd>, sync_io: bool, events: PollFlags) -> Op<PollOp> {
    Op::new(d, fd, sync_io, PollOp { events })
}
