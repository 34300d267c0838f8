//! The raw layer against a real kernel (the host, or a qemu-system guest), and the syscall entry
//! and ENOSYS path wherever AIO is missing (qemu-user, `CONFIG_AIO=n`, the ENOSYS module).
//!
//! Tests that need kernel AIO report SKIPPED with the reason when `io_setup` answers ENOSYS;
//! the entry tests report SKIPPED on targets that have no syscall entry (the ENOSYS module).

#[path = "support/runner.rs"]
mod runner;
#[path = "support/scratch.rs"]
mod scratch;

use core::ffi::c_long;
use core::ptr::{null, null_mut};

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use linux_aio::raw::{self, aio_context_t, io_event, iocb};
use runner::{skipped, Outcome, Passed};
use rustix::io::Errno;
use scratch::{eventfd, pattern, Scratch};

fn main() {
    runner::run(
        "kernel",
        &[
            ("entry_pipe_round_trip", entry_pipe_round_trip),
            ("entry_errno_decoding", entry_errno_decoding),
            ("entry_six_arguments", entry_six_arguments),
            (
                "entry_vector_code_around_syscalls",
                entry_vector_code_around_syscalls,
            ),
            ("entry_live_registers_survive", entry_live_registers_survive),
            ("enosys_reported_cleanly", enosys_reported_cleanly),
            ("setup_and_destroy", setup_and_destroy),
            ("setup_rejects_bad_arguments", setup_rejects_bad_arguments),
            ("pwrite_then_pread", pwrite_then_pread),
            ("pwritev_then_preadv", pwritev_then_preadv),
            ("fsync_and_fdsync", fsync_and_fdsync),
            ("poll_ready_eventfd", poll_ready_eventfd),
            (
                "pgetevents_without_and_with_mask",
                pgetevents_without_and_with_mask,
            ),
            (
                "pgetevents_kernel_sigset_size_only",
                pgetevents_kernel_sigset_size_only,
            ),
            ("cancel_pending_poll", cancel_pending_poll),
            (
                "cancel_completed_read_is_einval",
                cancel_completed_read_is_einval,
            ),
            ("bad_context_is_einval", bad_context_is_einval),
            ("getevents_bad_counts", getevents_bad_counts),
            ("submit_bad_fd_is_ebadf", submit_bad_fd_is_ebadf),
            ("submit_noop_is_einval", submit_noop_is_einval),
            (
                "submit_unknown_rwf_is_eopnotsupp",
                submit_unknown_rwf_is_eopnotsupp,
            ),
            ("submit_reserved2_is_einval", submit_reserved2_is_einval),
            ("submit_batch_partial_failure", submit_batch_partial_failure),
            ("bad_pointers_are_efault", bad_pointers_are_efault),
            #[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
            (
                "time64_call_reaches_the_kernel",
                time64_call_reaches_the_kernel,
            ),
            #[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
            (
                "timeouts_beyond_32_bits_do_not_wrap",
                timeouts_beyond_32_bits_do_not_wrap,
            ),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The raw layer's value for `e`: a negated errno.
fn neg(e: Errno) -> c_long {
    -(e.raw_os_error() as c_long)
}

/// Formats a raw return value for messages: `5`, or `-EINVAL`.
#[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets
fn show(r: c_long) -> String {
    if raw::is_error(r) {
        format!("-{:?}", Errno::from_raw_os_error(-r as i32))
    } else {
        r.to_string()
    }
}

fn has_entry() -> bool {
    raw::ARCH != "enosys"
}

/// True when the raw layer makes the 32-bit-timespec calls (arm and x86 before Linux 5.1).
fn time32_fallback_in_use() -> bool {
    #[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
    return raw::__time32_calls();
    #[cfg(not(any(linux_aio_arch = "arm", linux_aio_arch = "x86")))]
    false
}

/// A context that is destroyed when dropped (failing the test if io_destroy fails).
struct Ctx(aio_context_t);

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: the context is ours; nothing uses it after drop.
        let r = unsafe { raw::io_destroy(self.0) };
        if !std::thread::panicking() {
            assert_eq!(r, 0, "io_destroy: {}", show(r));
        }
    }
}

/// Creates a context, or says why the test cannot run.
fn context(nr: u32) -> Result<Ctx, Outcome> {
    let mut ctx: aio_context_t = 0;
    // SAFETY: ctx is a valid, zeroed aio_context_t.
    let r = unsafe { raw::io_setup(nr, &mut ctx) };
    if r == neg(Errno::NOSYS) {
        return Err(skipped(format!(
            "kernel AIO unavailable: io_setup gives ENOSYS (arch module {})",
            raw::ARCH
        )));
    }
    assert_eq!(r, 0, "io_setup({nr}): {}", show(r));
    assert_ne!(ctx, 0, "io_setup succeeded without a context id");
    Ok(Ctx(ctx))
}

macro_rules! need_aio {
    ($nr:expr) => {
        match context($nr) {
            Ok(c) => c,
            Err(why) => return why,
        }
    };
}

fn submit(ctx: &Ctx, cbs: &mut [&mut iocb]) -> c_long {
    let mut ptrs: Vec<*mut iocb> = cbs.iter_mut().map(|c| &mut **c as *mut iocb).collect();
    // SAFETY: every pointer is a live iocb; the buffers they name outlive the reaping that each
    // test does before returning.
    unsafe { raw::io_submit(ctx.0, ptrs.len() as c_long, ptrs.as_mut_ptr()) }
}

/// Reaps exactly `n` events within 5 s, failing (never hanging) otherwise.
fn reap(ctx: &Ctx, n: usize) -> Vec<io_event> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = vec![io_event::default(); n];
    let mut got = 0;
    while got < n {
        assert!(
            Instant::now() < deadline,
            "only {got} of {n} events within 5 s"
        );
        let mut ts = raw::__kernel_timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        // SAFETY: out[got..] is writable for n - got events; ts is a valid timespec.
        let r = unsafe {
            raw::io_getevents(
                ctx.0,
                1,
                (n - got) as c_long,
                out[got..].as_mut_ptr(),
                &mut ts,
            )
        };
        assert!(r >= 0, "io_getevents: {}", show(r));
        got += r as usize;
    }
    out
}

