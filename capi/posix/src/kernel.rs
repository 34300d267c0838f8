//! Requests and the kernel: what each control block becomes, the completions that move it on,
//! and cancellation. The design is `linux_aio::posix`'s:
//!
//! - Regular files and block devices: one kernel request each (truly asynchronous with
//!   `O_DIRECT`; buffered I/O completes inside `io_submit`, as with any kernel AIO).
//! - Streams (pipes, FIFOs, sockets, terminals), which would block inside `io_submit`: one
//!   request per descriptor and direction at a time, in submission order. Each transfer goes
//!   with `RWF_NOWAIT`, so it completes inside the submission; when it would block (`EAGAIN`),
//!   a kernel POLL waits for readiness and the transfer is tried again. A read takes what is
//!   there, as `read` does; a write goes on until all of it is written or an error stops it
//!   (then it completes with the count written, if any), as a blocking `write` does.
//! - Where the kernel refuses `RWF_NOWAIT` (Linux 6.1 for pipes and sockets), a transfer goes
//!   without it, only right after a readiness report, and only where that cannot block: pipes
//!   and byte-stream sockets `PIPE_BUF` bytes at a time, datagram and seqpacket sockets a whole
//!   message. Anything else (a terminal) fails with `EOPNOTSUPP` rather than block a call; so
//!   does a request that would have to wait on a descriptor the kernel cannot POLL (a FIFO open
//!   for reading and writing). "Cannot block" assumes no other reader (writer) of the file
//!   takes the data (the room) between the report and the transfer; one that does makes the
//!   transfer block the calling thread unless the file is `O_NONBLOCK` (then it finds `EAGAIN`
//!   and waits for readiness again).
//! - Zero-byte requests and requests on listening sockets never wait.
//! - `aio_fsync` is a barrier, as POSIX asks ("I/O operations ... queued at the time of the
//!   call"): it reaches the kernel once every request queued before it on the file has
//!   completed, through any descriptor (the same number, a `dup`, another `open`: for regular
//!   files and block devices, device and inode compared, see `FileId`).
//!
//! What `aio_cancel` can cancel: requests the library holds (queued behind others) and requests
//! waiting for readiness (their POLL is cancelled; no data has moved). A request the kernel is
//! executing, and a stream write that has transferred part of its data, are in progress
//! (`AIO_NOTCANCELED`): they complete normally.

use core::ffi::c_int;

use linux_aio::raw::{
    self, io_event, IOCB_CMD_FDSYNC, IOCB_CMD_FSYNC, IOCB_CMD_POLL, IOCB_CMD_PREAD,
    IOCB_CMD_PWRITE, IOCB_FLAG_IOPRIO, RWF_NOWAIT,
};
use linux_aio::Event;
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

use crate::abi::{AIO_ALLDONE, AIO_CANCELED, AIO_NOTCANCELED};
use crate::engine::{Engine, Kind, Mode, Op, State, IOCBS, NONE, SLOTS};

/// `PIPE_BUF`: a pipe that polls writable has room for at least this many bytes.
const PIPE_BUF: usize = 4096;

/// `user_data` of the wake-up POLL (see `wait`).
pub const WAKE_DATA: u64 = u64::MAX;
/// `user_data` of a one-off POLL that completes at once, waking the reaper where the eventfd
/// cannot be used (see `wait::poke`).
pub const KICK_DATA: u64 = u64::MAX - 1;

/// `IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT`: best-effort I/O priority.
const IOPRIO_BEST_EFFORT: u16 = 2 << 13;
/// The best-effort level of a process that never set one.
const IOPRIO_DEFAULT_LEVEL: c_int = 4;

fn user_data(i: usize, generation: u32) -> u64 {
    (u64::from(generation) << 32) | i as u64
}

/// What to hand the kernel for a slot.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Submit {
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

/// A private duplicate of `fd` for a stream request (see `Slot::kfd`): numbered from 256 where
/// the limit allows, out of the way of programs that count on the lowest free number.
pub fn private_dup(fd: c_int) -> Result<c_int, Errno> {
    // SAFETY: fcntl on a descriptor number; it only duplicates.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 256) };
    if high >= 0 {
        return Ok(high);
    }
    // SAFETY: as above.
    let any = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if any >= 0 {
        Ok(any)
    } else {
        // SAFETY: the calling thread's errno.
        Err(Errno::from_raw_os_error(unsafe {
            *libc::__errno_location()
        }))
    }
}

