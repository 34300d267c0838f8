//! The layer's engine: queueing, the kernel requests behind each control block, the
//! completions that move them on, cancellation and notification.
//!
//! Files (and syncs) go to the kernel as one request each. A stream request (pipe, socket,
//! terminal, ...) is a small state machine, one request per descriptor and direction at a time:
//!
//! - it first tries the transfer with `RWF_NOWAIT` (it completes inside `io_submit`); `EAGAIN`
//!   means "not ready": a kernel POLL waits for readiness, and the transfer is tried again;
//! - where the kernel refuses `RWF_NOWAIT` for the file (`EOPNOTSUPP`: Linux 6.1 for pipes and
//!   sockets, later kernels for FIFOs and terminals), the transfer goes without it, but only
//!   right after a readiness report, and only on descriptors where that cannot block: pipes and
//!   byte-stream sockets in chunks of `PIPE_BUF`, datagram and seqpacket sockets a whole message
//!   at a time. Anything else (a terminal) fails with `EOPNOTSUPP` rather than block a call;
//! - a read ends with its first transfer; a write goes on until all of it is written, or an
//!   error stops it (it then ends with the count written, if any);
//! - zero-byte requests and requests on listening sockets never wait: `read`/`write` return at
//!   once there, and so does the transfer;
//! - where the kernel cannot POLL a descriptor at all (it refuses files that wait on two queues:
//!   a FIFO opened for reading and writing, terminals), a request that would have to wait fails
//!   with `EOPNOTSUPP` (a write that has transferred part of its data ends with that count).

use core::time::Duration;

use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

use super::{
    Aio, Aiocb, CancelStatus, Id, Kind, Notify, Op, Refused, State, SyncMode, AIO_PRIO_DELTA_MAX,
};
use crate::request::{Buffer, IoPriority, IoPriorityClass, Request, RwFlags};

/// The file a regular file's or block device's descriptor names, `(st_dev, st_ino)`: what an
/// fsync flushes and `O_DIRECT` writes reach, so an `aio_fsync` waits for the earlier requests
/// on it through any descriptor. `None` for anything else (then only the descriptor number ties
/// an fsync to earlier requests): a pipe's two ends share one inode, and every eventfd, timerfd
/// and epoll descriptor shares the anonymous inode, but an fsync of those fails at once
/// (`EINVAL`), and must not wait behind an unrelated read that may never end.
pub(super) type FileId = Option<(u64, u64)>;

/// What a request on this descriptor needs: its [`Kind`], whether it is "immediate" (see the
/// module docs) and its [`FileId`], all from one `fstat`. Refuses what could only fail or wait
/// for ever: `EISDIR` for a read or write on a directory; `EBADF` for a read on a descriptor not
/// open for reading, a write (or a sync, as glibc's aio_fsync says) on one not open for writing.
pub(super) fn classify(cb: &Aiocb<'_>) -> Result<(Kind, bool, FileId), Errno> {
    use rustix::fs::{FileType, OFlags};
    let st = rustix::fs::fstat(cb.fd)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    let file = matches!(kind, FileType::RegularFile | FileType::BlockDevice)
        .then_some((st.st_dev as u64, st.st_ino as u64));
    let mode = rustix::fs::fcntl_getfl(cb.fd)? & OFlags::RWMODE;
    let readable = mode == OFlags::RDONLY || mode == OFlags::RDWR;
    let writable = mode == OFlags::WRONLY || mode == OFlags::RDWR;
    match cb.op {
        Op::Fsync(_) if !writable => return Err(Errno::BADF),
        Op::Fsync(_) => return Ok((Kind::File, false, file)),
        _ if kind == FileType::Directory => return Err(Errno::ISDIR),
        Op::Read if !readable => return Err(Errno::BADF),
        Op::Write if !writable => return Err(Errno::BADF),
        _ => {}
    }
    let empty = cb.buffer.is_empty();
    Ok(match kind {
        FileType::RegularFile | FileType::BlockDevice => (Kind::File, false, file),
        FileType::Fifo => (Kind::Pipe, empty, None),
        FileType::Socket => {
            use rustix::net::{sockopt, SocketType};
            let listening = sockopt::socket_acceptconn(cb.fd).unwrap_or(false);
            let message = matches!(
                sockopt::socket_type(cb.fd),
                Ok(SocketType::DGRAM | SocketType::SEQPACKET | SocketType::RDM)
            );
            let kind = if message {
                Kind::MessageSocket
            } else {
                Kind::ByteSocket
            };
            (kind, empty || listening, None)
        }
        _ => (Kind::Other, empty, None),
    })
}

