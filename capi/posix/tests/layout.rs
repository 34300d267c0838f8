//! Compares libposixaio's Rust declarations (`posixaio::abi`) with the C compiler's view of the
//! target's `<aio.h>` and `<signal.h>` (probe/probe.c): every size, alignment, field offset
//! and constant the library relies on, for glibc, and for musl where build.rs could compile
//! the probe with musl-gcc. Run on the host and, for the other architectures, under qemu-user
//! (each with Debian's cross glibc headers).

#[path = "../../../tests/support/runner.rs"]
mod runner;

use core::mem::{align_of, offset_of, size_of};
use std::ffi::{c_char, c_longlong, CStr};

use posixaio::abi::{self, aiocb, sigevent, siginfo, sigval};
use runner::{Outcome, Passed};

#[repr(C)]
struct Entry {
    name: *const c_char,
    value: c_longlong,
}

extern "C" {
    static posix_probe_glibc: [Entry; 0];
    #[cfg(posix_probe_musl)]
    static posix_probe_musl: [Entry; 0];
}

/// A C table, up to its terminating `{ 0, 0 }` entry.
fn read(table: *const Entry) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for i in 0.. {
        // SAFETY: probe.c's table ends with a null name; every name is a C string literal.
        let e = unsafe { &*table.add(i) };
        if e.name.is_null() {
            break;
        }
        // SAFETY: as above.
        let name = unsafe { CStr::from_ptr(e.name) }
            .to_string_lossy()
            .into_owned();
        out.push((name, e.value));
    }
    out
}

/// Whether the non-64 calls read all of `aio_offset` (not on 32-bit glibc).
const WIDE: bool = cfg!(any(target_pointer_width = "64", not(target_env = "gnu")));

/// The Rust value of every entry, named as probe.c names it.
fn rust(glibc: bool) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = Vec::new();
    let mut put = |n: &str, x: usize| v.push((n.to_string(), x as i64));
    put("sizeof(struct aiocb)", size_of::<aiocb>());
    put("_Alignof(struct aiocb)", align_of::<aiocb>());
    if glibc {
        // The same Rust type serves struct aiocb64, whose 64-bit aio_offset may align it more
        // (8 on 32-bit arm): reading through a less aligned type is sound, so this is what
        // C must say.
        put("sizeof(struct aiocb64)", size_of::<aiocb>());
        put(
            "_Alignof(struct aiocb64)",
            align_of::<aiocb>().max(align_of::<i64>()),
        );
    }
    let f = |name: &str, at: usize| (format!("offsetof(struct aiocb, {name})"), at as i64);
    v.extend([
        f("aio_fildes", offset_of!(aiocb, aio_fildes)),
        f("aio_lio_opcode", offset_of!(aiocb, aio_lio_opcode)),
        f("aio_reqprio", offset_of!(aiocb, aio_reqprio)),
        f("aio_buf", offset_of!(aiocb, aio_buf)),
        f("aio_nbytes", offset_of!(aiocb, aio_nbytes)),
        f("aio_sigevent", offset_of!(aiocb, aio_sigevent)),
        f("PRIVATE0", offset_of!(aiocb, __private0)),
        f("PRIVATE1", offset_of!(aiocb, __private1)),
        f("ERR", offset_of!(aiocb, __error_code)),
        f("RET", offset_of!(aiocb, __return_value)),
        f("aio_offset", offset_of!(aiocb, aio_offset)),
        f("RESERVED", offset_of!(aiocb, __reserved)),
    ]);
    let offset_size = if WIDE { 8 } else { 4 };
    v.push((
        "sizeof(((struct aiocb *)0)->aio_offset)".into(),
        offset_size,
    ));
    if glibc {
        let g = |name: &str, at: usize| (format!("offsetof(struct aiocb64, {name})"), at as i64);
        v.extend([
            g("aio_fildes", offset_of!(aiocb, aio_fildes)),
            g("aio_buf", offset_of!(aiocb, aio_buf)),
            g("aio_nbytes", offset_of!(aiocb, aio_nbytes)),
            g("aio_sigevent", offset_of!(aiocb, aio_sigevent)),
            g("__error_code", offset_of!(aiocb, __error_code)),
            g("__return_value", offset_of!(aiocb, __return_value)),
            g("aio_offset", offset_of!(aiocb, aio_offset)),
            g("__glibc_reserved", offset_of!(aiocb, __reserved)),
        ]);
        v.push(("sizeof(((struct aiocb64 *)0)->aio_offset)".into(), 8));
        v.push((
            "sizeof(((struct aiocb *)0)->__glibc_reserved)".into(),
            size_of::<[u32; 8]>() as i64,
        ));
    }
    let un = offset_of!(sigevent, sigev_un);
    let s = |name: &str, at: usize| (format!("offsetof(struct sigevent, {name})"), at as i64);
    v.extend([
        (
            "sizeof(struct sigevent)".into(),
            size_of::<sigevent>() as i64,
        ),
        (
            "_Alignof(struct sigevent)".into(),
            align_of::<sigevent>() as i64,
        ),
        s("sigev_value", offset_of!(sigevent, sigev_value)),
        s("sigev_signo", offset_of!(sigevent, sigev_signo)),
        s("sigev_notify", offset_of!(sigevent, sigev_notify)),
        s(
            "sigev_notify_function",
            un + offset_of!(abi::sigev_thread, function),
        ),
        s(
            "sigev_notify_attributes",
            un + offset_of!(abi::sigev_thread, attribute),
        ),
        s("THREAD_ID", un),
        ("sizeof(union sigval)".into(), size_of::<sigval>() as i64),
        ("_Alignof(union sigval)".into(), align_of::<sigval>() as i64),
    ]);
    let i = |name: &str, at: usize| (format!("offsetof(siginfo_t, {name})"), at as i64);
    v.extend([
        ("sizeof(siginfo_t)".into(), size_of::<siginfo>() as i64),
        ("_Alignof(siginfo_t)".into(), align_of::<siginfo>() as i64),
        i("si_signo", offset_of!(siginfo, si_signo)),
        i("si_errno", offset_of!(siginfo, si_errno)),
        i("si_code", offset_of!(siginfo, si_code)),
        i("si_pid", offset_of!(siginfo, si_pid)),
        i("si_uid", offset_of!(siginfo, si_uid)),
        i("si_value", offset_of!(siginfo, si_value)),
    ]);
    let c = |name: &str, x: i32| (name.to_string(), i64::from(x));
    v.extend([
        c("AIO_CANCELED", abi::AIO_CANCELED),
        c("AIO_NOTCANCELED", abi::AIO_NOTCANCELED),
        c("AIO_ALLDONE", abi::AIO_ALLDONE),
        c("LIO_READ", abi::LIO_READ),
        c("LIO_WRITE", abi::LIO_WRITE),
        c("LIO_NOP", abi::LIO_NOP),
        c("LIO_WAIT", abi::LIO_WAIT),
        c("LIO_NOWAIT", abi::LIO_NOWAIT),
        c("SIGEV_SIGNAL", abi::SIGEV_SIGNAL),
        c("SIGEV_NONE", abi::SIGEV_NONE),
        c("SIGEV_THREAD", abi::SIGEV_THREAD),
        c("SIGEV_THREAD_ID", abi::SIGEV_THREAD_ID),
        c("SI_ASYNCIO", abi::SI_ASYNCIO),
        c("_NSIG", abi::SIGNAL_MAX + 1),
        c("O_SYNC", abi::O_SYNC),
        c("O_DSYNC", abi::O_DSYNC),
        c("EINPROGRESS", posixaio::abi::EINPROGRESS),
        c("ECANCELED", posixaio::abi::ECANCELED),
    ]);
    v
}

