//! `libaio.so.1` and `libaio.a`, built from linux-aio: a drop-in for libaio 0.3.113 as Debian
//! ships it (the soname, the symbol versions `LIBAIO_0.1`, `LIBAIO_0.4` and `LIBAIO_0.5` with
//! the old 0.1 entry points, the structures of `libaio.h`), making every system call through
//! linux-aio's own entry and never through libc's `syscall()`.
//!
//! - `libaio`: the entry points and their semantics (negated errno, `errno` untouched,
//!   completions reaped from the ring in user space when they are there).
//! - `contexts`: the contexts this library created, whose rings it may read, and how threads
//!   and `fork` share that reading.
//! - `export`: how each entry point gets its versioned symbol.
//!
//! Panics. Nothing here is meant to panic, and nothing may unwind into C:
//! - built with `panic = "abort"` (see the README), the crate is `no_std` all through: its panic
//!   handler calls libc's `abort()`, and no part of Rust's std runtime is linked;
//! - built with the workspace's default profiles (`panic = "unwind"`), rustc requires a panic
//!   runtime, which only std provides, so std is linked for that alone. Every entry point is
//!   `extern "C"`, so a panic aborts at the boundary instead of unwinding. std's runtime
//!   brings imports of its own (libc's `syscall` among them) that this library never calls.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(panic = "unwind")]
extern crate std;

mod contexts;
mod export;
mod libaio;

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    #[link(name = "c")]
    extern "C" {
        fn abort() -> !;
    }
    // SAFETY: abort() takes no arguments and ends the process.
    unsafe { abort() }
}

/// The precompiled `core` was built to unwind, and its unwind tables name the personality
/// routine `rust_eh_personality`, which only std defines; left undefined, the dynamic loader
/// refuses the library. Nothing unwinds in a `panic = "abort"` build, so a routine that is never
/// called does: weak, so that a real one wins when `libaio.a` is linked next to Rust code that has
/// std, and hidden, so that `libaio.so.1` does not export it.
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
