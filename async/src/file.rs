//! A file (or any descriptor) bound to a driver, and the requests on it.

use std::path::Path;
use std::sync::Arc;

use rustix::event::PollFlags;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::buf::{IoBuf, IoBufMut};
use crate::driver::Driver;
use crate::op::{self, Op, Operation, PollOp, Read, ReadV, Sync, Write, WriteV};

/// A descriptor bound to a [`Driver`]. Cheap to clone (the descriptor is shared, and closed when
/// the last clone and the last request on it are gone: a request in flight keeps it open, so
/// its number cannot be reused for another file before the kernel has seen it).
///
/// Regular files and block devices take every operation. With `O_DIRECT` the kernel performs
/// the I/O asynchronously; without it (buffered I/O) the kernel performs it inside
/// `io_submit`, on the thread running the driving turn: fast from the page cache, but a cache
/// miss blocks that thread for the device read. Streams (pipes, sockets, terminals): use
/// [`File::poll`] for readiness, then a non-blocking read or write of your own; their reads and
/// writes through AIO could block inside `io_submit`, and Linux 6.1 refuses `RWF_NOWAIT` on
/// them (see the crate documentation). So on anything but a regular file, a block device or a
/// directory, a read or write of a descriptor in blocking mode completes with `EOPNOTSUPP`,
/// without reaching the kernel: it would block the thread running the driving turn, and every
/// request of the driver with it. The mode is checked (one `fcntl`) when the request is made
/// (it then completes at its first poll) and again by the driving turn right before the
/// `io_submit` that would carry it. What is guaranteed: a request whose descriptor is in
/// blocking mode at either moment never reaches the kernel. What cannot be: another thread or
/// process sharing the open file description can still clear `O_NONBLOCK` in the few
/// microseconds between the turn's check and its `io_submit` (no system call checks and
/// submits at once, and Linux 6.1 refuses `RWF_NOWAIT` on pipes and sockets); that read or
/// write then blocks the driving thread until the stream is ready. Keep such descriptors
/// non-blocking while requests on them may be queued. In non-blocking mode the kernel answers
/// `EAGAIN` when the stream is not ready.
#[derive(Clone)]
pub struct File {
    driver: Driver,
    fd: Arc<OwnedFd>,
    /// Buffered reads and writes on this file complete inside `io_submit` (see `synchronous`).
    synchronous: bool,
    /// Not a regular file, block device or directory: reads and writes may block inside
    /// `io_submit` unless the descriptor is non-blocking.
    stream: bool,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File").field("fd", &self.fd).finish()
    }
}

impl File {
    /// Binds `fd` (a `std::fs::File`, an `OwnedFd`, a socket...) to `driver`.
    pub fn new(driver: &Driver, fd: impl Into<OwnedFd>) -> File {
        let fd = fd.into();
        File {
            driver: driver.clone(),
            synchronous: synchronous(&fd),
            stream: stream(&fd),
            fd: Arc::new(fd),
        }
    }

    /// A read or write: on a stream, refused with `EOPNOTSUPP` if the descriptor is in
    /// blocking mode now (one `fcntl`), and checked again by the turn that submits it.
    fn checked<T: Operation>(&self, op: Op<T>) -> Op<T> {
        if !self.stream {
            return op;
        }
        op.on_stream(blocking(self.fd.as_fd()).then_some(rustix::io::Errno::OPNOTSUPP))
    }

    /// Opens `path` read-only (`std::fs::File::open`, a blocking call).
    pub fn open(driver: &Driver, path: impl AsRef<Path>) -> std::io::Result<File> {
        Ok(File::new(driver, std::fs::File::open(path)?))
    }

    /// The driver.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// Reads into all of `buf`'s `bytes_total()` (a `Vec`'s capacity, whose length then grows
    /// to cover what was read) from `offset`; resolves to `(bytes read, buf)`.
    pub fn read_at<B: IoBufMut>(&self, buf: B, offset: u64) -> Op<Read<B>> {
        self.checked(op::read(
            &self.driver,
            &self.fd,
            self.synchronous,
            buf,
            offset,
        ))
    }

    /// Writes `buf`'s `bytes_init()` (a `Vec`'s length) at `offset`; resolves to
    /// `(bytes written, buf)`.
    pub fn write_at<B: IoBuf>(&self, buf: B, offset: u64) -> Op<Write<B>> {
        self.checked(op::write(
            &self.driver,
            &self.fd,
            self.synchronous,
            buf,
            offset,
        ))
    }

    /// Reads into `bufs` in order from `offset` (at most 1024 buffers, `UIO_MAXIOV`; more
    /// fail with `EINVAL`).
    pub fn readv_at<B: IoBufMut>(&self, bufs: Vec<B>, offset: u64) -> Op<ReadV<B>> {
        self.checked(op::readv(
            &self.driver,
            &self.fd,
            self.synchronous,
            bufs,
            offset,
        ))
    }

    /// Writes `bufs` in order at `offset` (at most 1024 buffers).
    pub fn writev_at<B: IoBuf>(&self, bufs: Vec<B>, offset: u64) -> Op<WriteV<B>> {
        self.checked(op::writev(
            &self.driver,
            &self.fd,
            self.synchronous,
            bufs,
            offset,
        ))
    }