/// Compares a C table with the Rust values: every entry on both sides, equal.
fn compare(c: Vec<(String, i64)>, glibc: bool) -> Outcome {
    let rust = rust(glibc);
    let mut problems = Vec::new();
    for (name, value) in &rust {
        match c.iter().find(|(n, _)| n == name) {
            Some((_, cv)) if cv == value => {}
            Some((_, cv)) => problems.push(format!("  {name}: C {cv}, Rust {value}")),
            None => problems.push(format!("  {name}: not in probe.c's table")),
        }
    }
    for (i, (name, value)) in c.iter().enumerate() {
        if c[..i].iter().any(|(n, _)| n == name) {
            problems.push(format!("  {name}: twice in probe.c's table"));
        }
        if !rust.iter().any(|(n, _)| n == name) {
            problems.push(format!("  {name} = {value}: checked by no Rust value"));
        }
    }
    println!("    {} entries compared", c.len());
    assert!(
        problems.is_empty(),
        "C and Rust differ:\n{}",
        problems.join("\n")
    );
    Passed
}

fn glibc() -> Outcome {
    // SAFETY: probe.c's table.
    compare(read(unsafe { posix_probe_glibc.as_ptr() }), true)
}

fn musl() -> Outcome {
    #[cfg(posix_probe_musl)]
    {
        // SAFETY: probe.c's table, compiled against musl's headers.
        compare(read(unsafe { posix_probe_musl.as_ptr() }), false)
    }
    #[cfg(not(posix_probe_musl))]
    runner::skipped(
        "probe.c was not compiled against musl's headers (only for x86_64-unknown-linux-gnu \
         with musl-gcc installed: Debian's musl-tools)",
    )
}

fn main() {
    runner::run(
        "layout",
        &[
            (
                "glibc: struct aiocb, aiocb64, sigevent, siginfo_t and constants",
                glibc,
            ),
            (
                "musl: struct aiocb, sigevent, siginfo_t and constants",
                musl,
            ),
        ],
    )
}
