//! `libposixaio.so.1`: POSIX asynchronous I/O for C programs on Linux kernel AIO.
//!
//! `aio_read`, `aio_write`, `aio_fsync`, `aio_error`, `aio_return`, `aio_suspend`,
//! `aio_cancel` and `lio_listio` (and glibc's `*64` names), binary-compatible with glibc's and
//! musl's `struct aiocb` and `struct sigevent`: a program built against `<aio.h>` links against
//! this library (`-lposixaio`) or runs with it preloaded (`LD_PRELOAD`), unchanged. Where
//! glibc and musl run every request on a thread of their own that calls `pread`/`pwrite` (so
//! a request in progress can never be cancelled, and every request costs a thread hand-off),
//! here requests go to the kernel, with `linux_aio::posix`'s rules:
//!
//! - `kernel`: what each request becomes (files straight to the kernel; streams through
//!   `RWF_NOWAIT` transfers and POLLs for readiness, so that no call blocks), and
//!   `aio_cancel`'s rules;
//! - `engine`: the process-wide table of requests, and `fork`;
//! - `wait`: who takes the kernel's completions, and how threads wait for them;
//! - `notify`: `SIGEV_SIGNAL`, `SIGEV_THREAD`, `SIGEV_THREAD_ID`, and the one service thread;
//! - `queue`: queueing a request; `sync`: synchronous execution without kernel AIO;
//! - `calls`: the exported functions and what they answer where POSIX leaves it open;
//! - `abi`, `cb`: the C layouts, and what the library keeps in the caller's control block;
//! - `lock`: a futex lock that knows its holder (signal handlers never deadlock on it).
//!
//! Nothing allocates: the table has room for 1024 requests in progress (`EAGAIN` beyond).
//!
//! Panics. Nothing here is meant to panic. Built with `panic = "abort"` (the `capi` profile)
//! the crate is `no_std` all through; with the workspace's default profiles std is linked for
//! its panic runtime only, and every entry point is `extern "C"`, so a panic aborts there.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(panic = "unwind")]
extern crate std;

pub mod abi;
mod calls;
mod cb;
mod engine;
mod kernel;
mod lock;
mod notify;
mod process;
mod queue;
mod sync;
mod wait;

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort() takes no arguments and ends the process.
    unsafe { libc::abort() }
}

/// As in `capi/src/lib.rs`: the precompiled `core` names `rust_eh_personality`, which only std
/// defines; a `panic = "abort"` build never calls it, so a weak, hidden stand-in does.
#[cfg(panic = "abort")]
mod personality {
    extern "C" fn never_called() {}

    core::arch::global_asm!(
        ".weak rust_eh_personality",
        ".hidden rust_eh_personality",
        ".set rust_eh_personality, {f}",
        f = sym never_called,
    );
}