/// `ANON_INODE_FS_MAGIC` (linux/magic.h): the filesystem of eventfds, and of the other
/// anonymous-inode descriptors (signalfd, timerfd, epoll, ...), which all refuse an 8-byte write.
const ANON_INODE_FS_MAGIC: u32 = 0x0904_1934;

/// A request not yet finished: queued, waiting for readiness, or in the kernel.
fn pending(state: State) -> bool {
    matches!(
        state,
        State::Queued | State::Polling(_) | State::InKernel(_)
    )
}

/// `EINVAL` unless `fd` is an anonymous-inode descriptor such as an eventfd (see
/// [`Notify::Eventfd`]).
fn check_eventfd(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let fs = rustix::fs::fstatfs(fd)?;
    // f_type is a signed or unsigned word depending on the architecture; the magic is 32 bits.
    #[allow(clippy::unnecessary_cast)]
    let kind = fs.f_type as u64 as u32;
    if kind == ANON_INODE_FS_MAGIC {
        Ok(())
    } else {
        Err(Errno::INVAL)
    }
}

/// `PIPE_BUF`: a pipe that polls writable has room for at least this many bytes.
const PIPE_BUF: usize = 4096;

/// How many reap-and-advance rounds one call may take (see `Aio::advance`).
const ADVANCE_ROUNDS: usize = 64;

fn user_data(index: usize, generation: u32) -> u64 {
    (u64::from(generation) << 32) | index as u64
}

/// What to hand the kernel for a slot.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Submit {
    /// The transfer or sync.
    Transfer,
    /// A POLL for the readiness the transfer needs.
    Poll,
}

/// `result`, or the count written so far when a write has transferred part of its data.
fn partial_or(done: usize, result: Result<usize, Errno>) -> Result<usize, Errno> {
    if done > 0 {
        Ok(done)
    } else {
        result
    }
}

/// Frees a slot whose request was never handed back to the caller, if `enqueue` unwinds
/// (a notification callback that panics while the request completes inside `aio_read`).
struct Unclaimed<'g, 'a, 'scope, 'env, const N: usize> {
    aio: &'g Aio<'a, 'scope, 'env, N>,
    index: usize,
}

impl<const N: usize> Drop for Unclaimed<'_, '_, '_, '_, N> {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.aio.inner.try_borrow_mut() {
            let slot = &mut inner.slots[self.index];
            if matches!(slot.state, State::Done(_)) {
                slot.state = State::Free;
                slot.cb = None;
            }
        }
    }
}

impl<'a, 'scope, 'env, const N: usize> Aio<'a, 'scope, 'env, N> {
    /// Cancels the marked slots that can be cancelled, then lets each stream move on.
    ///
    /// A stream write that has transferred part of its data is in progress, so it is not
    /// cancelled (`NotCanceled`) but goes on; with `ending` (the layer is closing, nothing
    /// will move it on any more) it completes short instead, with the count written, as a
    /// `write` interrupted after transferring some data does.
    pub(super) fn cancel_slots(&self, targets: &[bool; N], ending: bool) -> CancelStatus {
        let (mut canceled, mut not_canceled) = (false, false);
        for i in (0..N).filter(|&i| targets[i]) {
            let (state, done) = {
                let inner = self.inner.borrow();
                (inner.slots[i].state, inner.slots[i].done)
            };
            let partial = done > 0 && matches!(state, State::Queued | State::Polling(_));
            if partial && !ending {
                not_canceled = true;
                continue;
            }
            match state {
                State::Queued => {}
                State::Polling(ticket) => {
                    if let Some(scope) = self.scope {
                        // Whatever the kernel answers (cancelled, or ready a moment ago), the
                        // transfer has not started, so the request is cancelled here; the
                        // POLL's own completion is discarded when it arrives.
                        let _ = scope.cancel(ticket);
                        let mut inner = self.inner.borrow_mut();
                        if let Some(o) = inner.orphans.iter_mut().find(|o| o.is_none()) {
                            *o = Some(ticket);
                        }
                    }
                }
                State::InKernel(_) => {
                    not_canceled = true;
                    continue;
                }
                State::Done(_) | State::Free => continue,
            }
            if partial {
                self.finish_slot(i, Ok(done));
            } else {
                canceled = true;
                self.finish_slot(i, Err(Errno::CANCELED));
            }
        }
        self.start_streams();
        if not_canceled {
            CancelStatus::NotCanceled
        } else if canceled {
            CancelStatus::Canceled
        } else {
            CancelStatus::AllDone
        }
    }

