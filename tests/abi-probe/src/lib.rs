//! The table probe.c exports: the C compiler's values for the kernel ABI that linux-aio declares,
//! each named by its C expression (`sizeof(struct iocb)`, `__NR_io_setup`, ...).
//! tests/layout.rs compares them with linux-aio's Rust declarations.

use std::ffi::{c_char, c_longlong, CStr};

#[repr(C)]
struct Entry {
    name: *const c_char,
    value: c_longlong,
}

extern "C" {
    /// Terminated by an entry whose `name` is null; its length is known only to C.
    static abi_probe_table: [Entry; 0];
}

/// Every entry of the C table, in order.
pub fn c_table() -> Vec<(String, i64)> {
    let mut out = Vec::new();
    // SAFETY: probe.c defines the table as a static array ending with a null name.
    unsafe {
        let mut entry = (&raw const abi_probe_table).cast::<Entry>();
        while !(*entry).name.is_null() {
            let name = CStr::from_ptr((*entry).name).to_string_lossy().into_owned();
            out.push((name, (*entry).value));
            entry = entry.add(1);
        }
    }
    out
}
