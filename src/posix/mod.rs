//! POSIX asynchronous I/O on kernel AIO: `aio_read`, `aio_write`, `aio_fsync`, `aio_error`,
//! `aio_return`, `aio_suspend`, `lio_listio` and `aio_cancel` with the cancellation rules of
//! POSIX `aio_cancel`. No threads and no heap: the layer lives in [`with`]'s stack frame, with
//! room for `N` control blocks.
//!
//! # How requests run
//! - Regular files and block devices: straight to the kernel (truly asynchronous with
//!   `O_DIRECT`; buffered I/O completes inside the submission, as with any kernel AIO).
//! - Sockets, pipes, FIFOs and character devices ("streams"), which would block inside
//!   `io_submit`: one request per descriptor and direction at a time, in submission order (a
//!   pending read never holds up a write on the same socket). Each transfer goes with
//!   `RWF_NOWAIT`, so it completes inside the submission; when it would block (`EAGAIN`), a
//!   kernel POLL waits for readiness, and the transfer is tried again. A read takes what is
//!   there, as `read` does. A write goes on, transfer after transfer, until all of it is
//!   written or an error stops it (then it completes with the count written, if any), as a
//!   blocking `write` does; the next write on the descriptor starts only then. A zero-byte
//!   request, or one on a listening socket, never waits (`read` and `write` return at once
//!   there, and so does the request).
//! - Where the kernel refuses `RWF_NOWAIT` (Linux 6.1 for pipes and sockets, later kernels for
//!   FIFOs and terminals), a transfer goes without it, and only right after a readiness report,
//!   on descriptors where that cannot block: pipes, FIFOs and byte-stream sockets in chunks of
//!   `PIPE_BUF` (the room a writable pipe always has), datagram and seqpacket sockets one whole
//!   message at a time (never split). A terminal or other character device there fails with
//!   `EOPNOTSUPP` rather than block a call. That "cannot block" assumes the layer is the
//!   descriptor's only reader (writer): if another thread or process takes the data (the room)
//!   between the report and the transfer, a descriptor without `O_NONBLOCK` blocks the call
//!   until it can go on, as a blocking `read` after `poll` does in any event loop; with
//!   `O_NONBLOCK` the transfer finds `EAGAIN` and waits for readiness again.
//! - Where the kernel cannot POLL a descriptor (files that wait on two queues: a FIFO opened
//!   for both reading and writing, terminals), a request that would have to wait fails with
//!   `EOPNOTSUPP` (a write that has transferred part of its data completes with that count).
//!   A FIFO that no writer has opened yet reports no readiness until a writer has come and gone,
//!   so a read on it waits for that, as any poll-based event loop does (`read` would return 0).
//! - `aio_fsync` needs a descriptor open for writing (`EBADF` otherwise, as glibc says). It
//!   covers every request queued before it on the same file, through any descriptor (the same
//!   number, a `dup`, another `open` of the file: for regular files and block devices, compared
//!   by device and inode; for anything else, whose fsync fails with `EINVAL` anyway, by number
//!   only), and the kernel's fsync does not wait for `O_DIRECT` writes in flight: the layer
//!   holds the fsync (in progress) until those requests have completed, then hands it to the
//!   kernel. The
//!   descriptor must name the same file until the fsync completes (as for every request: it
//!   is borrowed for the layer's life).
//! - `aio_reqprio` above [`AIO_PRIO_DELTA_MAX`] is `EINVAL`.
//! - Without kernel AIO (`ENOSYS`: qemu-user, `CONFIG_AIO=n`, targets without an architecture
//!   module) every request runs synchronously when submitted, and everything else behaves the
//!   same: a stream read waits for data and a stream write goes on until done, blocking the
//!   call (`O_NONBLOCK` or not), and `aio_cancel` answers [`CancelStatus::AllDone`].

//! # What can be cancelled
//! POSIX leaves it to the implementation. Here: requests the layer has not handed to the kernel
//! (queued behind earlier requests on the same stream, an `aio_fsync` held behind earlier
//! requests on its file, or waiting for ring space) and requests waiting for readiness (the
//! POLL phase). A request the kernel is executing (file I/O, fsync,
//! a transfer), and a stream write that has transferred part of its data, are in progress:
//! [`CancelStatus::NotCanceled`]. A completed one, including one that completes while
//! `aio_cancel` takes the kernel's latest completions, is [`CancelStatus::AllDone`].
//!
//! # Progress
//! There is no thread: the layer advances whenever it is called (`aio_error`, `aio_suspend`,
//! `aio_cancel`, `lio_listio`, [`Aio::progress`]). [`Aio::eventfd`] becomes readable whenever
//! a kernel request of the layer completes, for event loops that want to call `progress` then.
//! When `with`'s closure returns, requests that can be cancelled are (except a held
//! `aio_fsync`: it runs once the requests it waits for have completed, as the caller asked), a
//! stream write that has transferred part of its data completes with that count, and the layer
//! waits for the rest, notifying each as it completes. A notification callback that panics leaves the layer
//! consistent: the completions it was handed with are taken by the next call.