    /// [`Aio::progress`]. A stream transfer completes inside its submission, so each round
    /// takes the completions the previous one caused; the rounds are bounded so that a peer
    /// that keeps a stream busy cannot keep a call here. Completions the scope has reaped but
    /// the layer has not taken (a notification callback panicked while they were handed over)
    /// are taken too.
    pub(super) fn advance(&self) {
        if let Some(efd) = self.eventfd {
            let mut b = [0u8; 8];
            let _ = rustix::io::read(efd, &mut b);
        }
        for _ in 0..ADVANCE_ROUNDS {
            let mut took = 0;
            if let Some(scope) = self.scope {
                if scope.in_flight() > 0 || scope.reaped() > 0 {
                    if let Ok(completions) = scope.wait(0, Some(Duration::ZERO)) {
                        took = self.absorb(completions);
                    }
                }
            }
            self.start_streams();
            if took == 0 {
                break;
            }
        }
    }

    /// When `with`'s closure returns: cancels what can be cancelled, completes partial stream
    /// writes short, then waits for what the kernel is executing, so that every request is
    /// notified as it completes ("the normal asynchronous completion process shall take place
    /// for those requests when they are completed"). A forked child's copy does nothing: the
    /// requests are the parent's.
    pub(super) fn finish(&self) {
        if self.check().is_err() {
            return;
        }
        self.closing.set(true);
        self.advance();
        let targets: [bool; N] = {
            let inner = self.inner.borrow();
            core::array::from_fn(|i| {
                let s = &inner.slots[i];
                // An fsync held behind earlier requests on its descriptor is not cancelled:
                // it runs once they complete, as it would have had the kernel taken it.
                let held_fsync = s.state == State::Queued
                    && matches!(s.cb.as_ref().map(|c| c.op), Some(Op::Fsync(_)));
                matches!(s.state, State::Queued | State::Polling(_)) && !held_fsync
            })
        };
        self.cancel_slots(&targets, true);
        let Some(scope) = self.scope else { return };
        while scope.in_flight() > 0 || scope.reaped() > 0 {
            match scope.wait(1.min(scope.in_flight()), None) {
                Ok(completions) => {
                    self.absorb(completions);
                    self.start_streams();
                }
                Err(Errno::INTR) => {}
                Err(_) => return, // the scope's own drain takes over
            }
        }
    }

