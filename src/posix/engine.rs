//! The layer's engine: queueing, the kernel requests behind each control block (a transfer or
//! sync for files; a readiness POLL, then transfers, for streams), the completions that move
//! them on, cancellation and notification.

use core::time::Duration;

use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

use super::{Aio, Aiocb, CancelStatus, Id, Notify, Op, State, SyncMode};
use crate::request::{Buffer, IoPriority, IoPriorityClass, Request, RwFlags};

/// Checks `cb` against its descriptor and says whether it goes the stream way (readiness,
/// then transfer): `EISDIR` for a directory, `EBADF` for a read on a descriptor not open for
/// reading (or a write on one not open for writing), so that no request waits for a readiness
/// that cannot come. Syncs never wait for readiness: the kernel answers them directly.
fn classify(cb: &Aiocb<'_>) -> Result<bool, Errno> {
    use rustix::fs::{FileType, OFlags};
    let kind = FileType::from_raw_mode(rustix::fs::fstat(cb.fd)?.st_mode);
    if kind == FileType::Directory {
        return Err(Errno::ISDIR);
    }
    let mode = rustix::fs::fcntl_getfl(cb.fd)? & OFlags::RWMODE;
    let readable = mode == OFlags::RDONLY || mode == OFlags::RDWR;
    let writable = mode == OFlags::WRONLY || mode == OFlags::RDWR;
    match cb.op {
        Op::Read if !readable => Err(Errno::BADF),
        Op::Write if !writable => Err(Errno::BADF),
        Op::Fsync(_) => Ok(false),
        _ => Ok(!matches!(
            kind,
            FileType::RegularFile | FileType::BlockDevice
        )),
    }
}