//! # Ids, scopes and fork
//! An [`Id`] belongs to the layer that issued it: another layer refuses it with `EINVAL`. A
//! forked child's copy of a layer refuses every call with `EINVAL` and leaves the parent's
//! requests alone (see [`Context`]'s "fork").

// This file: the public calls and the layer's state. engine.rs: the kernel requests behind
// each control block, their completions, cancellation and notification. sync.rs: the
// synchronous mode.
mod engine;
mod sync;

use core::cell::RefCell;
use core::time::Duration;

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use crate::owner::Owner;
use crate::request::Buffer;
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

/// The largest [`Aiocb::reqprio`] (`AIO_PRIO_DELTA_MAX`, as glibc's `sysconf` reports it).
pub const AIO_PRIO_DELTA_MAX: u8 = 20;

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

    /// `aio_reqprio`: lower the request's priority by this much, 0 to
    /// [`AIO_PRIO_DELTA_MAX`] (glibc's 20); a larger value makes the request fail with
    /// `EINVAL` when it is queued ("aio_reqprio is an invalid value"). It maps onto the
    /// best-effort I/O priority levels: level `reqprio`, at most 7 (the lowest).
    pub fn reqprio(mut self, reqprio: u8) -> Aiocb<'scope> {
        self.reqprio = reqprio;
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

    /// Takes the control block apart, giving its buffer back (a refused one's, for example).
    pub fn into_buffer(self) -> Buffer<'scope> {
        self.buffer
    }
}

/// A control block the layer did not queue, handed back with the reason (as
/// [`Scope::submit`](crate::Scope::submit) hands back a [`Rejected`](crate::Rejected)
/// request): retry it, or take its buffer back with [`Aiocb::into_buffer`], instead of losing
/// the buffer until [`with`] ends.
#[derive(Debug)]
pub struct Refused<'scope> {
    /// Why: `EAGAIN` (all `N` control blocks in use), `EBADF`, `EISDIR`, `EINVAL` (a wrong
    /// operation for the call, an invalid `reqprio` or notification, a forked child), or the
    /// error of the checks on the descriptor.
    pub error: Errno,
    /// The control block, buffer and all.
    pub aiocb: Aiocb<'scope>,
}

impl From<Refused<'_>> for Errno {
    fn from(r: Refused<'_>) -> Errno {
        r.error
    }
}

impl core::fmt::Display for Refused<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "control block not queued: {}", self.error)
    }
}

impl core::error::Error for Refused<'_> {}

/// What [`Aio::lio_listio`] did.
#[derive(Debug)]
pub struct Listed<'scope, const M: usize> {
    /// `lio_listio`'s return: `EAGAIN` if any entry was refused for lack of room, else `EIO` if
    /// any was refused for another reason or (with [`ListMode::Wait`]) failed, `EINTR` if a
    /// signal interrupted the wait.
    pub result: Result<(), Errno>,
    /// Each entry's id, or the entry itself, refused, with the reason.
    pub status: [Result<Id, Refused<'scope>>; M],
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

/// What kind of descriptor a request is on, which decides how it reaches the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A regular file or block device: straight to the kernel.
    File,
    /// A pipe or FIFO: after a readiness report, `PIPE_BUF` bytes always fit.
    Pipe,
    /// A byte-stream socket: after a readiness report, `PIPE_BUF` bytes fit (unless the send
    /// buffer was made tiny).
    ByteSocket,
    /// A datagram or seqpacket socket: a message is never split.
    MessageSocket,
    /// Anything else (terminals, character devices): a transfer without `RWF_NOWAIT` could
    /// block even after a readiness report.
    Other,
}

struct Slot<'scope> {
    cb: Option<Aiocb<'scope>>,
    kind: Kind,
    /// A stream request that cannot wait: zero bytes, or a listening socket (`read`/`write`
    /// return at once there, and so does the transfer).
    immediate: bool,
    /// Bytes a stream write has transferred so far (it goes on until all are written).
    done: usize,
    /// Transfers use `RWF_NOWAIT` (false once the kernel refused it for this request).
    nowait: bool,
    /// A readiness report came and no transfer has used it yet.
    ready: bool,
    state: State,
    generation: u32,
    /// Submission order, for stream fairness.
    seq: u64,
    /// The file the descriptor named when the request was queued (see `engine::FileId`).
    file: engine::FileId,
}

impl Slot<'_> {
    fn stream(&self) -> bool {
        self.kind != Kind::File
    }
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
    /// Set when `with`'s closure has returned: nothing starts waiting any more.
    closing: core::cell::Cell<bool>,
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