/// The file a regular file's or block device's descriptor names, `(st_dev, st_ino)`: what an
/// fsync flushes and `O_DIRECT` writes reach, so an fsync waits for the earlier requests on it
/// through any descriptor (`may_start`). `None` for anything else (then only the descriptor
/// number ties an fsync to earlier requests): a pipe's two ends share one inode, and every
/// eventfd, timerfd and epoll descriptor shares the anonymous inode, but an fsync of those
/// fails at once (`EINVAL`), and must not wait behind an unrelated read that may never end.
pub type FileId = Option<(u64, u64)>;

/// What a request on `fd` needs: its [`Kind`], whether it is immediate (never waits), and its
/// [`FileId`], all from one `fstat`.
/// Refuses what could only fail or wait for ever: `EBADF` for a descriptor that is not open (or
/// a stream not open for the direction, or a sync on a descriptor not open for writing, as
/// glibc's `aio_fsync` says), `EISDIR` for a read or write on a directory. Regular files cost
/// one `fstat`: the kernel checks their access mode itself.
pub fn classify(fd: c_int, op: Op, nbytes: usize) -> Result<(Kind, bool, FileId), Errno> {
    use rustix::fs::{FileType, OFlags};
    if fd < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: fd is not -1; the descriptor is only inspected, and is the caller's to keep open.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    // rustix's fstat is the 64-bit one everywhere (the C library's 32-bit fstat fails with
    // EOVERFLOW on files of 2 GiB and more on i686).
    let st = rustix::fs::fstat(fd)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    let file = matches!(kind, FileType::RegularFile | FileType::BlockDevice)
        .then_some((st.st_dev as u64, st.st_ino as u64));
    let mode = || rustix::fs::fcntl_getfl(fd).map(|f| f & OFlags::RWMODE);
    let readable = |m: OFlags| m == OFlags::RDONLY || m == OFlags::RDWR;
    let writable = |m: OFlags| m == OFlags::WRONLY || m == OFlags::RDWR;
    match op {
        Op::Fsync | Op::Fdsync if !writable(mode()?) => return Err(Errno::BADF),
        Op::Fsync | Op::Fdsync => return Ok((Kind::File, false, file)),
        _ if kind == FileType::Directory => return Err(Errno::ISDIR),
        _ => {}
    }
    if file.is_some() {
        return Ok((Kind::File, false, file));
    }
    let m = mode()?;
    if (op == Op::Read && !readable(m)) || (op == Op::Write && !writable(m)) {
        return Err(Errno::BADF);
    }
    let empty = nbytes == 0;
    Ok(match kind {
        FileType::Fifo => (Kind::Pipe, empty, None),
        FileType::Socket => {
            use rustix::net::{sockopt, SocketType};
            let listening = sockopt::socket_acceptconn(fd).unwrap_or(false);
            let message = matches!(
                sockopt::socket_type(fd),
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

impl Engine {
    /// Moves slot `i` to `state`, keeping the count of queued slots.
    pub fn set_state(&mut self, i: usize, state: State) {
        let old = core::mem::replace(&mut self.slots[i].state, state);
        if old == State::Queued {
            self.queued -= 1;
        }
        if state == State::Queued {
            self.queued += 1;
        }
    }

    /// Writes slot `i`'s kernel request into its iocb and returns it.
    pub fn prepare_iocb(&mut self, i: usize, what: Submit) -> *mut raw::iocb {
        let s = &self.slots[i];
        let stream = s.stream();
        let nowait = stream && s.nowait && !s.immediate;
        let mut io = raw::iocb {
            aio_data: user_data(i, s.generation),
            aio_fildes: if s.kfd >= 0 { s.kfd } else { s.fd } as u32,
            ..Default::default()
        };
        match what {
            Submit::Poll => {
                use rustix::event::PollFlags;
                io.aio_lio_opcode = IOCB_CMD_POLL;
                let events = if s.op == Op::Write {
                    PollFlags::OUT
                } else {
                    PollFlags::IN
                };
                io.aio_buf = u64::from(events.bits());
            }
            Submit::Transfer => {
                let (opcode, buf, len) = match s.op {
                    Op::Read => (IOCB_CMD_PREAD, s.buf, s.nbytes),
                    Op::Write if stream => {
                        // What is left, in chunks a readiness report guarantees to fit where
                        // there is no RWF_NOWAIT.
                        let rest = s.nbytes - s.done.min(s.nbytes);
                        let cap = if nowait || s.kind == Kind::MessageSocket {
                            rest
                        } else {
                            rest.min(PIPE_BUF)
                        };
                        (IOCB_CMD_PWRITE, s.buf + s.done, cap)
                    }
                    Op::Write => (IOCB_CMD_PWRITE, s.buf, s.nbytes),
                    Op::Fsync => (IOCB_CMD_FSYNC, 0, 0),
                    Op::Fdsync => (IOCB_CMD_FDSYNC, 0, 0),
                };
                io.aio_lio_opcode = opcode;
                io.aio_buf = buf as u64;
                io.aio_nbytes = len as u64;
                if matches!(s.op, Op::Read | Op::Write) && !stream {
                    io.aio_offset = s.offset;
                }
                if nowait {
                    io.aio_rw_flags = RWF_NOWAIT;
                }
            }
        }
        if s.reqprio > 0 {
            // "Lowered by aio_reqprio": best-effort levels below the default one, 7 the lowest.
            io.aio_flags |= IOCB_FLAG_IOPRIO;
            io.aio_reqprio =
                (IOPRIO_BEST_EFFORT | (IOPRIO_DEFAULT_LEVEL + s.reqprio).min(7) as u16) as i16;
        }
        let p = IOCBS.get(i);
        // SAFETY: slot i is not in the kernel (it is being submitted), so nothing else reads
        // or writes its iocb; the engine lock is held.
        unsafe { p.write(io) };
        p
    }

    /// Hands slot `i` to the kernel now, under the lock (streams, syncs, retries). A refusal
    /// other than "no room" (`EAGAIN`, retried at the next completion) completes the request.
    pub fn submit(&mut self, i: usize, what: Submit) {
        let was_ready = core::mem::replace(&mut self.slots[i].ready, false);
        let mut p = self.prepare_iocb(i, what);
        let state = if what == Submit::Poll {
            State::Polling
        } else {
            State::InKernel
        };
        self.set_state(i, state);
        // SAFETY: one iocb, written above, that stays untouched while the kernel holds it; its
        // buffer is the caller's, valid until the request completes (POSIX's contract).
        let ret = unsafe { raw::io_submit(self.ctx, 1, &mut p) };
        if ret == 1 {
            return;
        }
        let e = Errno::from_raw_os_error(if ret < 0 { -ret as i32 } else { libc::EAGAIN });
        self.set_state(i, State::Queued);
        self.slots[i].ready = was_ready;
        let done = self.slots[i].done;
        match e {
            // No room in the ring: retried when a request in flight completes (if none is, the
            // request cannot wait for that).
            Errno::AGAIN if self.in_kernel() => {}
            Errno::OPNOTSUPP if what == Submit::Transfer && self.refuse_nowait(i) => self.step(i),
            // The kernel cannot POLL this descriptor (it waits on two queues), so nothing can
            // wait for it without blocking a call.
            Errno::INVAL if what == Submit::Poll => {
                self.finish(i, partial_or(done, Err(Errno::OPNOTSUPP)))
            }
            e => self.finish(i, partial_or(done, Err(e))),
        }
    }

    /// True if any request is in the kernel (so a completion will come).
    fn in_kernel(&self) -> bool {
        let mut j = self.live_head;
        while j != NONE {
            let s = &self.slots[j as usize];
            if matches!(s.state, State::Polling | State::InKernel) {
                return true;
            }
            j = s.next;
        }
        false
    }

    /// The kernel refused `RWF_NOWAIT` for slot `i`: from now on its transfers go without it,
    /// after readiness reports. True if slot `i` was still trying it.
    fn refuse_nowait(&mut self, i: usize) -> bool {
        let s = &mut self.slots[i];
        core::mem::replace(&mut s.nowait, false) && s.stream()
    }

    /// The next step of stream slot `i`, queued and first in line on its descriptor and
    /// direction.
    pub fn step(&mut self, i: usize) {
        let s = &self.slots[i];
        if s.immediate || s.nowait {
            self.submit(i, Submit::Transfer);
        } else if !s.ready {
            self.submit(i, Submit::Poll);
        } else if s.kind == Kind::Other {
            // No RWF_NOWAIT here, and no size that a readiness report guarantees to fit.
            let done = s.done;
            self.finish(i, partial_or(done, Err(Errno::OPNOTSUPP)));
        } else {
            self.submit(i, Submit::Transfer);
        }
    }

    /// True if queued slot `i` may go to the kernel now: no earlier request on its stream and
    /// direction (streams), no earlier request on its file at all, through any descriptor
    /// (syncs: the same number, or the same device and inode).
    fn may_start(&self, i: usize) -> bool {
        let s = &self.slots[i];
        let barrier = matches!(s.op, Op::Fsync | Op::Fdsync);
        let mut j = self.live_head;
        while j != NONE && j as usize != i {
            let o = &self.slots[j as usize];
            let same_file = o.fd == s.fd || (s.file.is_some() && o.file == s.file);
            if (barrier && same_file) || (o.fd == s.fd && s.stream() && o.stream() && o.op == s.op)
            {
                return false;
            }
            j = o.next;
        }
        true
    }

    /// Starts every queued request that may start (see `may_start`).
    pub fn start_streams(&mut self) {
        if self.queued == 0 || self.mode != Mode::Async {
            return;
        }
        let mut i = self.live_head;
        while i != NONE {
            let next = self.slots[i as usize].next;
            let idx = i as usize;
            let s = &self.slots[idx];
            if s.state == State::Queued && self.may_start(idx) {
                if s.stream() && matches!(s.op, Op::Read | Op::Write) {
                    self.step(idx);
                } else {
                    self.submit(idx, Submit::Transfer);
                }
            }
            i = next;
        }
    }

    /// Applies the kernel's completions to the requests.
    pub fn absorb(&mut self, events: &[io_event]) {
        for ev in events {
            if ev.data == WAKE_DATA {
                self.wake_in_flight = false;
                continue;
            }
            if ev.data == KICK_DATA {
                continue;
            }
            let (i, generation) = ((ev.data & 0xffff_ffff) as usize, (ev.data >> 32) as u32);
            if i >= SLOTS || self.slots[i].generation != generation {
                continue;
            }
            let s = &mut self.slots[i];
            if s.orphan {
                // A cancelled POLL's completion: the request was finished when it was cancelled.
                s.orphan = false;
                self.release(i);
                continue;
            }
            let result = Event::from_raw(*ev).result();
            let (stream, done, write) = (s.stream(), s.done, s.op == Op::Write);
            match s.state {
                State::Polling => match result {
                    Ok(_) => {
                        s.ready = true;
                        self.set_state(i, State::Queued);
                        self.step(i);
                    }
                    Err(e) => self.finish(i, partial_or(done, Err(e))),
                },
                State::InKernel => match result {
                    // A stream write goes on until all of it is written, as a blocking write().
                    Ok(n) if stream && write && n > 0 && done + n < s.nbytes => {
                        s.done = done + n;
                        self.set_state(i, State::Queued);
                        self.step(i);
                    }
                    Ok(n) if stream && write => self.finish(i, Ok(done + n)),
                    // Not ready after all (RWF_NOWAIT would block): wait for readiness.
                    Err(Errno::AGAIN) if stream => {
                        self.set_state(i, State::Queued);
                        self.submit(i, Submit::Poll);
                    }
                    // RWF_NOWAIT refused in the completion rather than at submission.
                    Err(Errno::OPNOTSUPP) if stream && self.refuse_nowait(i) => {
                        self.set_state(i, State::Queued);
                        self.step(i);
                    }
                    // An error after part of a write: the count written, as write() says.
                    result => self.finish(i, partial_or(done, result)),
                },
                _ => {}
            }
        }
    }

    /// `aio_cancel`'s work, once the kernel's latest completions are absorbed: cancels slot
    /// `only` (if it is in progress) or every request in progress on `fd`.
    pub fn cancel(&mut self, fd: c_int, only: Option<usize>) -> c_int {
        let (mut canceled, mut not_canceled) = (false, false);
        let mut i = match only {
            Some(i) => i as u32,
            None => self.live_head,
        };
        while i != NONE {
            let idx = i as usize;
            let next = if only.is_some() {
                NONE
            } else {
                self.slots[idx].next
            };
            i = next;
            let s = &self.slots[idx];
            if s.fd != fd || !matches!(s.state, State::Queued | State::Polling | State::InKernel) {
                continue;
            }
            let partial = s.done > 0;
            if partial || s.state == State::InKernel || self.mode != Mode::Async {
                not_canceled = true;
                continue;
            }
            if s.state == State::Polling {
                let mut result = io_event::default();
                // SAFETY: the slot's iocb, which the kernel holds (it reads aio_key from it).
                let ret = unsafe { raw::io_cancel(self.ctx, IOCBS.get(idx), &mut result) };
                // Before Linux 3.12 a cancelled request completed into `result` (ret 0) and
                // nothing reaches the ring; since then its completion comes later (EINPROGRESS),
                // as it does for a POLL that was ready a moment ago (EINVAL). Either way the
                // transfer has not started.
                if ret != 0 {
                    self.slots[idx].orphan = true;
                }
            }
            canceled = true;
            self.finish(idx, Err(Errno::CANCELED));
        }
        self.start_streams();
        if not_canceled {
            AIO_NOTCANCELED
        } else if canceled {
            AIO_CANCELED
        } else {
            AIO_ALLDONE
        }
    }
}