/// `ANON_INODE_FS_MAGIC` (linux/magic.h): the filesystem of eventfds, and of the other
/// anonymous-inode descriptors (signalfd, timerfd, epoll, ...), which all refuse an 8-byte write.
const ANON_INODE_FS_MAGIC: u32 = 0x0904_1934;

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

    /// [`Aio::progress`]. A stream transfer that follows a readiness report completes inside
    /// its submission, so each round takes the completions the previous one caused; the
    /// rounds are bounded so that a peer that keeps a stream busy cannot keep a call here.
    pub(super) fn advance(&self) {
        if let Some(efd) = self.eventfd {
            let mut b = [0u8; 8];
            let _ = rustix::io::read(efd, &mut b);
        }
        for _ in 0..ADVANCE_ROUNDS {
            let mut took = 0;
            if let Some(scope) = self.scope {
                if scope.in_flight() > 0 {
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

    /// Cancels every request that can still be cancelled when `with`'s closure returns, and
    /// completes partial stream writes short; the scope then reaps whatever is still in the
    /// kernel. A forked child's copy does nothing: the requests are the parent's.
    pub(super) fn finish(&self) {
        if self.check().is_err() {
            return;
        }
        self.advance();
        let targets: [bool; N] = {
            let inner = self.inner.borrow();
            core::array::from_fn(|i| {
                matches!(inner.slots[i].state, State::Queued | State::Polling(_))
            })
        };
        self.cancel_slots(&targets, true);
    }

    pub(super) fn enqueue(&self, cb: Aiocb<'scope>) -> Result<Id, Errno> {
        if let Notify::Eventfd(fd) = cb.notify {
            check_eventfd(fd)?;
        }
        let stream = classify(&cb)?;
        let id = {
            let mut inner = self.inner.borrow_mut();
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let Some(index) = inner.slots.iter().position(|s| s.state == State::Free) else {
                return Err(Errno::AGAIN);
            };
            let slot = &mut inner.slots[index];
            slot.generation = slot.generation.wrapping_add(1);
            slot.stream = stream;
            slot.done = 0;
            slot.nowait = stream;
            slot.seq = seq;
            slot.state = State::Queued;
            slot.cb = Some(cb);
            self.id(index, slot.generation)
        };
        if self.scope.is_none() {
            self.run_synchronously(id.index as usize);
        } else if !stream {
            self.submit_to_kernel(id.index as usize, false);
        }
        self.start_streams();
        Ok(id)
    }

    /// Hands slot `i` to the kernel: its transfer, or (`poll`) a readiness wait. On `EAGAIN`
    /// (no ring space) the slot stays queued; other errors complete it.
    pub(super) fn submit_to_kernel(&self, i: usize, poll: bool) {
        let Some(scope) = self.scope else { return };
        let request = {
            let mut inner = self.inner.borrow_mut();
            let slot = &mut inner.slots[i];
            let data = user_data(i, slot.generation);
            let Some(cb) = slot.cb.as_mut() else { return };
            let mut req = if poll {
                let events = if cb.op == Op::Write {
                    rustix::event::PollFlags::OUT
                } else {
                    rustix::event::PollFlags::IN
                };
                Request::poll(cb.fd, events)
            } else {
                let offset = if slot.stream { 0 } else { cb.offset };
                let nowait = slot.stream && slot.nowait;
                let r = match cb.op {
                    Op::Read => match core::mem::replace(&mut cb.buffer, Buffer::None) {
                        Buffer::Read(b) => Request::read(cb.fd, b, offset),
                        other => {
                            cb.buffer = other;
                            drop(inner);
                            self.finish_slot(i, Err(Errno::INVAL));
                            return;
                        }
                    },
                    // A shared slice is Copy: the control block keeps the whole buffer, and a
                    // stream write transfers what is left of it (capped without RWF_NOWAIT).
                    Op::Write => match cb.buffer {
                        Buffer::Write(b) if slot.stream => {
                            let rest = &b[slot.done.min(b.len())..];
                            let cap = if nowait { rest.len() } else { PIPE_BUF };
                            Request::write(cb.fd, &rest[..rest.len().min(cap)], offset)
                        }
                        Buffer::Write(b) => Request::write(cb.fd, b, offset),
                        _ => {
                            drop(inner);
                            self.finish_slot(i, Err(Errno::INVAL));
                            return;
                        }
                    },
                    Op::Fsync(SyncMode::Sync) => Request::fsync(cb.fd),
                    Op::Fsync(SyncMode::DataSync) => Request::fdsync(cb.fd),
                };
                let r = if nowait { r.flags(RwFlags::NOWAIT) } else { r };
                if cb.reqprio > 0 {
                    r.priority(
                        IoPriority::new(IoPriorityClass::BestEffort, cb.reqprio)
                            .expect("capped at 7"),
                    )
                } else {
                    r
                }
            };
            req = req.user_data(data);
            if let Some(efd) = self.eventfd {
                // The layer's eventfd is created before the scope and closed after it has
                // drained, so it outlives every request.
                req = req.eventfd_unchecked(efd);
            }
            req
        };
        match scope.submit(request) {
            Ok(ticket) => {
                self.inner.borrow_mut().slots[i].state = if poll {
                    State::Polling(ticket)
                } else {
                    State::InKernel(ticket)
                };
            }
            Err(rejected) => {
                // Take a moved-out (read) buffer back; EAGAIN leaves the request queued.
                let nowait_refused =
                    rejected.error == Errno::OPNOTSUPP && !poll && self.refuse_nowait(i);
                let buffer = rejected.request.into_buffer();
                let mut inner = self.inner.borrow_mut();
                if let Some(cb) = inner.slots[i].cb.as_mut() {
                    if matches!(cb.buffer, Buffer::None) {
                        cb.buffer = buffer;
                    }
                }
                drop(inner);
                if nowait_refused {
                    self.submit_to_kernel(i, false);
                } else if rejected.error != Errno::AGAIN {
                    self.finish_slot(i, Err(rejected.error));
                }
            }
        }
    }

    /// After the kernel refused `RWF_NOWAIT` for slot `i` (Linux 6.1 does for pipes and
    /// sockets): that request's transfer goes without it, right after its readiness report, so
    /// a read takes what is there and a write is capped at `PIPE_BUF` (the room a writable pipe
    /// always has). Only something outside the layer consuming that readiness first (another
    /// reader of the same pipe) could then make it block. True if slot `i` should be retried.
    pub(super) fn refuse_nowait(&self, i: usize) -> bool {
        let slot = &mut self.inner.borrow_mut().slots[i];
        core::mem::replace(&mut slot.nowait, false) && slot.stream
    }

    /// Starts the oldest queued request of every stream that has none active, and retries
    /// file requests that were waiting for ring space.
    pub(super) fn start_streams(&self) {
        if self.scope.is_none() {
            return;
        }
        for i in 0..N {
            let (start, poll) = {
                let inner = self.inner.borrow();
                let s = &inner.slots[i];
                if s.state != State::Queued {
                    continue;
                }
                if !s.stream {
                    (true, false)
                } else {
                    let fd = s.cb.as_ref().map(|c| c.fd.as_raw_fd());
                    let ahead = inner.slots.iter().any(|o| {
                        o.stream
                            && o.cb.as_ref().map(|c| c.fd.as_raw_fd()) == fd
                            && (matches!(o.state, State::Polling(_) | State::InKernel(_))
                                || (o.state == State::Queued && o.seq < s.seq))
                    });
                    (!ahead, true)
                }
            };
            if start {
                self.submit_to_kernel(i, poll);
            }
        }
    }

    /// Applies a batch of kernel completions to the control blocks.
    /// Returns how many completions it took.
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
            let state = {
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
                slot.state
            };
            let (stream, done, nowait) = {
                let inner = self.inner.borrow();
                let slot = &inner.slots[i];
                (slot.stream, slot.done, slot.nowait)
            };
            match state {
                State::Polling(t) if t == c.ticket => {
                    self.inner.borrow_mut().slots[i].state = State::Queued;
                    match c.event.result() {
                        Ok(_) => self.submit_to_kernel(i, false),
                        // A write that has transferred part of its data ends with that count.
                        Err(_) if done > 0 => self.finish_slot(i, Ok(done)),
                        Err(e) => self.finish_slot(i, Err(e)),
                    }
                }
                State::InKernel(t) if t == c.ticket => {
                    let write = self.inner.borrow().slots[i]
                        .cb
                        .as_ref()
                        .map(|cb| match cb.buffer {
                            Buffer::Write(b) if cb.op == Op::Write => Some(b.len()),
                            _ => None,
                        })
                        .unwrap_or(None);
                    match c.event.result() {
                        // A stream write goes on until all of it is written, as a blocking
                        // write() does: at once with RWF_NOWAIT (EAGAIN sends it back to
                        // waiting), else after the next readiness report.
                        Ok(n) if stream && write.is_some_and(|len| n > 0 && done + n < len) => {
                            let mut inner = self.inner.borrow_mut();
                            inner.slots[i].done = done + n;
                            inner.slots[i].state = State::Queued;
                            drop(inner);
                            self.submit_to_kernel(i, !nowait);
                        }
                        Ok(n) if stream && write.is_some() => self.finish_slot(i, Ok(done + n)),
                        Err(Errno::AGAIN) if stream => {
                            // Not ready after all (or RWF_NOWAIT would block): wait again.
                            self.inner.borrow_mut().slots[i].state = State::Queued;
                            self.submit_to_kernel(i, true);
                        }
                        // An old kernel without RWF_NOWAIT on this kind of file: readiness was
                        // just reported, so transfer without it.
                        Err(Errno::OPNOTSUPP) if stream && self.refuse_nowait(i) => {
                            self.inner.borrow_mut().slots[i].state = State::Queued;
                            self.submit_to_kernel(i, false);
                        }
                        // An error after part of a write: the count written, as write() says.
                        Err(_) if done > 0 => self.finish_slot(i, Ok(done)),
                        result => self.finish_slot(i, result),
                    }
                }
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
                // about to overflow; any other descriptor passed here may not be.
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