impl<'a, 'scope, 'env, const N: usize> Aio<'a, 'scope, 'env, N> {
    fn new(scope: Option<&'a Scope<'scope, 'env, N>>, eventfd: Option<&'a OwnedFd>) -> Self {
        Aio {
            scope,
            eventfd,
            inner: RefCell::new(Inner {
                slots: core::array::from_fn(|_| Slot {
                    cb: None,
                    kind: Kind::File,
                    immediate: false,
                    done: 0,
                    nowait: false,
                    ready: false,
                    state: State::Free,
                    generation: 0,
                    seq: 0,
                    file: None,
                }),
                next_seq: 0,
                orphans: [None; N],
            }),
            nonce: next_nonce(),
            owner: Owner::current(),
            closing: core::cell::Cell::new(false),
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

    /// `aio_read`. A control block that is not queued comes back ([`Refused`]).
    pub fn aio_read(&self, cb: Aiocb<'scope>) -> Result<Id, Refused<'scope>> {
        if let Err(error) = self.check() {
            return Err(Refused { error, aiocb: cb });
        }
        if cb.op != Op::Read {
            return Err(Refused {
                error: Errno::INVAL,
                aiocb: cb,
            });
        }
        self.enqueue(cb)
    }

    /// `aio_write`. A control block that is not queued comes back ([`Refused`]).
    pub fn aio_write(&self, cb: Aiocb<'scope>) -> Result<Id, Refused<'scope>> {
        if let Err(error) = self.check() {
            return Err(Refused { error, aiocb: cb });
        }
        if cb.op != Op::Write {
            return Err(Refused {
                error: Errno::INVAL,
                aiocb: cb,
            });
        }
        self.enqueue(cb)
    }

    /// `aio_fsync`: `cb` from [`Aiocb::sync`] names the descriptor and the kind. A control
    /// block that is not queued comes back ([`Refused`]).
    pub fn aio_fsync(&self, cb: Aiocb<'scope>) -> Result<Id, Refused<'scope>> {
        if let Err(error) = self.check() {
            return Err(Refused { error, aiocb: cb });
        }
        if !matches!(cb.op, Op::Fsync(_)) {
            return Err(Refused {
                error: Errno::INVAL,
                aiocb: cb,
            });
        }
        self.enqueue(cb)
    }

    /// `aio_error`: `Err(EINPROGRESS)` while pending, `Ok(())` on success, the request's error
    /// (`ECANCELED` when cancelled; `EAGAIN` when the kernel refused it for lack of resources
    /// while nothing else was in flight to free them) on failure; `EINVAL` for an id that is
    /// not (or no longer) a request of this layer.
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
                // request is queued (a queued request waits for one in flight; one that the
                // kernel refuses with nothing in flight fails with EAGAIN), but never wait for
                // nothing.
                return Err(Errno::AGAIN);
            }
            let started = Timer::start();
            let completions = scope.wait(1, remaining)?;
            self.absorb(completions);
            remaining = remaining.map(|t| t.saturating_sub(started.elapsed()));
        }
    }

    /// `lio_listio`: submits every control block of `list`; [`Listed::status`] has the id of
    /// each, or the control block itself with why it was not queued (`EAGAIN` past capacity,
    /// `EBADF`, `EISDIR`, ...). With [`ListMode::Wait`] it then waits for every queued one.
    /// [`Listed::result`] is `EAGAIN` if any entry was refused for lack of room, else `EIO` if
    /// any entry was refused for another reason or (with `Wait`) failed; each entry's status,
    /// and each queued one's `aio_error`, tells which. In a forked child every entry comes back
    /// with `EINVAL`.
    ///
    /// With `Wait`, a signal that interrupts the wait ends it with `EINTR` ("A signal was
    /// delivered while waiting for all I/O requests to complete during an LIO_WAIT
    /// operation"): the requests go on, and each entry's status and `aio_error` tell which
    /// have completed.
    pub fn lio_listio<const M: usize>(
        &self,
        mode: ListMode,
        list: [Aiocb<'scope>; M],
    ) -> Listed<'scope, M> {
        if let Err(error) = self.check() {
            return Listed {
                result: Err(error),
                status: list.map(|aiocb| Err(Refused { error, aiocb })),
            };
        }
        let status = list.map(|cb| self.enqueue(cb));
        let refused =
            |want: fn(Errno) -> bool| status.iter().any(|s| matches!(s, Err(r) if want(r.error)));
        let mut failed = refused(|e| e != Errno::AGAIN);
        let full = refused(|e| e == Errno::AGAIN);
        if mode == ListMode::Wait {
            for id in status.iter().filter_map(|s| s.as_ref().ok().copied()) {
                while self.aio_error(id) == Err(Errno::INPROGRESS) {
                    if let Err(e) = self.aio_suspend(&[id], None) {
                        return Listed {
                            result: Err(e),
                            status,
                        };
                    }
                }
                failed |= self.aio_error(id).is_err();
            }
        }
        let result = if full {
            Err(Errno::AGAIN)
        } else if failed {
            Err(Errno::IO)
        } else {
            Ok(())
        };
        Listed { result, status }
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

    /// Advances every request without waiting: takes the kernel's completions, starts the
    /// next request on each stream, and retries requests waiting for ring space, until nothing
    /// more happens. `EINVAL` in a forked child.
    pub fn progress(&self) -> Result<(), Errno> {
        self.check()?;
        self.advance();
        Ok(())
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
struct Timer(Duration);

impl Timer {
    fn start() -> Timer {
        Timer(crate::scope::now())
    }

    fn elapsed(&self) -> Duration {
        crate::scope::now().saturating_sub(self.0)
    }
}