    /// Queues `cb`, or hands it back with the reason it cannot be queued.
    pub(super) fn enqueue(&self, cb: Aiocb<'scope>) -> Result<Id, Refused<'scope>> {
        let refuse = |error, aiocb| Err(Refused { error, aiocb });
        if let Notify::Eventfd(fd) = cb.notify {
            if let Err(e) = check_eventfd(fd) {
                return refuse(e, cb);
            }
        }
        if cb.reqprio > AIO_PRIO_DELTA_MAX {
            return refuse(Errno::INVAL, cb);
        }
        let (kind, immediate, file) = match classify(&cb) {
            Ok(k) => k,
            Err(e) => return refuse(e, cb),
        };
        // An fsync starts from `start_streams`, once nothing before it on its descriptor is
        // pending.
        let is_fsync = matches!(cb.op, Op::Fsync(_));
        let id = {
            let mut inner = self.inner.borrow_mut();
            let Some(index) = inner.slots.iter().position(|s| s.state == State::Free) else {
                return refuse(Errno::AGAIN, cb);
            };
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let slot = &mut inner.slots[index];
            slot.generation = slot.generation.wrapping_add(1);
            slot.kind = kind;
            slot.immediate = immediate;
            slot.done = 0;
            slot.nowait = kind != Kind::File;
            slot.ready = false;
            slot.seq = seq;
            slot.state = State::Queued;
            slot.file = file;
            slot.cb = Some(cb);
            self.id(index, slot.generation)
        };
        let guard = Unclaimed {
            aio: self,
            index: id.index as usize,
        };
        if self.scope.is_none() {
            self.run_synchronously(id.index as usize);
        } else if kind == Kind::File && !is_fsync {
            self.submit_to_kernel(id.index as usize, Submit::Transfer);
        }
        self.start_streams();
        core::mem::forget(guard);
        Ok(id)
    }

    /// The next step of stream slot `i`, queued and first in line on its descriptor and
    /// direction (see the module docs).
    fn step(&self, i: usize) {
        let (kind, immediate, nowait, ready, done) = {
            let inner = self.inner.borrow();
            let s = &inner.slots[i];
            (s.kind, s.immediate, s.nowait, s.ready, s.done)
        };
        if self.closing.get() && !immediate {
            // Nothing waits for readiness any more once the layer is closing.
            return self.finish_slot(i, partial_or(done, Err(Errno::CANCELED)));
        }
        if immediate || nowait {
            self.submit_to_kernel(i, Submit::Transfer);
        } else if !ready {
            self.submit_to_kernel(i, Submit::Poll);
        } else if kind == Kind::Other {
            // No RWF_NOWAIT here, and no size that a readiness report guarantees to fit.
            self.finish_slot(i, partial_or(done, Err(Errno::OPNOTSUPP)));
        } else {
            self.submit_to_kernel(i, Submit::Transfer);
        }
    }

    /// Hands slot `i` to the kernel. On `EAGAIN` from `io_submit` (no ring space) the slot
    /// stays queued, to be retried, if anything in flight can make room; other refusals
    /// complete it.
    pub(super) fn submit_to_kernel(&self, i: usize, what: Submit) {
        let Some(scope) = self.scope else { return };
        let request = {
            let mut inner = self.inner.borrow_mut();
            let slot = &mut inner.slots[i];
            let data = user_data(i, slot.generation);
            let (stream, kind, nowait, done) = (slot.stream(), slot.kind, slot.nowait, slot.done);
            let immediate = slot.immediate;
            // A transfer uses the readiness report, a POLL waits anew (restored if refused).
            let was_ready = core::mem::replace(&mut slot.ready, false);
            let Some(cb) = slot.cb.as_mut() else { return };
            let mut req = if what == Submit::Poll {
                let events = if cb.op == Op::Write {
                    rustix::event::PollFlags::OUT
                } else {
                    rustix::event::PollFlags::IN
                };
                Request::poll(cb.fd, events)
            } else {
                let offset = if stream { 0 } else { cb.offset };
                let nowait = stream && nowait && !immediate;
                let r = match cb.op {
                    Op::Read => match core::mem::replace(&mut cb.buffer, Buffer::None) {
                        Buffer::Read(b) => Request::read(cb.fd, b, offset),
                        other => {
                            cb.buffer = other;
                            drop(inner);
                            return self.finish_slot(i, Err(Errno::INVAL));
                        }
                    },
                    // A shared slice is Copy: the control block keeps the whole buffer, and a
                    // stream write transfers what is left of it, in chunks a readiness report
                    // guarantees to fit where there is no RWF_NOWAIT.
                    Op::Write => match cb.buffer {
                        Buffer::Write(b) if stream => {
                            let rest = &b[done.min(b.len())..];
                            let cap = if nowait || kind == Kind::MessageSocket {
                                rest.len()
                            } else {
                                PIPE_BUF
                            };
                            Request::write(cb.fd, &rest[..rest.len().min(cap)], offset)
                        }
                        Buffer::Write(b) => Request::write(cb.fd, b, offset),
                        _ => {
                            drop(inner);
                            return self.finish_slot(i, Err(Errno::INVAL));
                        }
                    },
                    Op::Fsync(SyncMode::Sync) => Request::fsync(cb.fd),
                    Op::Fsync(SyncMode::DataSync) => Request::fdsync(cb.fd),
                };
                let r = if nowait { r.flags(RwFlags::NOWAIT) } else { r };
                match IoPriority::new(IoPriorityClass::BestEffort, cb.reqprio.min(7)) {
                    Some(p) if cb.reqprio > 0 => r.priority(p),
                    _ => r,
                }
            };
            req = req.user_data(data);
            if let Some(efd) = self.eventfd {
                // The layer's eventfd is created before the scope and closed after it has
                // drained, so it outlives every request.
                req = req.eventfd_unchecked(efd);
            }
            (req, was_ready)
        };
        let (request, was_ready) = request;
        match scope.submit(request) {
            Ok(ticket) => {
                self.inner.borrow_mut().slots[i].state = match what {
                    Submit::Poll => State::Polling(ticket),
                    Submit::Transfer => State::InKernel(ticket),
                };
            }
            Err(rejected) => {
                // Take a moved-out (read) buffer back; EAGAIN leaves the request queued.
                let buffer = rejected.request.into_buffer();
                let done = {
                    let mut inner = self.inner.borrow_mut();
                    let slot = &mut inner.slots[i];
                    if let Some(cb) = slot.cb.as_mut() {
                        if matches!(cb.buffer, Buffer::None) {
                            cb.buffer = buffer;
                        }
                    }
                    slot.ready = was_ready;
                    slot.done
                };
                match rejected.error {
                    // No ring space: a completion will make room, and the request is retried
                    // then. With nothing in flight no completion can: the kernel lacks
                    // something else (memory for the request), and the request fails with
                    // EAGAIN rather than stay EINPROGRESS with nothing to end it.
                    Errno::AGAIN if scope.in_flight() == 0 => {
                        self.finish_slot(i, partial_or(done, Err(Errno::AGAIN)))
                    }
                    Errno::AGAIN => {}
                    Errno::OPNOTSUPP if what == Submit::Transfer && self.refuse_nowait(i) => {
                        self.step(i)
                    }
                    // The kernel cannot POLL this descriptor (a FIFO open for reading and
                    // writing, a terminal: they wait on two queues), so nothing can wait for
                    // it without blocking a call.
                    Errno::INVAL if what == Submit::Poll => {
                        self.finish_slot(i, partial_or(done, Err(Errno::OPNOTSUPP)))
                    }
                    e => self.finish_slot(i, partial_or(done, Err(e))),
                }
            }
        }
    }

    /// The kernel refused `RWF_NOWAIT` for slot `i`'s descriptor: from now on its transfers go
    /// without it, after readiness reports (see the module docs). True if slot `i` was still
    /// trying `RWF_NOWAIT`.
    pub(super) fn refuse_nowait(&self, i: usize) -> bool {
        let slot = &mut self.inner.borrow_mut().slots[i];
        core::mem::replace(&mut slot.nowait, false) && slot.stream()
    }

    /// Starts the oldest queued request of every stream (descriptor and direction) that has
    /// none active, and retries file requests that were waiting for ring space.
    pub(super) fn start_streams(&self) {
        if self.scope.is_none() {
            return;
        }
        for i in 0..N {
            let (start, stream) = {
                let inner = self.inner.borrow();
                let s = &inner.slots[i];
                if s.state != State::Queued {
                    continue;
                }
                if !s.stream() {
                    // An aio_fsync covers every request queued before it on its file (POSIX),
                    // and the kernel's IOCB_CMD_FSYNC does not wait for O_DIRECT writes in
                    // flight: it waits here until those have completed. The same file: the same
                    // descriptor number, or the same FileId.
                    let fd = s.cb.as_ref().map(|c| c.fd.as_raw_fd());
                    let barrier = matches!(s.cb.as_ref().map(|c| c.op), Some(Op::Fsync(_)))
                        && inner.slots.iter().any(|o| {
                            o.seq < s.seq
                                && pending(o.state)
                                && (o.cb.as_ref().map(|c| c.fd.as_raw_fd()) == fd
                                    || (s.file.is_some() && o.file == s.file))
                        });
                    (!barrier, false)
                } else {
                    let line = |o: &super::Slot<'_>| {
                        o.cb.as_ref().map(|c| (c.fd.as_raw_fd(), c.op == Op::Read))
                    };
                    let mine = line(s);
                    let ahead = inner.slots.iter().any(|o| {
                        o.stream()
                            && line(o) == mine
                            && (matches!(o.state, State::Polling(_) | State::InKernel(_))
                                || (o.state == State::Queued && o.seq < s.seq))
                    });
                    (!ahead, true)
                }
            };
            match (start, stream) {
                (true, true) => self.step(i),
                (true, false) => self.submit_to_kernel(i, Submit::Transfer),
                _ => {}
            }
        }
    }

