//! Linux native asynchronous I/O for `#![no_std]` Rust.
//!
//! - [`Context`], [`Request`], [`Context::scope`]: the safe API (on Linux and Android; on the
//!   ENOSYS module every context creation fails with `ENOSYS`; other systems get `raw` alone). Completions are taken straight
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
// Where `unsafe` may appear is a lint, not a convention: nowhere, except in the modules below
// that say `allow(unsafe_code)`, each for one reason. Every unsafe operation there sits in its
// own `unsafe` block with a SAFETY argument, even inside an `unsafe fn` (whose contract is the
// caller's, not a licence for its body).
#![deny(
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

// The system calls themselves (inline asm), and the kernel's types.
#[allow(missing_docs)] // the kernel's own names, documented in the kernel's headers
#[allow(unsafe_code)]
pub mod raw;

// Heap memory with the alignment O_DIRECT needs (feature `alloc`).
#[cfg(all(feature = "alloc", any(target_os = "linux", target_os = "android")))]
#[allow(unsafe_code)]
mod aligned;
// Calls into `raw` (`unsafe fn`s, each with its contract) for one kernel context.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
mod context;
// The bytes an `IoSlice` names, and `IoSliceMut` arrays a scope can borrow.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
mod iovec;
// The fork marker: a page mapped and marked `MADV_WIPEONFORK`.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
mod owner;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub mod posix;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod request;
// Memory shared with the kernel: the completion ring.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
pub mod ring;
// Submits iocbs whose buffers the borrow checker has pinned for the scope (`submit_raw`), and
// keeps its slots in cells whose exclusive use it argues (single-threaded and shared scopes).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
mod scope;

#[cfg(all(feature = "alloc", any(target_os = "linux", target_os = "android")))]
pub use aligned::{AlignedBuf, DirectAlignment, FALLBACK_DIRECT_ALIGNMENT};
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use context::{Cancel, Context, Event, Reaper, SigSet, SubmitError, Submitter};
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use iovec::ReadVecs;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use request::{Buffer, IoPriority, IoPriorityClass, Request, RwFlags};
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use rustix::io::Errno;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use scope::{
    Completion, Completions, Rejected, Scope, ScopeReaper, ScopeSlots, ScopedCancel,
    SharedCompletions, SharedScope, Ticket,
};

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
