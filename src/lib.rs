//! Linux native asynchronous I/O for `#![no_std]` Rust.
//!
//! - [`Context`], [`Request`], [`Context::scope`]: the safe API (on `unix` targets; on the
//!   ENOSYS module every context creation fails with `ENOSYS`). Completions are taken straight
//!   from the kernel's ring when it is usable, with `io_getevents` as the fallback.
//! - [`raw`]: the six AIO system calls, `struct iocb`, `struct io_event`, the completion-ring
//!   header and the `IOCB_*`/`RWF_*` constants, per architecture, generated from the kernel's
//!   UAPI headers. On targets without an architecture module every call returns `-ENOSYS`.
//!
//! Supported architectures: x86_64, aarch64, riscv64, powerpc64le, 32-bit arm (EABI), 32-bit
//! x86 and s390x Linux. See the README for the layers, the architecture matrix, regeneration and
//! vendoring, and [`raw`] for how 32-bit targets get 64-bit timeouts.

#![no_std]
#![warn(missing_docs)]
// Every unsafe operation sits in its own `unsafe` block with a SAFETY argument, even inside an
// `unsafe fn` (whose contract is the caller's, not a licence for its body).
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[allow(missing_docs)] // the kernel's own names, documented in the kernel's headers
pub mod raw;

mod layout;

#[cfg(unix)]
mod context;
#[cfg(unix)]
pub mod posix;
#[cfg(unix)]
mod request;
#[cfg(unix)]
pub mod ring;
#[cfg(unix)]
mod scope;

#[cfg(unix)]
pub use context::{Cancel, Context, Event, Reaper, SigSet, SubmitError, Submitter};
#[cfg(unix)]
pub use request::{Buffer, IoPriority, IoPriorityClass, Request, RwFlags};
#[cfg(unix)]
pub use rustix::io::Errno;
#[cfg(unix)]
pub use scope::{Completion, Completions, Rejected, Scope, ScopedCancel, Ticket};

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