/// Asserts that nothing more arrives within `ms` milliseconds.
fn assert_no_event(ctx: &Ctx, ms: i64) {
    let mut ev = io_event::default();
    let mut ts = raw::__kernel_timespec {
        tv_sec: 0,
        tv_nsec: ms * 1_000_000,
    };
    // SAFETY: one writable event, valid timespec.
    let r = unsafe { raw::io_getevents(ctx.0, 1, 1, &mut ev, &mut ts) };
    assert_eq!(r, 0, "unexpected event {ev:?} ({})", show(r));
}

fn rw(op: u16, fd: u32, buf: *const u8, len: usize, offset: i64, data: u64) -> iocb {
    iocb {
        aio_data: data,
        aio_lio_opcode: op,
        aio_fildes: fd,
        aio_buf: buf as u64,
        aio_nbytes: len as u64,
        aio_offset: offset,
        ..Default::default()
    }
}

const POLLIN: u64 = 0x1;

fn poll(fd: u32, data: u64) -> iocb {
    iocb {
        aio_data: data,
        aio_lio_opcode: raw::IOCB_CMD_POLL,
        aio_fildes: fd,
        aio_buf: POLLIN,
        ..Default::default()
    }
}

/// A pointer into the never-mapped first page: the kernel must answer EFAULT for it.
fn wild<T>() -> *mut T {
    // `ptr::without_provenance_mut(16)`, which needs Rust 1.84.
    core::ptr::null_mut::<u8>().wrapping_add(16).cast()
}

// ---------------------------------------------------------------------------------------------
// The syscall entry and the ENOSYS path (these run under qemu-user too)

fn entry_pipe_round_trip() -> Outcome {
    if !has_entry() {
        return skipped("no syscall entry on this target (ENOSYS module)");
    }
    let mut fds = [0i32; 2];
    // SAFETY: fds is writable for two ints.
    let r = unsafe { raw::syscall2(raw::__NR_pipe2, fds.as_mut_ptr() as usize, 0) };
    assert_eq!(r, 0, "pipe2: {}", show(r));
    let msg = b"linux-aio entry";
    // SAFETY: msg is readable for its length; fds[1] is the pipe's write end.
    let w = unsafe {
        raw::syscall3(
            raw::__NR_write,
            fds[1] as usize,
            msg.as_ptr() as usize,
            msg.len(),
        )
    };
    assert_eq!(w, msg.len() as c_long, "write: {}", show(w));
    let mut back = [0u8; 32];
    // SAFETY: back is writable for its length.
    let n = unsafe {
        raw::syscall3(
            raw::__NR_read,
            fds[0] as usize,
            back.as_mut_ptr() as usize,
            back.len(),
        )
    };
    assert_eq!(n, msg.len() as c_long, "read: {}", show(n));
    assert_eq!(&back[..msg.len()], msg);
    for fd in fds {
        // SAFETY: closing descriptors this test owns.
        let c = unsafe { raw::syscall1(raw::__NR_close, fd as usize) };
        assert_eq!(c, 0, "close: {}", show(c));
    }
    Passed
}

fn entry_errno_decoding() -> Outcome {
    if !has_entry() {
        return skipped("no syscall entry on this target (ENOSYS module)");
    }
    // SAFETY: close(-1) touches nothing.
    let r = unsafe { raw::syscall1(raw::__NR_close, -1isize as usize) };
    assert_eq!(r, neg(Errno::BADF), "close(-1) gave {}", show(r));
    assert!(raw::is_error(r));
    let mut b = [0u8; 1];
    // SAFETY: read from an invalid descriptor touches nothing.
    let r = unsafe { raw::syscall3(raw::__NR_read, 1_000_000, b.as_mut_ptr() as usize, 1) };
    assert_eq!(r, neg(Errno::BADF), "read(1000000) gave {}", show(r));
    // EFAULT comes back as an error too (a kernel-checked bad pointer, not a crash).
    let mut fds = [0i32; 2];
    // SAFETY: fds is writable.
    assert_eq!(
        unsafe { raw::syscall2(raw::__NR_pipe2, fds.as_mut_ptr() as usize, 0) },
        0
    );
    // SAFETY: the kernel validates the user pointer 8 and reports EFAULT.
    let r = unsafe { raw::syscall3(raw::__NR_write, fds[1] as usize, 8, 1) };
    assert_eq!(
        r,
        neg(Errno::FAULT),
        "write from address 8 gave {}",
        show(r)
    );
    for fd in fds {
        // SAFETY: closing descriptors this test owns.
        unsafe { raw::syscall1(raw::__NR_close, fd as usize) };
    }
    Passed
}

/// Every argument register reaches the kernel, including 4 to 6, which no AIO call that
/// qemu-user emulates uses. Where the architecture has a six-argument `mmap` (or `mmap2`), that
/// is the call; s390x's `mmap` takes one pointer to its arguments, so there it is
/// `copy_file_range`, which uses all six too.
fn entry_six_arguments() -> Outcome {
    if !has_entry() {
        return skipped("no syscall entry on this target (ENOSYS module)");
    }
    six_arguments()
}

/// The six-argument `mmap`: the offset in bytes. On the 32-bit architectures `mmap` takes an
/// argument block (x86) or does not exist (arm EABI); `mmap2` takes six arguments with the
/// offset in 4096-byte units.
#[cfg(not(any(
    linux_aio_arch = "arm",
    linux_aio_arch = "x86",
    linux_aio_arch = "s390x"
)))]
const MMAP: (c_long, usize) = (raw::__NR_mmap, 1);
#[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
const MMAP: (c_long, usize) = (raw::__NR_mmap2, 4096);

