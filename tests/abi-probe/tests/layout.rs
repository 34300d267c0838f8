//! Compares linux-aio's Rust declarations with the C compiler's values from probe.c: every size,
//! alignment and field offset, syscall number and constant, for the target being built.

#[path = "../../support/runner.rs"]
mod runner;

use core::mem::{align_of, offset_of, size_of};
use linux_aio::raw;
use runner::{Outcome, Passed};

/// Rust's value for each C expression that names a table entry.
type Group = Vec<(&'static str, i64)>;

/// Size, alignment and every field offset of `raw::$t`, named as probe.c names them.
macro_rules! layout {
    ($t:ident: $($f:ident),+ $(,)?) => {
        vec![
            (concat!("sizeof(struct ", stringify!($t), ")"), size_of::<raw::$t>() as i64),
            (concat!("_Alignof(struct ", stringify!($t), ")"), align_of::<raw::$t>() as i64),
            $((
                concat!("offsetof(struct ", stringify!($t), ", ", stringify!($f), ")"),
                offset_of!(raw::$t, $f) as i64,
            ),)+
        ]
    };
}

/// The values of constants `raw::$c`, named as in C.
macro_rules! values {
    ($($c:ident),+ $(,)?) => {
        vec![$((stringify!($c), raw::$c as i64)),+]
    };
}

fn iocb() -> Group {
    layout!(iocb: aio_data, aio_key, aio_rw_flags, aio_lio_opcode, aio_reqprio, aio_fildes,
        aio_buf, aio_nbytes, aio_offset, aio_reserved2, aio_flags, aio_resfd)
}

fn io_event() -> Group {
    layout!(io_event: data, obj, res, res2)
}

fn kernel_timespec() -> Group {
    layout!(__kernel_timespec: tv_sec, tv_nsec)
}

fn aio_ring() -> Group {
    layout!(aio_ring: id, nr, head, tail, magic, compat_features, incompat_features,
        header_length)
}

fn aio_sigset() -> Group {
    layout!(__aio_sigset: sigmask, sigsetsize)
}

/// The 32-bit `struct timespec` of the time32 calls, on the modules that have them.
#[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
fn kernel_old_timespec() -> Group {
    layout!(__kernel_old_timespec: tv_sec, tv_nsec)
}
#[cfg(not(any(linux_aio_arch = "arm", linux_aio_arch = "x86")))]
fn kernel_old_timespec() -> Group {
    Group::new()
}

fn syscalls() -> Group {
    #[allow(unused_mut)]
    let mut group = values!(
        __NR_io_setup,
        __NR_io_destroy,
        __NR_io_submit,
        __NR_io_cancel,
        __NR_io_getevents,
        __NR_io_pgetevents,
        __NR_read,
        __NR_write,
        __NR_close,
        __NR_pipe2,
        __NR_munmap,
    );
    // What only some architectures have; probe.c has the same #ifdefs, and
    // every_c_entry_checked catches a number one side has and the other lacks.
    #[cfg(not(linux_aio_arch = "enosys"))]
    group.extend(values!(__NR_copy_file_range));
    #[cfg(not(linux_aio_arch = "arm"))]
    group.extend(values!(__NR_mmap));
    #[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
    group.extend(values!(__NR_mmap2, __NR_io_pgetevents_time64));
    group
}

fn constants() -> Group {
    values!(
        IOCB_CMD_PREAD,
        IOCB_CMD_PWRITE,
        IOCB_CMD_FSYNC,
        IOCB_CMD_FDSYNC,
        IOCB_CMD_POLL,
        IOCB_CMD_NOOP,
        IOCB_CMD_PREADV,
        IOCB_CMD_PWRITEV,
        IOCB_FLAG_RESFD,
        IOCB_FLAG_IOPRIO,
        RWF_HIPRI,
        RWF_DSYNC,
        RWF_SYNC,
        RWF_NOWAIT,
        RWF_APPEND,
        RWF_SUPPORTED,
    )
}

fn context() -> Group {
    vec![(
        "sizeof(aio_context_t)",
        size_of::<raw::aio_context_t>() as i64,
    )]
}

const GROUPS: [fn() -> Group; 9] = [
    iocb,
    io_event,
    kernel_timespec,
    kernel_old_timespec,
    aio_ring,
    aio_sigset,
    syscalls,
    constants,
    context,
];

/// The ENOSYS module's declarations are placeholders that no kernel sees: nothing to compare.
fn unsupported() -> Option<Outcome> {
    (raw::ARCH == "enosys").then(|| {
        runner::skipped(
            "linux_aio::raw::ARCH is \"enosys\": no kernel ABI to compare on this target",
        )
    })
}

/// Compares every entry of `group` with the C table and panics listing all mismatches.
fn check(group: Group) -> Outcome {
    if let Some(skip) = unsupported() {
        return skip;
    }
    let c = abi_probe::c_table();
    let mut mismatches = Vec::new();
    for (name, rust) in group {
        match c.iter().find(|(n, _)| n == name) {
            Some(&(_, c_value)) if c_value == rust => {}
            Some(&(_, c_value)) => mismatches.push(format!("  {name}: C {c_value}, Rust {rust}")),
            None => mismatches.push(format!("  {name}: not in probe.c's table, Rust {rust}")),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es) between C and Rust:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    Passed
}

/// Every entry of the C table is compared by some group above, exactly once.
fn every_c_entry_checked() -> Outcome {
    if let Some(skip) = unsupported() {
        return skip;
    }
    let checked: Vec<&str> = GROUPS.iter().flat_map(|g| g()).map(|(n, _)| n).collect();
    let mut problems = Vec::new();
    let c = abi_probe::c_table();
    for (i, (name, value)) in c.iter().enumerate() {
        if c[..i].iter().any(|(n, _)| n == name) {
            problems.push(format!("  {name}: twice in probe.c's table"));
        }
        if !checked.contains(&name.as_str()) {
            problems.push(format!("  {name} = {value}: checked by no Rust test"));
        }
    }
    assert!(
        problems.is_empty(),
        "unchecked C table entries:\n{}",
        problems.join("\n")
    );
    Passed
}

fn main() {
    runner::run(
        "abi-probe",
        &[
            ("iocb", || check(iocb())),
            ("io_event", || check(io_event())),
            ("__kernel_timespec", || check(kernel_timespec())),
            #[cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]
            ("__kernel_old_timespec", || check(kernel_old_timespec())),
            ("aio_ring", || check(aio_ring())),
            ("__aio_sigset", || check(aio_sigset())),
            ("syscall_numbers", || check(syscalls())),
            ("constants", || check(constants())),
            ("aio_context_t", || check(context())),
            ("every_c_entry_checked", every_c_entry_checked),
        ],
    )
}
