//! POSIX asynchronous I/O on kernel AIO: `aio_read`, `aio_write`, `aio_fsync`, `aio_error`,
//! `aio_return`, `aio_suspend`, `lio_listio` and `aio_cancel` with the cancellation rules of
//! POSIX `aio_cancel`. No threads and no heap: the layer lives in [`with`]'s stack frame, with
//! room for `N` control blocks.
//!
//! # How requests run
//! - Regular files and block devices: straight to the kernel (truly asynchronous with
//!   `O_DIRECT`; buffered I/O completes inside the submission, as with any kernel AIO).
//! - Sockets, pipes and character devices ("streams"), which would block inside `io_submit`:
//!   one request per descriptor at a time, in submission order. The layer first waits for
//!   readiness with a kernel POLL request, then transfers with `RWF_NOWAIT`; an `EAGAIN` goes
//!   back to waiting. Later requests on the same descriptor wait their turn in the layer.
//!   A read takes what is there, as `read` does. A write goes on, transfer after transfer,
//!   until all of it is written or an error stops it (then it completes with the count written,
//!   if any), as a blocking `write` does; the next request on the descriptor starts only then.
//!   Kernels that refuse `RWF_NOWAIT` on pipes and sockets (Linux 6.1 does) get each transfer
//!   without it, still only after readiness, and writes move in chunks of `PIPE_BUF` bytes
//!   (the room a writable pipe always has).
//! - Without kernel AIO (`ENOSYS`: qemu-user, `CONFIG_AIO=n`, targets without an architecture
//!   module) every request runs synchronously when submitted (a stream request may then block),
//!   and everything else behaves the same: `aio_cancel` answers [`CancelStatus::AllDone`].
//!
//! # What can be cancelled
//! POSIX leaves it to the implementation. Here: requests the layer has not handed to the kernel
//! (queued behind earlier requests on the same stream, or waiting for ring space) and requests
//! waiting for readiness (the POLL phase). A request the kernel is executing (file I/O, fsync,
//! a transfer), and a stream write that has transferred part of its data, are in progress:
//! [`CancelStatus::NotCanceled`]. A completed one, including one that completes while
//! `aio_cancel` takes the kernel's latest completions, is [`CancelStatus::AllDone`].
//!
//! # Progress
//! There is no thread: the layer advances whenever it is called (`aio_error`, `aio_suspend`,
//! `aio_cancel`, `lio_listio`, [`Aio::progress`]). [`Aio::eventfd`] becomes readable whenever
//! a kernel request of the layer completes, for event loops that want to call `progress` then.
//! When `with`'s closure returns, requests that can be cancelled are, a stream write that has
//! transferred part of its data completes with that count, and the rest are waited for.
//!
//! # Ids, scopes and fork
//! An [`Id`] belongs to the layer that issued it: another layer refuses it with `EINVAL`. A
//! forked child's copy of a layer refuses every call with `EINVAL` and leaves the parent's
//! requests alone (see [`Context`]'s "fork").

use core::cell::RefCell;
use core::time::Duration;

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use crate::owner::Owner;
use crate::request::{Buffer, IoPriority, IoPriorityClass, Request, RwFlags};
use crate::scope::{next_nonce, Scope, Ticket};
use crate::Context;

/// What `aio_cancel` reports (POSIX `AIO_CANCELED`, `AIO_NOTCANCELED`, `AIO_ALLDONE`; the
/// discriminants are glibc's and musl's values on Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelStatus {
    /// Every requested operation was cancelled.
    Canceled = 0,
    /// At least one requested operation could not be cancelled because it is in progress.
    NotCanceled = 1,
    /// Every requested operation had already completed.
    AllDone = 2,
}

/// `lio_listio` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMode {
    /// `LIO_WAIT`: return once every listed operation has completed.
    Wait,
    /// `LIO_NOWAIT`: return once the operations are queued.
    NoWait,
}

/// `aio_fsync`'s `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `O_SYNC`: data and metadata (`fsync`).
    Sync,
    /// `O_DSYNC`: data, and the metadata needed to read it (`fdatasync`).
    DataSync,
}