/// `mmap` (or `mmap2`) of a file at a chosen address (argument 1, with `MAP_FIXED_NOREPLACE`),
/// two pages (2), readable (3), shared (4), from the file's descriptor (5) at its third page
/// (6). A lost or swapped register shows as another address, other bytes, or an error
/// (`EINVAL` without flags, `EBADF` without the descriptor).
#[cfg(not(linux_aio_arch = "s390x"))]
fn six_arguments() -> Outcome {
    let (nr, offset_unit) = MMAP;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let f = Scratch::new("mmap6");
    // Four pages, each its own bytes; the mapping takes pages 2 and 3. (Not page 1: with
    // arguments 4 and 6 swapped, the offset would be MAP_SHARED's 1 page, and the flags 1, i.e.
    // MAP_SHARED, and qemu-user truncates mmap2's offset to 32 bits: a page-1 mapping passed.)
    let data: Vec<u8> = (0..4 * page)
        .map(|i| ((i / page) as u8 + 1).wrapping_mul(37) ^ (i as u8))
        .collect();
    std::fs::write(&f.path, &data).unwrap();
    // A free range: reserve four pages, give them back, and map into the middle of the hole
    // (MAP_FIXED_NOREPLACE fails with EEXIST rather than replace anything another thread put
    // there in between).
    // SAFETY: an anonymous PROT_NONE reservation, unmapped at once; nothing refers to it.
    let hole = unsafe {
        let p = libc::mmap(
            null_mut(),
            4 * page,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(libc::munmap(p, 4 * page), 0);
        p as usize
    };
    let want = hole + page;
    let flags = libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE;
    // SAFETY: maps two pages of our scratch file into an address range nothing uses (or fails).
    let r = unsafe {
        raw::syscall6(
            nr,
            want,
            2 * page,
            libc::PROT_READ as usize,
            flags as usize,
            f.file.as_raw_fd() as usize,
            2 * page / offset_unit,
        )
    };
    assert!(!raw::is_error(r), "mmap: {}", show(r));
    assert_eq!(r as usize, want, "mmap ignored its address (argument 1)");
    // SAFETY: the kernel has just mapped 2 pages, readable, at `want`.
    let mapped = unsafe { std::slice::from_raw_parts(want as *const u8, 2 * page) };
    assert!(
        mapped == &data[2 * page..4 * page],
        "mmap mapped other bytes than the file's pages 2 and 3 (argument 6: offset)"
    );
    // SAFETY: unmapping the range mapped above; `mapped` is not used afterwards.
    let u = unsafe { raw::syscall2(raw::__NR_munmap, want, 2 * page) };
    assert_eq!(u, 0, "munmap: {}", show(u));
    Passed
}

/// `copy_file_range(fd_in (1), &off_in (2), fd_out (3), &off_out (4), len (5), flags (6))`
/// between two scratch files: the bytes must land exactly where the offsets say, the kernel
/// must advance both offsets through their pointers and leave the file positions alone, and
/// the same call with an unknown flag must fail with `EINVAL` (argument 6 reaches the kernel).
#[cfg(linux_aio_arch = "s390x")]
fn six_arguments() -> Outcome {
    let src = Scratch::new("cfr-in");
    let dst = Scratch::new("cfr-out");
    let data = pattern(3 * 4096, 23);
    std::fs::write(&src.path, &data).unwrap();
    std::fs::write(&dst.path, vec![0xee; 4096]).unwrap();
    let (mut off_in, mut off_out, len) = (1234i64, 777i64, 3000usize);
    let call = |off_in: &mut i64, off_out: &mut i64, flags: usize| {
        // SAFETY: both offsets are live i64s (loff_t); the descriptors are the scratch files.
        unsafe {
            raw::syscall6(
                raw::__NR_copy_file_range,
                src.file.as_raw_fd() as usize,
                off_in as *mut i64 as usize,
                dst.file.as_raw_fd() as usize,
                off_out as *mut i64 as usize,
                len,
                flags,
            )
        }
    };
    let r = call(&mut off_in, &mut off_out, 0);
    assert_eq!(r, len as c_long, "copy_file_range: {}", show(r));
    assert_eq!(
        (off_in, off_out),
        (1234 + len as i64, 777 + len as i64),
        "the kernel did not advance the offsets (arguments 2 and 4)"
    );
    let out = std::fs::read(&dst.path).unwrap();
    assert_eq!(out.len(), 4096);
    assert!(
        out[777..777 + len] == data[1234..1234 + len],
        "other bytes, or at another place (arguments 1 to 5)"
    );
    assert!(out[..777]
        .iter()
        .chain(&out[777 + len..])
        .all(|&b| b == 0xee));
    for (name, file) in [("in", &src.file), ("out", &dst.file)] {
        let pos = rustix::fs::seek(file, rustix::fs::SeekFrom::Current(0)).unwrap();
        assert_eq!(
            pos, 0,
            "the {name} file's position moved: offset pointer lost"
        );
    }
    let r = call(&mut 0, &mut 0, 1);
    assert_eq!(
        r,
        neg(Errno::INVAL),
        "an unknown flag gave {} (argument 6)",
        show(r)
    );
    Passed
}

/// Vector code on both sides of a system call. On riscv64 built with the V extension
/// (`-C target-feature=+v`), Linux leaves vl and vtype unspecified after `ecall`: an entry that
/// claimed `preserves_flags` let the compiler skip the `vsetvli` after the call, and the next
/// vector instruction then faults (the kernel marks vtype invalid) or computes garbage. `cargo
/// xtask test` builds this with +v, runs it under qemu-user with a V-capable CPU, and checks in
/// the disassembly that a `vsetvli` follows every `ecall` here. Elsewhere it is plain arithmetic.
fn entry_vector_code_around_syscalls() -> Outcome {
    if !has_entry() {
        return skipped("no syscall entry on this target (ENOSYS module)");
    }
    let a: [u32; 16] = core::array::from_fn(|i| i as u32 * 0x0101_0101);
    let b: [u32; 16] = core::array::from_fn(|i| 0xdead_0000 ^ i as u32);
    for round in 0..64u32 {
        let (x, r) = vector_work(&a, &b, round);
        assert_eq!(r, neg(Errno::BADF), "write(-1, ..) through the entry");
        for i in 0..16 {
            let mid = a[i].wrapping_mul(3).wrapping_add(b[i]).wrapping_add(round);
            assert_eq!(x[i], mid ^ b[i].rotate_left(5), "lane {i}, round {round}");
        }
    }
    Passed
}

/// Two vectorisable halves with a system call between them (the `vsetvli` check in `cargo xtask
/// test` looks for this function's name).
#[inline(never)]
#[no_mangle]
fn vector_work(a: &[u32; 16], b: &[u32; 16], round: u32) -> ([u32; 16], c_long) {
    let mut x = [0u32; 16];
    for i in 0..16 {
        x[i] = a[i].wrapping_mul(3).wrapping_add(b[i]).wrapping_add(round);
    }
    // write(-1, x, 64) fails with EBADF; handing it `x` makes the first half finish before the
    // call, so vector state is live on both sides of it.
    // SAFETY: `x` is readable for its 64 bytes; the kernel rejects the descriptor first.
    let r = unsafe { raw::syscall3(raw::__NR_write, usize::MAX, x.as_ptr() as usize, 64) };
    for i in 0..16 {
        x[i] ^= b[i].rotate_left(5);
    }
    (x, r)
}

/// Values live in registers across system calls come back intact. In an optimized build the
/// register allocator spreads the sixteen values below over every register the asm leaves it,
/// including the ones the entry borrows behind the compiler's back (r7 on arm, esi and ebp on
/// x86): an entry that failed to restore one shows here as a wrong value. `cargo xtask test`
/// runs the kernel suite with `--release` on those architectures for this; in a debug build the
/// values live on the stack and the test proves less.
fn entry_live_registers_survive() -> Outcome {
    if !has_entry() {
        return skipped("no syscall entry on this target (ENOSYS module)");
    }
    for round in 0..32u32 {
        let (before, after) = live_registers(round);
        assert_eq!(
            before, after,
            "round {round}: a register changed across the syscalls"
        );
    }
    Passed
}

/// Sixteen values from memory, live across one system call of each arity 1 to 6 (all
/// `close(-1)`-like failures), combined before and after.
#[inline(never)]
fn live_registers(seed: u32) -> (u32, u32) {
    let src: [u32; 16] = core::hint::black_box(core::array::from_fn(|i| {
        seed.wrapping_mul(0x9e37_79b9) ^ i as u32
    }));
    let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = src;
    let mix = |v: [u32; 16]| {
        v.iter().enumerate().fold(0u32, |acc, (i, x)| {
            acc.rotate_left(5) ^ x.wrapping_mul(i as u32 | 1)
        })
    };
    // From an opaque copy: the compiler cannot reuse it as `after`, so a..p must survive the
    // calls themselves.
    let before = mix(core::hint::black_box(src));
    let bad = usize::MAX; // fd -1: every call below fails with EBADF and touches nothing
                          // SAFETY: system calls on an invalid descriptor, which the kernel rejects first.
    let r = unsafe {
        raw::syscall1(raw::__NR_close, bad)
            | raw::syscall2(raw::__NR_close, bad, 0)
            | raw::syscall3(raw::__NR_write, bad, 0, 0)
            | raw::syscall4(raw::__NR_close, bad, 0, 0, 0)
            | raw::syscall5(raw::__NR_close, bad, 0, 0, 0, 0)
            | raw::syscall6(raw::__NR_close, bad, 0, 0, 0, 0, 0)
    };
    assert_eq!(r, neg(Errno::BADF), "close(-1) through every arity");
    let after = mix([a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p]);
    (before, core::hint::black_box(after))
}

fn enosys_reported_cleanly() -> Outcome {
    let mut ctx: aio_context_t = 0;
    // SAFETY: ctx is valid and zero.
    let r = unsafe { raw::io_setup(8, &mut ctx) };
    if r == 0 {
        // SAFETY: the context was just created.
        assert_eq!(unsafe { raw::io_destroy(ctx) }, 0);
        return skipped(
            "this kernel has AIO; the ENOSYS path runs under qemu-user and on ENOSYS targets",
        );
    }
    let enosys = neg(Errno::NOSYS);
    assert_eq!(r, enosys, "io_setup gave {}", show(r));
    assert_eq!(ctx, 0, "io_setup failed but wrote a context id");
    let mut cb = iocb::default();
    let mut p = &mut cb as *mut iocb;
    let mut ev = [io_event::default(); 1];
    let sig = raw::__aio_sigset {
        sigmask: null(),
        sigsetsize: raw::KERNEL_SIGSET_SIZE,
    };
    // SAFETY: every pointer is valid; with ENOSYS nothing is touched at all.
    unsafe {
        assert_eq!(raw::io_submit(1, 1, &mut p), enosys);
        assert_eq!(raw::io_cancel(1, &mut cb, ev.as_mut_ptr()), enosys);
        assert_eq!(
            raw::io_getevents(1, 0, 1, ev.as_mut_ptr(), null_mut()),
            enosys
        );
        assert_eq!(
            raw::io_pgetevents(1, 0, 1, ev.as_mut_ptr(), null_mut(), &sig),
            enosys
        );
        assert_eq!(raw::io_destroy(1), enosys);
    }
    // On arm and x86 the ENOSYS came from io_pgetevents_time64 first, then from the old call;
    // the raw layer remembers the first answer and asks only the old call from then on.
    #[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
    {
        assert!(
            raw::__time32_calls(),
            "ENOSYS from io_pgetevents_time64 was not remembered"
        );
        raw::__force_time32_calls(false);
    }
    Passed
}

// ---------------------------------------------------------------------------------------------
// Contexts

fn setup_and_destroy() -> Outcome {
    let ctx = need_aio!(16);
    let id = ctx.0;
    drop(ctx);
    // SAFETY: destroying an id that no longer exists touches no memory.
    let again = unsafe { raw::io_destroy(id) };
    assert_eq!(
        again,
        neg(Errno::INVAL),
        "second io_destroy gave {}",
        show(again)
    );
    Passed
}

fn setup_rejects_bad_arguments() -> Outcome {
    let _probe = need_aio!(1);
    let mut ctx: aio_context_t = 0;
    // SAFETY: ctx is valid.
    let r = unsafe { raw::io_setup(0, &mut ctx) };
    assert_eq!(r, neg(Errno::INVAL), "io_setup(0) gave {}", show(r));
    let mut ctx: aio_context_t = 12345;
    // SAFETY: ctx is valid (and non-zero, which the kernel rejects).
    let r = unsafe { raw::io_setup(4, &mut ctx) };
    assert_eq!(
        r,
        neg(Errno::INVAL),
        "io_setup with *ctxp != 0 gave {}",
        show(r)
    );
    assert_eq!(ctx, 12345, "rejected io_setup changed *ctxp");
    // A request far beyond fs.aio-max-nr.
    let mut ctx: aio_context_t = 0;
    // SAFETY: ctx is valid.
    let r = unsafe { raw::io_setup(u32::MAX, &mut ctx) };
    assert!(
        r == neg(Errno::AGAIN) || r == neg(Errno::INVAL),
        "io_setup(u32::MAX) gave {}",
        show(r)
    );
    Passed
}

// ---------------------------------------------------------------------------------------------
// Every opcode, data checked byte for byte

fn pwrite_then_pread() -> Outcome {
    let ctx = need_aio!(8);
    let f = Scratch::new("rw");
    let out = pattern(8192, 7);
    let mut w = rw(
        raw::IOCB_CMD_PWRITE,
        f.fd(),
        out.as_ptr(),
        out.len(),
        4096,
        11,
    );
    assert_eq!(submit(&ctx, &mut [&mut w]), 1);
    let ev = reap(&ctx, 1)[0];
    assert_eq!(
        (ev.data, ev.obj, ev.res, ev.res2),
        (11, &w as *const iocb as u64, 8192, 0)
    );

    let mut back = vec![0u8; 8192];
    let mut r = rw(
        raw::IOCB_CMD_PREAD,
        f.fd(),
        back.as_mut_ptr(),
        back.len(),
        4096,
        12,
    );
    assert_eq!(submit(&ctx, &mut [&mut r]), 1);
    let ev = reap(&ctx, 1)[0];
    assert_eq!((ev.data, ev.res), (12, 8192));
    assert!(back == out, "read back differs from what was written");
    // Reading past the end gives a short (zero) read, not an error.
    let mut past = rw(
        raw::IOCB_CMD_PREAD,
        f.fd(),
        back.as_mut_ptr(),
        16,
        1 << 20,
        13,
    );
    assert_eq!(submit(&ctx, &mut [&mut past]), 1);
    assert_eq!(reap(&ctx, 1)[0].res, 0);
    Passed
}

#[repr(C)]
struct Iovec {
    base: *mut u8,
    len: usize,
}

fn pwritev_then_preadv() -> Outcome {
    let ctx = need_aio!(8);
    let f = Scratch::new("rwv");
    let mut a = pattern(1000, 1);
    let mut b = pattern(3000, 2);
    let mut c = pattern(96, 3);
    let iov = [
        Iovec {
            base: a.as_mut_ptr(),
            len: a.len(),
        },
        Iovec {
            base: b.as_mut_ptr(),
            len: b.len(),
        },
        Iovec {
            base: c.as_mut_ptr(),
            len: c.len(),
        },
    ];
    let mut w = rw(
        raw::IOCB_CMD_PWRITEV,
        f.fd(),
        iov.as_ptr().cast(),
        iov.len(),
        100,
        21,
    );
    assert_eq!(submit(&ctx, &mut [&mut w]), 1);
    let ev = reap(&ctx, 1)[0];
    assert_eq!((ev.data, ev.res), (21, 4096), "pwritev: res {}", ev.res);

    let mut x = vec![0u8; 4000];
    let mut y = vec![0u8; 96];
    let iov = [
        Iovec {
            base: x.as_mut_ptr(),
            len: x.len(),
        },
        Iovec {
            base: y.as_mut_ptr(),
            len: y.len(),
        },
    ];
    let mut r = rw(
        raw::IOCB_CMD_PREADV,
        f.fd(),
        iov.as_ptr().cast(),
        iov.len(),
        100,
        22,
    );
    assert_eq!(submit(&ctx, &mut [&mut r]), 1);
    let ev = reap(&ctx, 1)[0];
    assert_eq!((ev.data, ev.res), (22, 4096));
    let written: Vec<u8> = [a, b, c].concat();
    let read: Vec<u8> = [x, y].concat();
    assert!(read == written, "preadv data differs from pwritev data");
    // And the file itself holds the bytes at offset 100.
    let on_disk = std::fs::read(&f.path).unwrap();
    assert!(on_disk[100..] == written[..], "file contents differ");
    Passed
}

fn fsync_and_fdsync() -> Outcome {
    let ctx = need_aio!(8);
    let f = Scratch::new("sync");
    let data = pattern(512, 9);
    let mut w = rw(
        raw::IOCB_CMD_PWRITE,
        f.fd(),
        data.as_ptr(),
        data.len(),
        0,
        1,
    );
    assert_eq!(submit(&ctx, &mut [&mut w]), 1);
    assert_eq!(reap(&ctx, 1)[0].res, 512);
    let mut fs = iocb {
        aio_data: 2,
        aio_lio_opcode: raw::IOCB_CMD_FSYNC,
        aio_fildes: f.fd(),
        ..Default::default()
    };
    let mut fd = iocb {
        aio_data: 3,
        aio_lio_opcode: raw::IOCB_CMD_FDSYNC,
        aio_fildes: f.fd(),
        ..Default::default()
    };
    assert_eq!(submit(&ctx, &mut [&mut fs, &mut fd]), 2);
    let mut evs = reap(&ctx, 2);
    evs.sort_by_key(|e| e.data);
    assert_eq!(
        (evs[0].data, evs[0].res, evs[1].data, evs[1].res),
        (2, 0, 3, 0)
    );
    // FSYNC with a non-zero length is rejected at submit.
    let mut bad = iocb {
        aio_nbytes: 1,
        ..fs
    };
    assert_eq!(submit(&ctx, &mut [&mut bad]), neg(Errno::INVAL));
    Passed
}

fn poll_ready_eventfd() -> Outcome {
    let ctx = need_aio!(8);
    let efd = eventfd();
    rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
    let mut p = poll(efd.as_raw_fd() as u32, 0xfeed);
    let r = submit(&ctx, &mut [&mut p]);
    if r == neg(Errno::INVAL) {
        return skipped("IOCB_CMD_POLL rejected: kernel older than 4.19");
    }
    assert_eq!(r, 1, "submit poll: {}", show(r));
    let ev = reap(&ctx, 1)[0];
    assert_eq!(ev.data, 0xfeed);
    assert_eq!(ev.obj, &p as *const iocb as u64);
    assert!(
        ev.res as u64 & POLLIN != 0,
        "poll res {:#x} lacks POLLIN",
        ev.res
    );
    Passed
}

fn pgetevents_without_and_with_mask() -> Outcome {
    let ctx = need_aio!(8);
    let f = Scratch::new("pget");
    let data = pattern(64, 4);
    let mut ev = [io_event::default(); 2];
    let mut zero = raw::__kernel_timespec::default();
    // Nothing in flight, zero timeout: 0 events, no mask.
    // SAFETY: ev writable for 2; zero is a valid timespec; usig null.
    let r = unsafe { raw::io_pgetevents(ctx.0, 0, 2, ev.as_mut_ptr(), &mut zero, null()) };
    if r == neg(Errno::NOSYS) {
        return skipped("io_pgetevents unavailable: kernel older than 4.18");
    }
    assert_eq!(r, 0, "io_pgetevents without mask: {}", show(r));

    let mut w = rw(
        raw::IOCB_CMD_PWRITE,
        f.fd(),
        data.as_ptr(),
        data.len(),
        0,
        5,
    );
    assert_eq!(submit(&ctx, &mut [&mut w]), 1);
    // With a mask that blocks SIGUSR1: bit (signal - 1) of the kernel's 64-signal set, which
    // is one u64 in native byte order on every architecture module (on arm and x86 the
    // kernel's two 32-bit words, low word first, are exactly a little-endian u64).
    let mask: u64 = 1 << (libc::SIGUSR1 - 1);
    let sig = raw::__aio_sigset {
        sigmask: (&mask as *const u64).cast(),
        sigsetsize: raw::KERNEL_SIGSET_SIZE,
    };
    let mut ts = raw::__kernel_timespec {
        tv_sec: 5,
        tv_nsec: 0,
    };
    // SAFETY: as above; sig points to a live 8-byte mask.
    let r = unsafe { raw::io_pgetevents(ctx.0, 1, 2, ev.as_mut_ptr(), &mut ts, &sig) };
    assert_eq!(r, 1, "io_pgetevents with mask: {}", show(r));
    assert_eq!((ev[0].data, ev[0].res), (5, 64));
    // A null mask pointer inside the sigset means "no change".
    let sig = raw::__aio_sigset {
        sigmask: null(),
        sigsetsize: raw::KERNEL_SIGSET_SIZE,
    };
    // SAFETY: as above.
    let r = unsafe { raw::io_pgetevents(ctx.0, 0, 2, ev.as_mut_ptr(), &mut zero, &sig) };
    assert_eq!(r, 0, "io_pgetevents with null sigmask: {}", show(r));
    Passed
}

fn pgetevents_kernel_sigset_size_only() -> Outcome {
    let ctx = need_aio!(4);
    let mask = [0u64; 16]; // 128 bytes, glibc's sigset_t size
    let mut ev = [io_event::default(); 1];
    let mut zero = raw::__kernel_timespec::default();
    let sig = raw::__aio_sigset {
        sigmask: mask.as_ptr().cast(),
        sigsetsize: 128,
    };
    // SAFETY: valid pointers; the kernel rejects the size before reading the mask.
    let r = unsafe { raw::io_pgetevents(ctx.0, 0, 1, ev.as_mut_ptr(), &mut zero, &sig) };
    if r == neg(Errno::NOSYS) {
        return skipped("io_pgetevents unavailable: kernel older than 4.18");
    }
    assert_eq!(r, neg(Errno::INVAL), "sigsetsize 128 gave {}", show(r));
    Passed
}

// ---------------------------------------------------------------------------------------------
// Cancellation

fn cancel_pending_poll() -> Outcome {
    let ctx = need_aio!(8);
    let efd = eventfd(); // never written: the poll stays pending
    let mut p = poll(efd.as_raw_fd() as u32, 0xc0ffee);
    let r = submit(&ctx, &mut [&mut p]);
    if r == neg(Errno::INVAL) {
        return skipped("IOCB_CMD_POLL rejected: kernel older than 4.19");
    }
    assert_eq!(r, 1);
    assert_no_event(&ctx, 20);
    let sentinel = io_event {
        data: 1,
        obj: 2,
        res: 3,
        res2: 4,
    };
    let mut result = sentinel;
    // SAFETY: p is the submitted iocb; result is writable.
    let c = unsafe { raw::io_cancel(ctx.0, &mut p, &mut result) };
    let ev = if c == neg(Errno::INPROGRESS) {
        // Linux 3.12 and later: result untouched, the event comes through the ring.
        assert_eq!(
            result, sentinel,
            "io_cancel returned EINPROGRESS but wrote result"
        );
        reap(&ctx, 1)[0]
    } else {
        // Before 3.12: 0, with the event copied into result.
        assert_eq!(c, 0, "io_cancel gave {}", show(c));
        result
    };
    assert_eq!(
        (ev.data, ev.obj, ev.res, ev.res2),
        (0xc0ffee, &p as *const iocb as u64, 0, 0)
    );
    // Cancelling it again: it is gone.
    // SAFETY: as above.
    let again = unsafe { raw::io_cancel(ctx.0, &mut p, &mut result) };
    assert_eq!(
        again,
        neg(Errno::INVAL),
        "second cancel gave {}",
        show(again)
    );
    assert_no_event(&ctx, 20);
    Passed
}

fn cancel_completed_read_is_einval() -> Outcome {
    let ctx = need_aio!(8);
    let f = Scratch::new("cancel");
    let mut buf = vec![0u8; 512];
    let mut r = rw(
        raw::IOCB_CMD_PREAD,
        f.fd(),
        buf.as_mut_ptr(),
        buf.len(),
        0,
        77,
    );
    assert_eq!(submit(&ctx, &mut [&mut r]), 1);
    let mut result = io_event::default();
    // SAFETY: r is the submitted iocb; result writable.
    let c = unsafe { raw::io_cancel(ctx.0, &mut r, &mut result) };
    assert_eq!(
        c,
        neg(Errno::INVAL),
        "cancel of a file read gave {}",
        show(c)
    );
    // The read's event is still delivered exactly once.
    assert_eq!(reap(&ctx, 1)[0].data, 77);
    assert_no_event(&ctx, 10);
    Passed
}

// ---------------------------------------------------------------------------------------------
// Bad input: a clear error, nothing lost, no crash

fn bad_context_is_einval() -> Outcome {
    let _probe = need_aio!(1);
    let bad: aio_context_t = 0xdead_0000;
    let mut cb = iocb::default();
    let mut p = &mut cb as *mut iocb;
    let mut ev = [io_event::default(); 1];
    let mut zero = raw::__kernel_timespec::default();
    let inval = neg(Errno::INVAL);
    // SAFETY: every pointer is valid; the kernel rejects the context.
    unsafe {
        assert_eq!(raw::io_submit(bad, 1, &mut p), inval);
        assert_eq!(
            raw::io_getevents(bad, 0, 1, ev.as_mut_ptr(), &mut zero),
            inval
        );
        assert_eq!(raw::io_cancel(bad, &mut cb, ev.as_mut_ptr()), inval);
        assert_eq!(raw::io_destroy(bad), inval);
        assert_eq!(raw::io_destroy(0), inval);
    }
    Passed
}

fn getevents_bad_counts() -> Outcome {
    let ctx = need_aio!(4);
    let mut ev = [io_event::default(); 4];
    let mut zero = raw::__kernel_timespec::default();
    let inval = neg(Errno::INVAL);
    // SAFETY: ev writable for 4 events; counts are checked before anything is written.
    unsafe {
        assert_eq!(
            raw::io_getevents(ctx.0, 3, 2, ev.as_mut_ptr(), &mut zero),
            inval,
            "min_nr > nr"
        );
        assert_eq!(
            raw::io_getevents(ctx.0, -1, 2, ev.as_mut_ptr(), &mut zero),
            inval,
            "min_nr < 0"
        );
        assert_eq!(
            raw::io_getevents(ctx.0, 0, -1, ev.as_mut_ptr(), &mut zero),
            inval,
            "nr < 0"
        );
        // The kernel does not validate the timeout. With min_nr = 0 a negative one returns at
        // once; with min_nr > 0 it blocks indefinitely (seen on 6.18), which is why the safe
        // API takes a Duration. Only the non-blocking form is exercised here.
        let mut neg_ts = raw::__kernel_timespec {
            tv_sec: -1,
            tv_nsec: 0,
        };
        assert_eq!(
            raw::io_getevents(ctx.0, 0, 1, ev.as_mut_ptr(), &mut neg_ts),
            0,
            "negative timeout"
        );
    }
    Passed
}

fn submit_bad_fd_is_ebadf() -> Outcome {
    let ctx = need_aio!(4);
    let mut buf = [0u8; 16];
    let mut r = rw(
        raw::IOCB_CMD_PREAD,
        999_999,
        buf.as_mut_ptr(),
        buf.len(),
        0,
        1,
    );
    assert_eq!(submit(&ctx, &mut [&mut r]), neg(Errno::BADF));
    assert_no_event(&ctx, 10);
    Passed
}

fn submit_noop_is_einval() -> Outcome {
    let ctx = need_aio!(4);
    let f = Scratch::new("noop");
    let mut n = iocb {
        aio_lio_opcode: raw::IOCB_CMD_NOOP,
        aio_fildes: f.fd(),
        ..Default::default()
    };
    assert_eq!(submit(&ctx, &mut [&mut n]), neg(Errno::INVAL));
    let mut unknown = iocb {
        aio_lio_opcode: 999,
        aio_fildes: f.fd(),
        ..Default::default()
    };
    assert_eq!(submit(&ctx, &mut [&mut unknown]), neg(Errno::INVAL));
    Passed
}

fn submit_unknown_rwf_is_eopnotsupp() -> Outcome {
    let ctx = need_aio!(4);
    let f = Scratch::new("rwf");
    let data = [1u8; 16];
    let mut w = rw(
        raw::IOCB_CMD_PWRITE,
        f.fd(),
        data.as_ptr(),
        data.len(),
        0,
        1,
    );
    w.aio_rw_flags = 1 << 30;
    assert_eq!(submit(&ctx, &mut [&mut w]), neg(Errno::OPNOTSUPP));
    // A known flag is accepted.
    w.aio_rw_flags = raw::RWF_DSYNC;
    assert_eq!(submit(&ctx, &mut [&mut w]), 1);
    assert_eq!(reap(&ctx, 1)[0].res, 16);
    Passed
}

fn submit_reserved2_is_einval() -> Outcome {
    let ctx = need_aio!(4);
    let f = Scratch::new("rsv");
    let data = [1u8; 16];
    let mut w = rw(
        raw::IOCB_CMD_PWRITE,
        f.fd(),
        data.as_ptr(),
        data.len(),
        0,
        1,
    );
    w.aio_reserved2 = 1;
    assert_eq!(submit(&ctx, &mut [&mut w]), neg(Errno::INVAL));
    Passed
}

fn submit_batch_partial_failure() -> Outcome {
    let ctx = need_aio!(8);
    let f = Scratch::new("batch");
    let data = pattern(64, 5);
    let good = |d| {
        rw(
            raw::IOCB_CMD_PWRITE,
            f.fd(),
            data.as_ptr(),
            data.len(),
            0,
            d,
        )
    };
    let bad = |d| {
        rw(
            raw::IOCB_CMD_PWRITE,
            999_999,
            data.as_ptr(),
            data.len(),
            0,
            d,
        )
    };

    // The first fails: the error, and nothing was queued.
    let (mut a, mut b, mut c) = (bad(1), good(2), good(3));
    assert_eq!(
        submit(&ctx, &mut [&mut a, &mut b, &mut c]),
        neg(Errno::BADF)
    );
    assert_no_event(&ctx, 10);

    // The third fails: 2, and exactly the first two complete.
    let (mut a, mut b, mut c, mut d) = (good(4), good(5), bad(6), good(7));
    assert_eq!(submit(&ctx, &mut [&mut a, &mut b, &mut c, &mut d]), 2);
    let mut got: Vec<u64> = reap(&ctx, 2).iter().map(|e| e.data).collect();
    got.sort();
    assert_eq!(got, vec![4, 5]);
    assert_no_event(&ctx, 10);
    // nr == 0 submits nothing; nr < 0 is EINVAL.
    assert_eq!(submit(&ctx, &mut []), 0);
    // SAFETY: a negative count is rejected before the array is read.
    assert_eq!(
        unsafe { raw::io_submit(ctx.0, -1, null_mut()) },
        neg(Errno::INVAL)
    );
    Passed
}

fn bad_pointers_are_efault() -> Outcome {
    let ctx = need_aio!(4);
    let fault = neg(Errno::FAULT);
    let mut zero = raw::__kernel_timespec::default();
    // SAFETY: the kernel validates every user pointer and reports EFAULT; nothing in this
    // process is written through them.
    unsafe {
        assert_eq!(
            raw::io_setup(4, wild::<aio_context_t>()),
            fault,
            "io_setup ctxp"
        );
        assert_eq!(
            raw::io_submit(ctx.0, 1, wild::<*mut iocb>()),
            fault,
            "io_submit array"
        );
        let mut p = wild::<iocb>();
        assert_eq!(raw::io_submit(ctx.0, 1, &mut p), fault, "io_submit iocb");
        assert_eq!(
            raw::io_cancel(ctx.0, wild::<iocb>(), wild::<io_event>()),
            fault,
            "io_cancel"
        );
        let mut ev = io_event::default();
        // Before Linux 5.1 on arm and x86 the raw layer converts the timeout itself, so it must
        // be readable there (see raw's documentation): only the kernel can answer EFAULT.
        if !time32_fallback_in_use() {
            assert_eq!(
                raw::io_getevents(ctx.0, 0, 1, &mut ev, wild()),
                fault,
                "timeout"
            );
        }
        let r = raw::io_pgetevents(ctx.0, 0, 1, &mut ev, &mut zero, wild::<raw::__aio_sigset>());
        assert!(
            r == fault || r == neg(Errno::NOSYS),
            "io_pgetevents usig gave {}",
            show(r)
        );
    }
    // An event buffer the kernel cannot write: the event is not lost, it stays in the ring.
    let efd = eventfd();
    rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
    let mut p = poll(efd.as_raw_fd() as u32, 5);
    if submit(&ctx, &mut [&mut p]) == 1 {
        std::thread::sleep(Duration::from_millis(10));
        let mut ts = raw::__kernel_timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        // SAFETY: the kernel reports EFAULT for the unwritable event buffer.
        let r = unsafe { raw::io_getevents(ctx.0, 1, 1, wild::<io_event>(), &mut ts) };
        assert_eq!(r, fault, "unwritable events gave {}", show(r));
        assert_eq!(reap(&ctx, 1)[0].data, 5, "event lost after EFAULT");
    }
    Passed
}

// ---------------------------------------------------------------------------------------------
// Time on the 32-bit architectures: io_pgetevents_time64, and the fallback to the old calls

/// Runs `f` with the raw layer's fallback to the 32-bit-timespec calls forced `on` or off, then
/// puts back what was in force before (also when `f` panics).
#[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
fn with_time32_calls<T>(on: bool, f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            raw::__force_time32_calls(self.0);
        }
    }
    let _restore = Restore(raw::__time32_calls());
    raw::__force_time32_calls(on);
    f()
}

