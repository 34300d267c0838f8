//! Kernel ABI that the UAPI headers do not export, written by hand (fs/aio.c, kernel/signal.c).
//! The crate's `layout` module asserts every size and offset on each architecture.

use core::ffi::c_void;

/// `AIO_RING_MAGIC`: the value of [`aio_ring::magic`] in a ring user space may read.
pub const AIO_RING_MAGIC: u32 = 0xa10a_10a1;
/// `AIO_RING_COMPAT_FEATURES`.
pub const AIO_RING_COMPAT_FEATURES: u32 = 1;
/// `AIO_RING_INCOMPAT_FEATURES`: user-space reaping is valid only while the ring says 0.
pub const AIO_RING_INCOMPAT_FEATURES: u32 = 0;

/// The header of the completion ring the kernel maps at the address `io_setup` returns as the
/// context id (`struct aio_ring` in fs/aio.c). `nr` events of type `io_event` follow it, starting
/// `header_length` bytes after its start.
///
/// The mapping is ordinary writable user memory: every field may have been changed by a bug or
/// another thread. Readers treat `nr`, `head`, `tail` and `header_length` as untrusted.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct aio_ring {
    /// The kernel's index of this context (not the context id).
    pub id: u32,
    /// Number of `io_event` slots.
    pub nr: u32,
    /// Next event to consume, written by the consumer.
    pub head: u32,
    /// One past the last event produced, written by the kernel.
    pub tail: u32,
    /// [`AIO_RING_MAGIC`].
    pub magic: u32,
    /// [`AIO_RING_COMPAT_FEATURES`].
    pub compat_features: u32,
    /// [`AIO_RING_INCOMPAT_FEATURES`].
    pub incompat_features: u32,
    /// Size of this header in bytes (32); the events start here.
    pub header_length: u32,
}

/// The signal-mask argument of `io_pgetevents` (`struct __aio_sigset` in fs/aio.c).
#[repr(C)]
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub struct __aio_sigset {
    /// The kernel-format signal set to install while waiting, or null for none.
    pub sigmask: *const c_void,
    /// Must be [`KERNEL_SIGSET_SIZE`]; libc's `sizeof(sigset_t)` (128 in glibc) gives EINVAL.
    pub sigsetsize: usize,
}

/// Size in bytes of the kernel's `sigset_t` (`_NSIG / 8`): 64 signals on every supported
/// architecture.
pub const KERNEL_SIGSET_SIZE: usize = 8;
