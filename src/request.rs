//! Requests: one `struct iocb` each, with the buffer it names borrowed for as long as the
//! request value lives.

use core::marker::PhantomData;

use rustix::event::PollFlags;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd};
use rustix::io::IoSlice;

use crate::iovec::ReadVecs;
use crate::raw::{self, iocb};

/// Per-request flags (`aio_rw_flags`, the `RWF_*` of `preadv2(2)`), for reads and writes:
/// rustix's `ReadWriteFlags` (a `bitflags` type: `empty()`, `|`, `&`, `!`, `contains`, a
/// readable `Debug`), whose bits are the kernel's `RWF_*` exactly (asserted below against the
/// pinned UAPI headers). Bits this crate has no name for can be passed with
/// `RwFlags::from_bits_retain`; the kernel answers `EOPNOTSUPP` for bits it does not know.
pub use rustix::io::ReadWriteFlags as RwFlags;

// The names rustix gives are the kernel's values, as the generator read them.
static_assertions::const_assert_eq!(RwFlags::HIPRI.bits(), raw::RWF_HIPRI as u32);
static_assertions::const_assert_eq!(RwFlags::DSYNC.bits(), raw::RWF_DSYNC as u32);
static_assertions::const_assert_eq!(RwFlags::SYNC.bits(), raw::RWF_SYNC as u32);
static_assertions::const_assert_eq!(RwFlags::NOWAIT.bits(), raw::RWF_NOWAIT as u32);
static_assertions::const_assert_eq!(RwFlags::APPEND.bits(), raw::RWF_APPEND as u32);

/// An I/O priority (`ioprio_set(2)`): a class and a level within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IoPriority(u16);

/// The scheduling classes of [`IoPriority`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoPriorityClass {
    /// `IOPRIO_CLASS_RT`: served first (levels 0..=7, 0 highest).
    RealTime = 1,
    /// `IOPRIO_CLASS_BE`: the default class (levels 0..=7).
    BestEffort = 2,
    /// `IOPRIO_CLASS_IDLE`: served when nothing else is waiting.
    Idle = 3,
}

impl IoPriority {
    /// `class` at `level` (0..=7, 0 the most urgent); `None` for a level above 7 (newer kernels
    /// would read the extra bits as priority hints rather than reject them).
    pub const fn new(class: IoPriorityClass, level: u8) -> Option<IoPriority> {
        if level > 7 {
            None
        } else {
            Some(IoPriority(((class as u16) << 13) | level as u16))
        }
    }

    /// Any `ioprio` value, unchecked (the kernel rejects unknown classes with `EINVAL`).
    pub const fn from_bits_retain(bits: u16) -> IoPriority {
        IoPriority(bits)
    }

    /// The `ioprio` value the kernel reads from `aio_reqprio`.
    pub const fn bits(self) -> u16 {
        self.0
    }
}

/// The buffer a request reads into or writes from, handed back by the scoped API on completion
/// so that it can be used again.
pub enum Buffer<'a> {
    /// No buffer (fsync, fdsync, poll).
    None,
    /// A read's destination.
    Read(&'a mut [u8]),
    /// A write's source.
    Write(&'a [u8]),
    /// A vectored read's destinations.
    ReadV(ReadVecs<'a>),
    /// A vectored write's sources.
    WriteV(&'a [IoSlice<'a>]),
}

impl<'a> Buffer<'a> {
    /// A read's destination, or `None` for any other kind.
    pub fn into_read(self) -> Option<&'a mut [u8]> {
        match self {
            Buffer::Read(b) => Some(b),
            _ => None,
        }
    }

    /// A write's source, or `None` for any other kind.
    pub fn into_write(self) -> Option<&'a [u8]> {
        match self {
            Buffer::Write(b) => Some(b),
            _ => None,
        }
    }

    /// A vectored read's destinations, or `None` for any other kind.
    pub fn into_read_vecs(self) -> Option<ReadVecs<'a>> {
        match self {
            Buffer::ReadV(v) => Some(v),
            _ => None,
        }
    }

    /// A vectored write's sources, or `None` for any other kind.
    pub fn into_write_vecs(self) -> Option<&'a [IoSlice<'a>]> {
        match self {
            Buffer::WriteV(v) => Some(v),
            _ => None,
        }
    }

    /// Total bytes the buffer spans (0 for [`Buffer::None`]).
    pub fn len(&self) -> usize {
        match self {
            Buffer::None => 0,
            Buffer::Read(b) => b.len(),
            Buffer::Write(b) => b.len(),
            Buffer::ReadV(v) => v.iter().map(<[u8]>::len).sum(),
            Buffer::WriteV(v) => v.iter().map(|s| crate::iovec::bytes(s).len()).sum(),
        }
    }

    /// True if the buffer spans no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl core::fmt::Debug for Buffer<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Buffer::None => f.write_str("None"),
            Buffer::Read(b) => write!(f, "Read({} bytes)", b.len()),
            Buffer::Write(b) => write!(f, "Write({} bytes)", b.len()),
            Buffer::ReadV(v) => write!(f, "ReadV({} slices)", v.len()),
            Buffer::WriteV(v) => write!(f, "WriteV({} slices)", v.len()),
        }
    }
}

