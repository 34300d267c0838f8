//! Linux native asynchronous I/O for `#![no_std]` Rust.
//!
//! - [`raw`]: the six AIO system calls, `struct iocb`, `struct io_event`, the completion-ring
//!   header and the `IOCB_*`/`RWF_*` constants, per architecture, generated from the kernel's
//!   UAPI headers. On targets without an architecture module every call returns `-ENOSYS`.
//!
//! Supported architectures: x86_64, aarch64, riscv64 and powerpc64le Linux. See the README for
//! the layers, the architecture matrix, regeneration and vendoring.

#![no_std]

pub mod raw;

mod layout;