/// The generated `__NR_io_pgetevents_time64` is the kernel's: called directly with a 64-bit
/// timeout of 150 ms and nothing in flight, it waits that long and returns 0. And the raw
/// layer's `io_getevents` uses it: no fallback on this kernel.
#[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
fn time64_call_reaches_the_kernel() -> Outcome {
    let ctx = need_aio!(4);
    let mut ev = [io_event::default(); 1];
    let mut ts = raw::__kernel_timespec {
        tv_sec: 0,
        tv_nsec: 150_000_000,
    };
    let start = Instant::now();
    // SAFETY: ev is writable for one event, ts is a live 64-bit timespec, no signal mask.
    let r = unsafe {
        raw::syscall6(
            raw::__NR_io_pgetevents_time64,
            ctx.0 as usize,
            1,
            1,
            ev.as_mut_ptr() as usize,
            &mut ts as *mut raw::__kernel_timespec as usize,
            0,
        )
    };
    if r == neg(Errno::NOSYS) {
        return skipped("io_pgetevents_time64 unavailable: kernel older than 5.1");
    }
    let waited = start.elapsed();
    assert_eq!(r, 0, "io_pgetevents_time64: {}", show(r));
    assert!(
        waited >= Duration::from_millis(140) && waited < Duration::from_secs(5),
        "a 150 ms timeout waited {waited:?}"
    );
    let mut zero = raw::__kernel_timespec::default();
    // SAFETY: as above.
    let r = unsafe { raw::io_getevents(ctx.0, 0, 1, ev.as_mut_ptr(), &mut zero) };
    assert_eq!(r, 0, "io_getevents: {}", show(r));
    assert!(
        !raw::__time32_calls(),
        "the raw layer fell back to the 32-bit calls on a kernel that has io_pgetevents_time64"
    );
    Passed
}