/// One asynchronous operation, ready to submit.
///
/// The request borrows its file descriptor, its buffer and any eventfd for `'a`; the scoped API
/// ([`Context::scope`](crate::Context::scope)) extends that borrow until the request has
/// completed, so the borrow checker proves the buffer outlives the I/O. `repr(C)` with the
/// `iocb` first: an array of `&mut Request` is the array of `iocb` pointers `io_submit` takes.
///
/// ```
/// use linux_aio::{IoPriority, IoPriorityClass, Request, RwFlags};
/// use std::os::fd::AsFd;
///
/// let file = std::fs::File::open("Cargo.toml").unwrap();
/// let eventfd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
/// let mut buf = [0u8; 512];
/// let req = Request::read(file.as_fd(), &mut buf, 0)
///     .user_data(7)                                  // comes back in the completion
///     .eventfd(eventfd.as_fd())                      // IOCB_FLAG_RESFD
///     .priority(IoPriority::new(IoPriorityClass::BestEffort, 2).unwrap()) // IOCB_FLAG_IOPRIO
///     .flags(RwFlags::HIPRI);                        // RWF_HIPRI
/// assert_eq!(req.iocb().aio_data, 7);
/// assert_eq!(req.iocb().aio_nbytes, 512);
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct Request<'a> {
    cb: iocb,
    buffer: Buffer<'a>,
    _fd: PhantomData<BorrowedFd<'a>>,
}