/// How a completed (or cancelled) request is announced.
#[derive(Clone, Copy, Default)]
pub enum Notify<'scope> {
    /// `SIGEV_NONE`.
    #[default]
    None,
    /// Called with the request's id, from within the layer call that completes it.
    Callback(&'scope dyn Fn(Id)),
    /// 1 is added to this eventfd. Anything but an eventfd (or another anonymous-inode
    /// descriptor, which refuses the write) is refused with `EINVAL` when the request is
    /// queued, as the kernel refuses it for `IOCB_FLAG_RESFD`: the layer never writes into a
    /// file, pipe or socket that was passed here by mistake.
    Eventfd(BorrowedFd<'scope>),
}

impl core::fmt::Debug for Notify<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Notify::None => f.write_str("None"),
            Notify::Callback(_) => f.write_str("Callback"),
            Notify::Eventfd(fd) => write!(f, "Eventfd({})", fd.as_raw_fd()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Fsync(SyncMode),
}

/// A POSIX control block: descriptor, offset, buffer, request priority, operation and
/// notification.
#[derive(Debug)]
pub struct Aiocb<'scope> {
    fd: BorrowedFd<'scope>,
    offset: u64,
    op: Op,
    buffer: Buffer<'scope>,
    reqprio: u8,
    notify: Notify<'scope>,
}

impl<'scope> Aiocb<'scope> {
    /// A read of `buf.len()` bytes at `offset` (ignored on streams).
    pub fn read(fd: BorrowedFd<'scope>, buf: &'scope mut [u8], offset: u64) -> Aiocb<'scope> {
        Aiocb {
            fd,
            offset,
            op: Op::Read,
            buffer: Buffer::Read(buf),
            reqprio: 0,
            notify: Notify::None,
        }
    }

    /// A write of `buf` at `offset` (ignored on streams).
    pub fn write(fd: BorrowedFd<'scope>, buf: &'scope [u8], offset: u64) -> Aiocb<'scope> {
        Aiocb {
            fd,
            offset,
            op: Op::Write,
            buffer: Buffer::Write(buf),
            reqprio: 0,
            notify: Notify::None,
        }
    }

    /// A synchronisation of `fd` (for [`Aio::aio_fsync`]).
    pub fn sync(fd: BorrowedFd<'scope>, mode: SyncMode) -> Aiocb<'scope> {
        Aiocb {
            fd,
            offset: 0,
            op: Op::Fsync(mode),
            buffer: Buffer::None,
            reqprio: 0,
            notify: Notify::None,
        }
    }

    /// `aio_reqprio`: lower the request's priority by this much (0..=7; larger values are
    /// capped), mapped onto the best-effort I/O priority levels 0 + `reqprio`.
    pub fn reqprio(mut self, reqprio: u8) -> Aiocb<'scope> {
        self.reqprio = reqprio.min(7);
        self
    }

    /// `aio_sigevent`: how completion is announced.
    pub fn notify(mut self, notify: Notify<'scope>) -> Aiocb<'scope> {
        self.notify = notify;
        self
    }

    /// The descriptor (`aio_fildes`).
    pub fn fd(&self) -> BorrowedFd<'scope> {
        self.fd
    }
}

/// Names a request of one layer, from submission until [`Aio::aio_return`]. Another layer
/// (another [`with`] call) refuses it with `EINVAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id {
    layer: u64,
    index: u32,
    generation: u32,
}

/// A finished request, as [`Aio::aio_return`] hands it back.
#[derive(Debug)]
pub struct Returned<'scope> {
    /// Bytes transferred (0 for fsync), or the error; `ECANCELED` if cancelled (POSIX's -1).
    pub result: Result<usize, Errno>,
    /// The buffer, free to use again.
    pub buffer: Buffer<'scope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// Held by the layer: behind an earlier request on the same stream, or waiting for room.
    Queued,
    /// A kernel POLL for readiness is in flight (stream requests only).
    Polling(Ticket),
    /// The transfer or sync is in the kernel.
    InKernel(Ticket),
    Done(Result<usize, Errno>),
}