    /// Applies a batch of kernel completions to the control blocks; returns how many it took.
    pub(super) fn absorb(
        &self,
        completions: crate::scope::Completions<'_, 'scope, 'env, N>,
    ) -> usize {
        let mut took = 0;
        for c in completions {
            took += 1;
            let data = c.event.user_data();
            let (i, generation) = ((data & 0xffff_ffff) as usize, (data >> 32) as u32);
            let orphan = {
                let mut inner = self.inner.borrow_mut();
                match inner.orphans.iter_mut().find(|o| **o == Some(c.ticket)) {
                    Some(o) => {
                        *o = None;
                        true
                    }
                    None => false,
                }
            };
            if orphan {
                continue; // a cancelled POLL's completion: the request was already finished
            }
            let (state, stream, done, write_len) = {
                let mut inner = self.inner.borrow_mut();
                let Some(slot) = inner
                    .slots
                    .get_mut(i)
                    .filter(|s| s.generation == generation)
                else {
                    continue;
                };
                if let Some(cb) = slot
                    .cb
                    .as_mut()
                    .filter(|cb| matches!(cb.buffer, Buffer::None))
                {
                    cb.buffer = c.buffer;
                }
                let write_len = slot.cb.as_ref().and_then(|cb| match cb.buffer {
                    Buffer::Write(b) if cb.op == Op::Write => Some(b.len()),
                    _ => None,
                });
                (slot.state, slot.stream(), slot.done, write_len)
            };
            match state {
                State::Polling(t) if t == c.ticket => {
                    let mut inner = self.inner.borrow_mut();
                    inner.slots[i].state = State::Queued;
                    match c.event.result() {
                        Ok(_) => {
                            inner.slots[i].ready = true;
                            drop(inner);
                            self.step(i);
                        }
                        Err(e) => {
                            drop(inner);
                            self.finish_slot(i, partial_or(done, Err(e)));
                        }
                    }
                }
                State::InKernel(t) if t == c.ticket => match c.event.result() {
                    // A stream write goes on until all of it is written, as a blocking
                    // write() does.
                    Ok(n) if stream && write_len.is_some_and(|len| n > 0 && done + n < len) => {
                        let mut inner = self.inner.borrow_mut();
                        inner.slots[i].done = done + n;
                        inner.slots[i].state = State::Queued;
                        drop(inner);
                        self.step(i);
                    }
                    Ok(n) if stream && write_len.is_some() => self.finish_slot(i, Ok(done + n)),
                    // Not ready after all (RWF_NOWAIT would block): wait for readiness.
                    Err(Errno::AGAIN) if stream => {
                        self.inner.borrow_mut().slots[i].state = State::Queued;
                        if self.closing.get() {
                            self.finish_slot(i, partial_or(done, Err(Errno::CANCELED)));
                        } else {
                            self.submit_to_kernel(i, Submit::Poll);
                        }
                    }
                    // The kernel refused RWF_NOWAIT in the completion rather than at submission.
                    Err(Errno::OPNOTSUPP) if stream && self.refuse_nowait(i) => {
                        self.inner.borrow_mut().slots[i].state = State::Queued;
                        self.step(i);
                    }
                    // An error after part of a write: the count written, as write() says.
                    result => self.finish_slot(i, partial_or(done, result)),
                },
                _ => {}
            }
        }
        took
    }

    /// Completes slot `i` with `result` and announces it.
    pub(super) fn finish_slot(&self, i: usize, result: Result<usize, Errno>) {
        let (notify, id) = {
            let mut inner = self.inner.borrow_mut();
            let slot = &mut inner.slots[i];
            slot.state = State::Done(result);
            (
                slot.cb.as_ref().map_or(Notify::None, |c| c.notify),
                (i, slot.generation),
            )
        };
        match notify {
            Notify::None => {}
            Notify::Callback(f) => f(self.id(id.0, id.1)),
            Notify::Eventfd(fd) => {
                // Only if the write cannot block: an eventfd is writable unless its counter is
                // about to overflow.
                let mut pfd = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::OUT,
                )];
                let zero = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                if rustix::event::poll(&mut pfd, Some(&zero)) == Ok(1) {
                    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
                }
            }
        }
    }
}
