//! Futures over Linux native AIO ([`linux_aio`]), one per request, with owned buffers.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use linux_aio_async::{Driver, File};
//!
//! let driver = Driver::new(256)?;       // io_setup(256), an eventfd, a 256-slot table
//! driver.spawn_tokio()?;                 // the driving task (feature "tokio")
//! let file = File::open(&driver, "data.bin")?;
//! let buf = Vec::with_capacity(4096);
//! let (res, buf) = file.read_at(buf, 0).await; // the buffer comes back with the result
//! println!("read {} bytes: {:?}", res?, &buf[..8.min(buf.len())]);
//! # Ok(()) }
//! # #[cfg(not(feature = "tokio"))] fn main() {}
//! ```
//!
//! # How it works
//!
//! - A [`Driver`] owns one kernel context ([`linux_aio::Context`]), an eventfd the kernel
//!   signals on every completion that comes after `io_submit` has returned (`IOCB_FLAG_RESFD`),
//!   and a table of slots: one per request queued or in flight, with the `iocb`s at fixed
//!   addresses.
//! - A request's future ([`Op`]) does nothing until polled. Its first poll takes a slot, writes
//!   the request and joins the queue; it never makes a system call. If every slot is taken it
//!   waits for one, in order of arrival (a released slot is handed to the oldest waiter, never
//!   taken by a newcomer): back-pressure, not an error.
//! - The driving task takes the whole queue and submits it with **one `io_submit` per
//!   wake-up**, however many futures queued requests since the last one, then reaps every
//!   completion from the ring in user space (no system call) and wakes their futures. When the
//!   kernel's ring is full (`EAGAIN` from `io_submit`), the refused requests go back to the
//!   front of the queue until the next completion. Drive it with [`Driver::spawn_tokio`]
//!   (feature `tokio`: the eventfd is registered with `tokio::io::unix::AsyncFd`; any runtime
//!   flavour), [`Driver::spawn_thread`] (any executor), or a loop of your own around
//!   [`Driver::turn`] and [`Driver::eventfd`]. A driver nobody drives completes nothing: its
//!   futures wait until a driving task or thread starts.
//! - Errors come back as each request's result (`EBADF`, `EINVAL` for misaligned `O_DIRECT`
//!   requests or offsets beyond `i64::MAX`, ...), never as panics.
//! - A panic in user code is the user's: one in a buffer's [`IoBuf`]/[`IoBufMut`] method
//!   unwinds out of that request's first poll, and its slot goes back (the driver loses
//!   nothing); one in a waker's `wake` or `drop`, or in the `Drop` of a buffer abandoned in
//!   flight, run by the driving turn, is caught there (after the panic hook has reported it)
//!   and swallowed, so the driving thread or task goes on driving every other request. The
//!   same holds wherever the crate runs that code itself: the driving loops' wakers woken when
//!   a request queues or the driver shuts down (each under its own `catch_unwind`: one that
//!   panics never leaves another loop unwoken, and never unwinds into the future's poll or the
//!   last handle's drop, whose teardown is scheduled first), and the buffers a teardown frees
//!   (each on its own, so that two panicking `Drop`s cannot abort the process).
//! - With `panic = "abort"` none of this applies: there is nothing to catch, and a panic in any
//!   of that user code ends the process.
//! - [`Driver::new`] may block: when the kernel refuses a new context with `EAGAIN`
//!   (`fs.aio-max-nr`) while this process's dropped drivers still wait for their teardown, it
//!   waits (up to 5 s) for one of them to be destroyed and tries again (see
//!   [`Builder::build`]).
//!
//! # Buffers, and futures dropped in flight
//!
//! Reads and writes take their buffer by value and hand it back: `let (res, buf) =
//! file.read_at(buf, offset).await;`. Any type implementing [`IoBuf`] (writes) or [`IoBufMut`]
//! (reads) works: `Vec<u8>` (a read fills its capacity and sets its length), `Box<[u8]>`,
//! [`AlignedBuf`] for `O_DIRECT`, `&'static [u8]` for writes. These are `unsafe` traits: the
//! bytes must stay put when the value moves, as a `Vec`'s heap memory does.
//!
//! While a request is in flight its future owns the buffer, and nothing but the kernel touches
//! it. If the future is dropped then (a `select!` that lost, a task aborted, a runtime shut
//! down), what happens depends on where the request is:
//!
//! - not yet submitted: it leaves the queue and never reaches the kernel; the buffer is freed
//!   with the future;
//! - held by the kernel: the buffer moves into the request's slot (one small allocation, on
//!   this path only) and is freed only after the request's completion has been reaped. A read
//!   or write cannot be cancelled (the kernel refuses: only polls can be), so it runs to the
//!   end; a **poll is cancelled** (`io_cancel`) by the next turn;
//! - when the driver itself goes (its last clone and [`File`] dropped), it shuts down
//!   ([`Driver::shutdown`]): a teardown thread (`linux-aio-destroy`, a few at most however many
//!   drivers go) drives it until the kernel holds nothing, then destroys the context
//!   (`io_destroy`), and frees the buffers it reaped right after: **never before the kernel is
//!   done with them, never leaked**. No executor thread waits for `io_destroy` (~35 ms). A
//!   driver whose driving turn is stuck (a stream read inside `io_submit`, see [`File`]) is
//!   tried again later, never waited for, so it holds no teardown thread from other drivers.
//!   Futures keep only the table alive, not the context: one leaked with `mem::forget` leaks
//!   its buffer and slot, never the kernel context.
//!
//! `Debug` of an [`Op`] never shows its buffer (the kernel may be writing it).
//!
//! The slot also keeps the request's descriptor open, so its number cannot be reused by
//! another file before the kernel has seen the request.
//!
//! # `O_DIRECT` alignment
//!
//! `O_DIRECT` wants buffer addresses, file offsets and lengths aligned as the filesystem and
//! device require. [`dio_alignment`] asks the kernel (`statx` with `STATX_DIOALIGN`, Linux 6.1)
//! and falls back to 4096 for both where it cannot say; [`AlignedBuf::new`] is 4096-aligned,
//! [`AlignedBuf::with_alignment`] takes any power of two. A misaligned request completes with
//! `EINVAL`.
//!
//! # What is asynchronous
//!
//! In the kernel, `O_DIRECT` file I/O and polls are asynchronous, and syncs run on a kernel
//! worker. Buffered file reads and writes are performed inside `io_submit`, on the thread
//! running the driving turn: page-cache hits cost about as much as `pread`, but a miss blocks
//! that thread for the device read (as `tokio::fs` would block a blocking-pool thread). On
//! filesystems known to work that way (ext2/3/4, XFS, Btrfs, tmpfs, F2FS, and block devices)
//! such requests go without `IOCB_FLAG_RESFD`, which saves the kernel's eventfd signal
//! (~150 ns a request); the turn reaps them right after its `io_submit`, and should one
//! complete later after all, it is still reaped and every later request is signalled. To keep
//! a cache miss off the driving thread, read with `.rw_flags(RwFlags::NOWAIT)`: the kernel then
//! answers `EAGAIN` instead of reading the device, and the caller can fall back (to `O_DIRECT`,
//! or a blocking pool). `io_submit` of `O_DIRECT` requests can block too, briefly, when the
//! device's queue is full (a kernel limit).
//!
//! Streams (pipes, sockets, terminals) can block inside `io_submit`, and Linux 6.1 refuses
//! `RWF_NOWAIT` on pipes and sockets: this crate offers [`File::poll`] for them (readiness,
//! cancelled on drop), and leaves the transfer to a non-blocking `read`/`write` of your own (or
//! to tokio's own types). A read or write on anything but a regular file, block device or
//! directory whose descriptor is in blocking mode when the request is made, or when the
//! driving turn is about to submit it, completes with `EOPNOTSUPP` (it never reaches the
//! kernel, so it cannot stop the driving thread); only an `O_NONBLOCK` cleared by another
//! thread or process in the microseconds between that last check and `io_submit` escapes it
//! (see [`File`]). In non-blocking mode the kernel answers `EAGAIN` when the stream is not
//! ready.
//!
//! Requests a filesystem completes after `io_submit` although the driver took them for
//! synchronous (see [`Turn::unsignalled`]) are looked for after growing sleeps (50 µs to 4 ms),
//! never in a busy loop.
//!
//! # fork
//!
//! A forked child's copy of a driver never takes its parent's completions (the core crate
//! refuses it the ring): every request in the child, new or inherited, completes with
//! `EINVAL` at its next poll (no driving loop needed, and no lock taken that a thread of the
//! parent may have held at the fork), and the child's driving loop ends at once without
//! resetting the eventfd it shares with the parent. The parent is unaffected. A driver created
//! in the child is the child's own, and works; the child makes its own teardown pool (it
//! inherits the parent's bookkeeping, not its threads), so such a driver, dropped, is torn down
//! in the child.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod buf;
mod driver;
mod file;
mod op;
mod table;
mod thread;
#[cfg(feature = "tokio")]
mod tokio;
mod turn;

pub use buf::{AlignedBuf, IoBuf, IoBufMut};
pub use driver::{Builder, Driver, Stats, Turn, DEFAULT_CAPACITY, MAX_SLOTS};
pub use file::{dio_alignment, DioAlignment, File};
pub use linux_aio::RwFlags;
pub use op::{Op, Operation, PollOp, Read, ReadV, Sync, Write, WriteV};
pub use rustix::event::PollFlags;