struct Slot<'scope> {
    cb: Option<Aiocb<'scope>>,
    stream: bool,
    /// Bytes a stream write has transferred so far (it goes on until all are written).
    done: usize,
    /// Transfers use `RWF_NOWAIT` (false once the kernel refused it for this request).
    nowait: bool,
    state: State,
    generation: u32,
    /// Submission order, for stream fairness.
    seq: u64,
}

struct Inner<'scope, const N: usize> {
    slots: [Slot<'scope>; N],
    next_seq: u64,
    /// Tickets of cancelled POLLs whose kernel completions are still to come.
    orphans: [Option<Ticket>; N],
}

/// The POSIX AIO layer: `N` control blocks over one kernel context (or synchronous execution
/// where the kernel has no AIO). Obtained through [`with`].
pub struct Aio<'a, 'scope, 'env, const N: usize> {
    scope: Option<&'a Scope<'scope, 'env, N>>,
    eventfd: Option<&'a OwnedFd>,
    inner: RefCell<Inner<'scope, N>>,
    /// Distinct for every layer of the process: the owner of its ids.
    nonce: u64,
    /// The process that made the layer: a forked child's copy refuses every call.
    owner: Owner,
}

/// A kernel context for [`with`]: `Ok(None)` when the kernel has no AIO (`ENOSYS`), in which
/// case the layer runs every request synchronously.
pub fn context(capacity: u32) -> Result<Option<Context>, Errno> {
    match Context::new(capacity) {
        Ok(ctx) => Ok(Some(ctx)),
        Err(Errno::NOSYS) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs `f` with a POSIX AIO layer of `N` control blocks on `ctx` (synchronous execution when
/// `None`), and returns once every request it started has completed or been cancelled: buffers
/// borrowed by control blocks are free again afterwards. `Err` only if the layer's eventfd
/// cannot be created.
///
/// ```
/// use linux_aio::posix::{self, Aiocb};
/// use std::os::fd::AsFd;
///
/// # fn main() -> Result<(), rustix::io::Errno> {
/// let file = std::fs::File::open("Cargo.toml").unwrap();
/// let mut buf = [0u8; 9];
/// let mut ctx = posix::context(8)?; // None without kernel AIO: then everything runs synchronously
/// let n = posix::with::<4, _>(ctx.as_mut(), |aio| {
///     let id = aio.aio_read(Aiocb::read(file.as_fd(), &mut buf, 0))?;
///     aio.aio_suspend(&[id], None)?;
///     aio.aio_return(id)?.result
/// })??;
/// assert_eq!((n, &buf), (9, b"[package]"));
/// # Ok(()) }
/// ```
pub fn with<'env, const N: usize, T>(
    ctx: Option<&'env mut Context>,
    f: impl for<'a, 'scope> FnOnce(&'a Aio<'a, 'scope, 'env, N>) -> T,
) -> Result<T, Errno> {
    match ctx {
        Some(ctx) => {
            let flags =
                rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK;
            let eventfd = rustix::event::eventfd(0, flags)?;
            Ok(ctx.scope::<N, T>(|s| {
                let aio = Aio::new(Some(s), Some(&eventfd));
                let out = f(&aio);
                aio.finish();
                out
            }))
        }
        None => Ok(f(&Aio::new(None, None))),
    }
}

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
    fn new(scope: Option<&'a Scope<'scope, 'env, N>>, eventfd: Option<&'a OwnedFd>) -> Self {
        Aio {
            scope,
            eventfd,
            inner: RefCell::new(Inner {
                slots: core::array::from_fn(|_| Slot {
                    cb: None,
                    stream: false,
                    done: 0,
                    nowait: false,
                    state: State::Free,
                    generation: 0,
                    seq: 0,
                }),
                next_seq: 0,
                orphans: [None; N],
            }),
            nonce: next_nonce(),
            owner: Owner::current(),
        }
    }

    /// `EINVAL` in a forked child: the layer (and its kernel context) belong to the parent,
    /// and nothing the child does may take or alter the parent's requests.
    fn check(&self) -> Result<(), Errno> {
        if self.owner.forked_slow() {
            Err(Errno::INVAL)
        } else {
            Ok(())
        }
    }

    fn id(&self, index: usize, generation: u32) -> Id {
        Id {
            layer: self.nonce,
            index: index as u32,
            generation,
        }
    }

    /// True when requests go through kernel AIO; false in synchronous (`ENOSYS`) mode.
    pub fn is_asynchronous(&self) -> bool {
        self.scope.is_some()
    }

    /// An eventfd that becomes readable whenever a kernel request of the layer completes
    /// (`None` in synchronous mode). Call [`Aio::progress`] when it does.
    pub fn eventfd(&self) -> Option<BorrowedFd<'_>> {
        self.eventfd.map(|fd| fd.as_fd())
    }

    /// `aio_read`.
    pub fn aio_read(&self, cb: Aiocb<'scope>) -> Result<Id, Errno> {
        self.check()?;
        if cb.op != Op::Read {
            return Err(Errno::INVAL);
        }
        self.enqueue(cb)
    }

    /// `aio_write`.
    pub fn aio_write(&self, cb: Aiocb<'scope>) -> Result<Id, Errno> {
        self.check()?;
        if cb.op != Op::Write {
            return Err(Errno::INVAL);
        }
        self.enqueue(cb)
    }

    /// `aio_fsync`: `cb` from [`Aiocb::sync`] names the descriptor and the kind.
    pub fn aio_fsync(&self, cb: Aiocb<'scope>) -> Result<Id, Errno> {
        self.check()?;
        if !matches!(cb.op, Op::Fsync(_)) {
            return Err(Errno::INVAL);
        }
        self.enqueue(cb)
    }

    /// `aio_error`: `Err(EINPROGRESS)` while pending, `Ok(())` on success, the request's error
    /// (`ECANCELED` when cancelled) on failure; `EINVAL` for an id that is not (or no longer)
    /// a request of this layer.
    pub fn aio_error(&self, id: Id) -> Result<(), Errno> {
        self.check()?;
        self.advance();
        let inner = self.inner.borrow();
        match inner.get(self.nonce, id)?.state {
            State::Done(Ok(_)) => Ok(()),
            State::Done(Err(e)) => Err(e),
            _ => Err(Errno::INPROGRESS),
        }
    }

    /// `aio_return`: the final result and the buffer, once, after completion. Before
    /// completion `EINPROGRESS` (and the request is untouched); afterwards the id is invalid.
    pub fn aio_return(&self, id: Id) -> Result<Returned<'scope>, Errno> {
        self.check()?;
        self.advance();
        let mut inner = self.inner.borrow_mut();
        let slot = inner.get_mut(self.nonce, id)?;
        let State::Done(result) = slot.state else {
            return Err(Errno::INPROGRESS);
        };
        slot.state = State::Free;
        let buffer = slot.cb.take().map_or(Buffer::None, |cb| cb.buffer);
        Ok(Returned { result, buffer })
    }

    /// `aio_suspend`: waits until at least one of `ids` has completed (or been cancelled, or is
    /// not a request at all), or `timeout` passes (`EAGAIN`), or a signal arrives (`EINTR`).
    /// An empty list is `EINVAL`.
    pub fn aio_suspend(&self, ids: &[Id], timeout: Option<Duration>) -> Result<(), Errno> {
        self.check()?;
        if ids.is_empty() {
            return Err(Errno::INVAL); // nothing could ever end the wait
        }
        let mut remaining = timeout;
        loop {
            self.advance();
            let any_done = {
                let inner = self.inner.borrow();
                ids.iter().any(|&id| {
                    !matches!(
                        inner.get(self.nonce, id).map(|s| s.state),
                        Ok(State::Queued | State::Polling(_) | State::InKernel(_))
                    )
                })
            };
            if any_done {
                return Ok(());
            }
            if remaining == Some(Duration::ZERO) {
                return Err(Errno::AGAIN);
            }
            let scope = self.scope.ok_or(Errno::AGAIN)?;
            if scope.in_flight() == 0 {
                // Nothing in the kernel can finish a pending request: cannot happen while a
                // request is queued (its predecessor is in flight), but never wait for nothing.
                return Err(Errno::AGAIN);
            }
            let started = Timer::start();
            let completions = scope.wait(1, remaining)?;
            self.absorb(completions);
            remaining = remaining.map(|t| t.saturating_sub(started.elapsed()));
        }
    }

    /// `lio_listio`: submits every control block of `list`; `status[i]` receives the id of the
    /// i-th, or why it was not queued (`EAGAIN` past capacity, `EBADF`, `EISDIR`, ...). With
    /// [`ListMode::Wait`] it then waits for every queued one. Returns `EAGAIN` if any entry was
    /// refused for lack of room, else `EIO` if any entry was refused for another reason or (with
    /// `Wait`) failed; each entry's status, and each queued one's `aio_error`, tells which.
    ///
    /// With `Wait`, a signal that interrupts the wait ends it with `EINTR` ("A signal was
    /// delivered while waiting for all I/O requests to complete during an LIO_WAIT
    /// operation"): the requests go on, and each entry's status and `aio_error` tell which
    /// have completed.
    pub fn lio_listio<const M: usize>(
        &self,
        mode: ListMode,
        list: [Aiocb<'scope>; M],
        status: &mut [Result<Id, Errno>; M],
    ) -> Result<(), Errno> {
        self.check()?;
        for (cb, st) in list.into_iter().zip(status.iter_mut()) {
            *st = self.enqueue(cb);
        }
        let mut failed = status
            .iter()
            .any(|s| matches!(s, Err(e) if *e != Errno::AGAIN));
        if mode == ListMode::Wait {
            for id in status.iter().filter_map(|s| s.ok()) {
                while self.aio_error(id) == Err(Errno::INPROGRESS) {
                    self.aio_suspend(&[id], None)?;
                }
                failed |= self.aio_error(id).is_err();
            }
        }
        if status.contains(&Err(Errno::AGAIN)) {
            Err(Errno::AGAIN)
        } else if failed {
            Err(Errno::IO)
        } else {
            Ok(())
        }
    }

    /// `aio_cancel`: cancels `cb` (which must be a request on `fd`, else `EINVAL`), or with
    /// `None` every outstanding request on `fd`. `EBADF` if `fd` is not an open descriptor,
    /// checked first. Cancelled requests complete with `ECANCELED` and are notified; the others
    /// are not modified.
    pub fn aio_cancel(&self, fd: BorrowedFd<'_>, cb: Option<Id>) -> Result<CancelStatus, Errno> {
        self.check()?;
        rustix::io::fcntl_getfd(fd)?;
        if cb.is_some_and(|id| id.layer != self.nonce) {
            return Err(Errno::INVAL); // another layer's request
        }
        self.advance();
        let raw = fd.as_raw_fd();
        let targets: [bool; N] = {
            let inner = self.inner.borrow();
            match cb {
                Some(id) => {
                    let Ok(slot) = inner.get(self.nonce, id) else {
                        return Ok(CancelStatus::AllDone);
                    };
                    if slot.cb.as_ref().map(|c| c.fd.as_raw_fd()) != Some(raw) {
                        return Err(Errno::INVAL);
                    }
                    core::array::from_fn(|i| i == id.index as usize)
                }
                None => core::array::from_fn(|i| {
                    let s = &inner.slots[i];
                    s.state != State::Free && s.cb.as_ref().is_some_and(|c| c.fd.as_raw_fd() == raw)
                }),
            }
        };
        Ok(self.cancel_slots(&targets, false))
    }

    /// Cancels the marked slots that can be cancelled, then lets each stream move on.
    ///
    /// A stream write that has transferred part of its data is in progress, so it is not
    /// cancelled (`NotCanceled`) but goes on; with `ending` (the layer is closing, nothing
    /// will move it on any more) it completes short instead, with the count written, as a
    /// `write` interrupted after transferring some data does.
    fn cancel_slots(&self, targets: &[bool; N], ending: bool) -> CancelStatus {
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

    /// Advances every request without waiting: takes the kernel's completions, starts the
    /// next request on each stream, and retries requests waiting for ring space, until nothing
    /// more happens. `EINVAL` in a forked child.
    pub fn progress(&self) -> Result<(), Errno> {
        self.check()?;
        self.advance();
        Ok(())
    }

    /// [`Aio::progress`]. A stream transfer that follows a readiness report completes inside
    /// its submission, so each round takes the completions the previous one caused; the
    /// rounds are bounded so that a peer that keeps a stream busy cannot keep a call here.
    fn advance(&self) {
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
    fn finish(&self) {
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

    fn enqueue(&self, cb: Aiocb<'scope>) -> Result<Id, Errno> {
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

    /// Synchronous mode: performs the operation now.
    fn run_synchronously(&self, i: usize) {
        let result = {
            let mut inner = self.inner.borrow_mut();
            let stream = inner.slots[i].stream;
            let Some(cb) = inner.slots[i].cb.as_mut() else {
                return;
            };
            match (&mut cb.buffer, cb.op) {
                (Buffer::Read(b), Op::Read) if stream => rustix::io::read(cb.fd, &mut **b),
                (Buffer::Read(b), Op::Read) => rustix::io::pread(cb.fd, &mut **b, cb.offset),
                (Buffer::Write(b), Op::Write) if stream => rustix::io::write(cb.fd, b),
                (Buffer::Write(b), Op::Write) => rustix::io::pwrite(cb.fd, b, cb.offset),
                (_, Op::Fsync(SyncMode::Sync)) => rustix::fs::fsync(cb.fd).map(|()| 0),
                (_, Op::Fsync(SyncMode::DataSync)) => rustix::fs::fdatasync(cb.fd).map(|()| 0),
                _ => Err(Errno::INVAL),
            }
        };
        self.finish_slot(i, result);
    }

    /// Hands slot `i` to the kernel: its transfer, or (`poll`) a readiness wait. On `EAGAIN`
    /// (no ring space) the slot stays queued; other errors complete it.
    fn submit_to_kernel(&self, i: usize, poll: bool) {
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
    fn refuse_nowait(&self, i: usize) -> bool {
        let slot = &mut self.inner.borrow_mut().slots[i];
        core::mem::replace(&mut slot.nowait, false) && slot.stream
    }

    /// Starts the oldest queued request of every stream that has none active, and retries
    /// file requests that were waiting for ring space.
    fn start_streams(&self) {
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
    fn absorb(&self, completions: crate::scope::Completions<'_, 'scope, 'env, N>) -> usize {
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
    fn finish_slot(&self, i: usize, result: Result<usize, Errno>) {
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

impl<'scope, const N: usize> Inner<'scope, N> {
    /// The slot `id` names, if `id` is a live request of the layer whose nonce is `layer`.
    fn get(&self, layer: u64, id: Id) -> Result<&Slot<'scope>, Errno> {
        self.slots
            .get(id.index as usize)
            .filter(|s| id.layer == layer && s.generation == id.generation)
            .filter(|s| s.state != State::Free)
            .ok_or(Errno::INVAL)
    }

    fn get_mut(&mut self, layer: u64, id: Id) -> Result<&mut Slot<'scope>, Errno> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|s| id.layer == layer && s.generation == id.generation)
            .filter(|s| s.state != State::Free)
            .ok_or(Errno::INVAL)
    }
}

/// Elapsed time for `aio_suspend`'s timeout, from the monotonic clock.
struct Timer(rustix::time::Timespec);

impl Timer {
    fn start() -> Timer {
        Timer(rustix::time::clock_gettime(
            rustix::time::ClockId::Monotonic,
        ))
    }

    fn elapsed(&self) -> Duration {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let ns = (now.tv_sec - self.0.tv_sec) as i128 * 1_000_000_000
            + (now.tv_nsec - self.0.tv_nsec) as i128;
        Duration::from_nanos(ns.max(0) as u64)
    }
}