// `Submitter::submit` hands `&mut [&mut Request]` to io_submit as an array of `iocb` pointers:
// sound only because the iocb is the first field of a repr(C) Request.
static_assertions::const_assert_eq!(core::mem::offset_of!(Request<'static>, cb), 0);

#[inline]
fn fd_of(fd: &impl AsFd) -> u32 {
    fd.as_fd().as_raw_fd() as u32
}

impl<'a> Request<'a> {
    #[inline]
    fn new(op: u16, fd: BorrowedFd<'a>, buffer: Buffer<'a>, offset: u64) -> Request<'a> {
        let (addr, len) = match &buffer {
            Buffer::None => (0, 0),
            Buffer::Read(b) => (b.as_ptr() as u64, b.len() as u64),
            Buffer::Write(b) => (b.as_ptr() as u64, b.len() as u64),
            Buffer::ReadV(v) => v.as_iovec(),
            Buffer::WriteV(v) => (v.as_ptr() as u64, v.len() as u64),
        };
        Request {
            cb: iocb {
                aio_lio_opcode: op,
                aio_fildes: fd_of(&fd),
                aio_buf: addr,
                aio_nbytes: len,
                // Offsets above i64::MAX become negative, which the kernel rejects (EINVAL).
                aio_offset: offset as i64,
                ..Default::default()
            },
            buffer,
            _fd: PhantomData,
        }
    }

    /// `IOCB_CMD_PREAD`: read into `buf` from `offset`.
    ///
    /// On regular files this completes inside submission (buffered) or asynchronously
    /// (`O_DIRECT`). On sockets, pipes and terminals a read or write can block inside
    /// submission until data or room is there: wait for readiness with [`Request::poll`] and
    /// transfer with [`RwFlags::NOWAIT`], or use the [`posix`](crate::posix) layer, which does.
    #[inline]
    pub fn read(fd: BorrowedFd<'a>, buf: &'a mut [u8], offset: u64) -> Request<'a> {
        Request::new(raw::IOCB_CMD_PREAD, fd, Buffer::Read(buf), offset)
    }

    /// `IOCB_CMD_PWRITE`: write `buf` at `offset`.
    #[inline]
    pub fn write(fd: BorrowedFd<'a>, buf: &'a [u8], offset: u64) -> Request<'a> {
        Request::new(raw::IOCB_CMD_PWRITE, fd, Buffer::Write(buf), offset)
    }

    /// `IOCB_CMD_PREADV`: read into `bufs`, in order, from `offset`.
    ///
    /// `bufs` is an `&mut` array or slice of `IoSliceMut` (or the [`ReadVecs`] a completion
    /// handed back). Inside a [`Context::scope`](crate::Context::scope), declare the buffers
    /// and the array before the scope, as for [`Request::read`]:
    ///
    /// ```
    /// use linux_aio::{Context, Request};
    /// use rustix::io::IoSliceMut;
    /// use std::os::fd::AsFd;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # if let Err(rustix::io::Errno::NOSYS) = Context::new(1) { return Ok(()) }
    /// let file = std::fs::File::open("Cargo.toml")?;
    /// let mut ctx = Context::new(8)?;
    /// let (mut head, mut tail) = ([0u8; 4], [0u8; 5]);
    /// let mut iov = [IoSliceMut::new(&mut head), IoSliceMut::new(&mut tail)];
    /// let n = ctx.scope::<2, _>(|s| -> Result<usize, rustix::io::Errno> {
    ///     s.submit(Request::readv(file.as_fd(), &mut iov, 0))?;
    ///     let done = s.wait(1, None)?.next().unwrap();
    ///     let vecs = done.buffer.into_read_vecs().unwrap();
    ///     assert_eq!(vecs.get(1), Some(&b"kage]"[..]));
    ///     done.event.result()
    /// })?;
    /// assert_eq!((n, &head), (9, b"[pac"));
    /// # Ok(()) }
    /// ```
    ///
    /// An array declared inside the scope does not live long enough:
    ///
    /// ```compile_fail,E0597
    /// # use linux_aio::{Context, Request};
    /// # use rustix::io::IoSliceMut;
    /// # use std::os::fd::AsFd;
    /// # let file = std::fs::File::open("Cargo.toml").unwrap();
    /// # let mut ctx = Context::new(8).unwrap();
    /// let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
    /// ctx.scope::<2, _>(|s| {
    ///     let mut iov = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
    ///     s.submit(Request::readv(file.as_fd(), &mut iov, 0)).unwrap();
    /// });
    /// ```
    ///
    /// and the buffers cannot be touched while the scope holds them (the error code differs
    /// between compiler versions, E0503 or E0502, so none is pinned here; the compile-fail
    /// probes in tests/compile_fail check the stable compiler's):
    ///
    /// ```compile_fail
    /// # use linux_aio::{Context, Request};
    /// # use rustix::io::IoSliceMut;
    /// # use std::os::fd::AsFd;
    /// # let file = std::fs::File::open("Cargo.toml").unwrap();
    /// # let mut ctx = Context::new(8).unwrap();
    /// let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
    /// let mut iov = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
    /// ctx.scope::<2, _>(|s| {
    ///     s.submit(Request::readv(file.as_fd(), &mut iov, 0)).unwrap();
    ///     let peek = a[0];
    /// });
    /// ```
    ///
    /// nor the array reused for a second request while the first may be in flight:
    ///
    /// ```compile_fail,E0499
    /// # use linux_aio::{Context, Request};
    /// # use rustix::io::IoSliceMut;
    /// # use std::os::fd::AsFd;
    /// # let file = std::fs::File::open("Cargo.toml").unwrap();
    /// # let mut ctx = Context::new(8).unwrap();
    /// let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
    /// let mut iov = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
    /// ctx.scope::<2, _>(|s| {
    ///     s.submit(Request::readv(file.as_fd(), &mut iov, 0)).unwrap();
    ///     s.submit(Request::readv(file.as_fd(), &mut iov, 8)).unwrap();
    /// });
    /// ```
    #[inline]
    pub fn readv(fd: BorrowedFd<'a>, bufs: impl Into<ReadVecs<'a>>, offset: u64) -> Request<'a> {
        Request::new(raw::IOCB_CMD_PREADV, fd, Buffer::ReadV(bufs.into()), offset)
    }

    /// `IOCB_CMD_PWRITEV`: write `bufs`, in order, at `offset`.
    #[inline]
    pub fn writev(fd: BorrowedFd<'a>, bufs: &'a [IoSlice<'a>], offset: u64) -> Request<'a> {
        Request::new(raw::IOCB_CMD_PWRITEV, fd, Buffer::WriteV(bufs), offset)
    }

    /// `IOCB_CMD_FSYNC`: flush the file's data and metadata.
    #[inline]
    pub fn fsync(fd: BorrowedFd<'a>) -> Request<'a> {
        Request::new(raw::IOCB_CMD_FSYNC, fd, Buffer::None, 0)
    }

    /// `IOCB_CMD_FDSYNC`: flush the file's data (and the metadata needed to read it).
    #[inline]
    pub fn fdsync(fd: BorrowedFd<'a>) -> Request<'a> {
        Request::new(raw::IOCB_CMD_FDSYNC, fd, Buffer::None, 0)
    }

    /// `IOCB_CMD_POLL` (Linux 4.19): completes when `fd` is ready for `events`; the result is
    /// the ready mask. The only request kind the kernel can cancel.
    #[inline]
    pub fn poll(fd: BorrowedFd<'a>, events: PollFlags) -> Request<'a> {
        let mut r = Request::new(raw::IOCB_CMD_POLL, fd, Buffer::None, 0);
        // `bits()` is u16 or i16 depending on rustix's backend; the kernel wants the 16-bit mask.
        #[allow(clippy::unnecessary_cast)]
        let mask = events.bits() as u16;
        r.cb.aio_buf = u64::from(mask);
        r
    }

    /// The value returned in the completion's [`Event::user_data`](crate::Event::user_data).
    #[inline]
    pub fn user_data(mut self, data: u64) -> Request<'a> {
        self.cb.aio_data = data;
        self
    }

    /// `IOCB_FLAG_RESFD`: the kernel adds 1 to `eventfd` when this request completes.
    #[inline]
    pub fn eventfd(self, eventfd: BorrowedFd<'a>) -> Request<'a> {
        self.eventfd_unchecked(&eventfd)
    }

    /// [`Request::eventfd`] for an eventfd whose lifetime the caller guarantees some other way
    /// (it must stay open until the request has been reaped).
    #[inline]
    pub(crate) fn eventfd_unchecked(mut self, eventfd: &impl AsFd) -> Request<'a> {
        self.cb.aio_flags |= raw::IOCB_FLAG_RESFD;
        self.cb.aio_resfd = fd_of(eventfd);
        self
    }

    /// `IOCB_FLAG_IOPRIO`: the request's I/O priority.
    #[inline]
    pub fn priority(mut self, priority: IoPriority) -> Request<'a> {
        self.cb.aio_flags |= raw::IOCB_FLAG_IOPRIO;
        self.cb.aio_reqprio = priority.bits() as i16;
        self
    }

    /// Per-request `RWF_*` flags (reads and writes; the kernel rejects them on other kinds).
    #[inline]
    pub fn flags(mut self, flags: RwFlags) -> Request<'a> {
        // The kernel's __kernel_rwf_t is an int; the bits are the same.
        self.cb.aio_rw_flags = flags.bits() as i32;
        self
    }

    /// Moves the request to another file offset, for callers that reuse one request value
    /// (the kernel copies the iocb at submission, so this never affects one in flight).
    #[inline]
    pub fn set_offset(&mut self, offset: u64) {
        self.cb.aio_offset = offset as i64;
    }

    /// The `iocb` as it will be submitted.
    #[inline]
    pub fn iocb(&self) -> &iocb {
        &self.cb
    }

    /// True for the kinds the kernel can cancel (POLL).
    #[inline]
    pub fn is_cancelable(&self) -> bool {
        self.cb.aio_lio_opcode == raw::IOCB_CMD_POLL
    }

    /// Takes the request apart, giving its buffer back.
    #[inline]
    pub fn into_buffer(self) -> Buffer<'a> {
        self.buffer
    }

    /// The iocb and the buffer, for storage apart.
    #[inline]
    pub(crate) fn into_parts(self) -> (iocb, Buffer<'a>) {
        (self.cb, self.buffer)
    }

    #[inline]
    pub(crate) fn from_parts(cb: iocb, buffer: Buffer<'a>) -> Request<'a> {
        Request {
            cb,
            buffer,
            _fd: PhantomData,
        }
    }
}