/// Timeouts reach the kernel intact through `io_getevents` and `io_pgetevents`, both with
/// `io_pgetevents_time64` and with the fallback to the 32-bit-timespec calls forced (what a
/// kernel before 5.1 gets): 2^32 seconds (which a truncating conversion would turn into 0, no
/// wait at all) waits until a request completes 300 ms later, and 120 ms of nanoseconds with
/// nothing in flight waits 120 ms.
#[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
fn timeouts_beyond_32_bits_do_not_wrap() -> Outcome {
    let ctx = need_aio!(4);
    for time32 in [false, true] {
        for pgetevents in [false, true] {
            let how = format!(
                "{} with {} calls",
                if pgetevents {
                    "io_pgetevents"
                } else {
                    "io_getevents"
                },
                if time32 { "the 32-bit" } else { "the time64" }
            );
            let wait = |ts: raw::__kernel_timespec, ev: &mut io_event| {
                let mut ts = ts;
                let start = Instant::now();
                // SAFETY: ev is writable for one event; ts is live; usig null.
                let r = with_time32_calls(time32, || unsafe {
                    if pgetevents {
                        raw::io_pgetevents(ctx.0, 1, 1, ev, &mut ts, null())
                    } else {
                        raw::io_getevents(ctx.0, 1, 1, ev, &mut ts)
                    }
                });
                (r, start.elapsed())
            };
            let mut ev = io_event::default();
            let short = raw::__kernel_timespec {
                tv_sec: 0,
                tv_nsec: 120_000_000,
            };
            let (r, waited) = wait(short, &mut ev);
            assert_eq!(r, 0, "{how}: {}", show(r));
            assert!(
                waited >= Duration::from_millis(110) && waited < Duration::from_secs(30),
                "{how}: a 120 ms timeout waited {waited:?}"
            );

            let efd = eventfd();
            let mut p = poll(efd.as_raw_fd() as u32, 32);
            assert_eq!(submit(&ctx, &mut [&mut p]), 1, "{how}: submit poll");
            let writer = std::thread::spawn({
                let efd = efd.try_clone().unwrap();
                move || {
                    std::thread::sleep(Duration::from_millis(300));
                    rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
                }
            });
            let long = raw::__kernel_timespec {
                tv_sec: 1 << 32,
                tv_nsec: 0,
            };
            let (r, waited) = wait(long, &mut ev);
            writer.join().unwrap();
            assert_eq!(
                r,
                1,
                "{how}: a 2^32 s timeout gave {} after {waited:?}",
                show(r)
            );
            assert_eq!(ev.data, 32, "{how}");
            assert!(
                waited >= Duration::from_millis(250),
                "{how}: returned after {waited:?}, before the request completed"
            );
        }
    }
    Passed
}