    /// `fsync`: data and metadata reach the device.
    pub fn sync_all(&self) -> Op<Sync> {
        op::sync(&self.driver, &self.fd, false, false)
    }

    /// `fdatasync`: data (and the metadata needed to read it) reach the device.
    pub fn sync_data(&self) -> Op<Sync> {
        op::sync(&self.driver, &self.fd, false, true)
    }

    /// Waits until the descriptor is ready for `events` (`IOCB_CMD_POLL`, Linux 4.19);
    /// resolves to the ready mask. Dropping the future cancels the poll (`io_cancel`); a poll
    /// cancelled by [`Driver::shutdown`] resolves to `ECANCELED`.
    pub fn poll(&self, events: PollFlags) -> Op<PollOp> {
        op::poll(&self.driver, &self.fd, false, events)
    }
}

/// True if `fd` is in blocking mode (no `O_NONBLOCK`), or `fcntl` cannot say.
pub(crate) fn blocking(fd: BorrowedFd<'_>) -> bool {
    !rustix::fs::fcntl_getfl(fd).is_ok_and(|f| f.contains(rustix::fs::OFlags::NONBLOCK))
}

/// True for descriptors whose reads and writes may block inside `io_submit`: anything but a
/// regular file, a block device or a directory (pipes, sockets, terminals and other character
/// devices, eventfds...), or a descriptor `fstat` cannot describe.
fn stream(fd: &OwnedFd) -> bool {
    use rustix::fs::FileType;
    !rustix::fs::fstat(fd).is_ok_and(|st| {
        matches!(
            FileType::from_raw_mode(st.st_mode),
            FileType::RegularFile | FileType::BlockDevice | FileType::Directory
        )
    })
}

/// Filesystems whose buffered reads and writes complete inside `io_submit` (their `read_iter`
/// and `write_iter` never return `-EIOCBQUEUED` without `O_DIRECT`): ext2/3/4, XFS, Btrfs,
/// tmpfs, F2FS (linux/magic.h).
const SYNCHRONOUS_BUFFERED: [u32; 5] = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0xF2F5_2010];

/// True if buffered reads and writes on `fd` are performed inside `io_submit`: a block device,
/// or a regular file on one of [`SYNCHRONOUS_BUFFERED`], opened without `O_DIRECT`. Their
/// requests go without `IOCB_FLAG_RESFD`: the driving turn reaps them right after its
/// `io_submit`, and the kernel's eventfd signal (~150 ns a request here) is saved. Anything
/// else, or any doubt, signals. Should a filesystem complete one later after all (an
/// `O_DIRECT` set with `fcntl` afterwards), the turn notices and the driver signals everything
/// from then on (see `Turn::unsignalled`).
fn synchronous(fd: &OwnedFd) -> bool {
    use rustix::fs::{FileType, OFlags};
    let Ok(st) = rustix::fs::fstat(fd) else {
        return false;
    };
    let direct = rustix::fs::fcntl_getfl(fd).map_or(true, |f| f.contains(OFlags::DIRECT));
    match FileType::from_raw_mode(st.st_mode) {
        _ if direct => false,
        FileType::BlockDevice => true,
        FileType::RegularFile => rustix::fs::fstatfs(fd).is_ok_and(|fs| {
            // f_type is a signed or unsigned word depending on the architecture.
            #[allow(clippy::unnecessary_cast)]
            let magic = fs.f_type as u64 as u32;
            SYNCHRONOUS_BUFFERED.contains(&magic)
        }),
        _ => false,
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `O_DIRECT` alignment of a file: buffers' addresses (`memory`) and file offsets and lengths
/// (`offset`) must be multiples of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DioAlignment {
    /// Required alignment of buffer addresses, in bytes.
    pub memory: usize,
    /// Required alignment of file offsets and request lengths, in bytes.
    pub offset: usize,
    /// True if the kernel reported them (`statx` with `STATX_DIOALIGN`, Linux 6.1); false if
    /// these are the fallback (4096 both: a page, enough for every filesystem and device this
    /// crate has met, and what `AlignedBuf::new` gives).
    pub from_kernel: bool,
}

/// The `O_DIRECT` alignment `fd` needs: `statx(STATX_DIOALIGN)` where the kernel and
/// filesystem report it, else 4096 for both. On a filesystem without `O_DIRECT` support the
/// kernel reports 0 for both, and this answers `EINVAL` (what opening with `O_DIRECT` gives).
pub fn dio_alignment(fd: impl AsFd) -> std::io::Result<DioAlignment> {
    use rustix::fs::{statx, AtFlags, StatxFlags};
    let fallback = DioAlignment {
        memory: 4096,
        offset: 4096,
        from_kernel: false,
    };
    let st = match statx(fd, c"", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOSYS) => return Ok(fallback),
        Err(e) => return Err(e.into()),
    };
    if StatxFlags::from_bits_retain(st.stx_mask).contains(StatxFlags::DIOALIGN) {
        if st.stx_dio_mem_align == 0 || st.stx_dio_offset_align == 0 {
            return Err(rustix::io::Errno::INVAL.into());
        }
        Ok(DioAlignment {
            memory: st.stx_dio_mem_align as usize,
            offset: st.stx_dio_offset_align as usize,
            from_kernel: true,
        })
    } else {
        Ok(fallback)
    }
}
