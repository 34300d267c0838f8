//! 32-bit x86 (i686, i586): generated ABI (`abi.rs`) and the inline-asm syscall entry (`syscall.rs`).

#[allow(non_camel_case_types, non_upper_case_globals)]
mod abi;
mod syscall;

pub use abi::*;
pub use syscall::*;

/// The architecture module in use.
pub const ARCH: &str = "x86";
