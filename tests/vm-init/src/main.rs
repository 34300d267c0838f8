//! `/init` of the qemu-system guests that `cargo xtask vm` boots (see xtask/src/vm/).
//!
//! 1. Mounts /proc, /sys, /dev (devtmpfs), /dev/pts (devpts: /dev/ptmx opens only with it,
//!    for the pseudo-terminal tests) and /tmp (tmpfs).
//! 2. Loads the kernel modules in /modules (file names sort in load order; `.ko.xz` files are
//!    decompressed by the kernel) and mounts the ext4 image /direct.img through a loop device on
//!    /direct, a directory where O_DIRECT works; the test binaries find it in the environment
//!    variable `LINUX_AIO_DIRECT_DIR`, which is unset when this step failed (reason printed).
//! 3. Runs every file in /tests in name order, echoing its output and adding up its summary
//!    lines (the crate's harness `N passed, N failed, N skipped` and libtest's `test result:`).
//!    A binary with no summary, or a non-zero exit without a counted failure, is one failure.
//!    The C library's harness (/tests/capi) finds the library and the C programs through
//!    `LINUX_AIO_CAPI_LIB` (/capi/libaio.so) and `LINUX_AIO_CAPI_TESTS` (/capi/tests), set for
//!    every test binary when those exist; the faults suite finds the probe through
//!    `LINUX_AIO_PROBE` (/probe) and checks its JSON against docs/probe.md.
//! 4. Runs `/probe` and `/probe --json` (linux-aio-probe; each one check: passed when it exits 0),
//!    the JSON between the lines `vm-probe-json-begin` and `vm-probe-json-end`.
//! 5. Prints `vm-summary: N passed, N failed, N skipped` and powers the machine off.

#[path = "../../support/counts.rs"]
mod counts;

use counts::parse_counts;

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Instant;

/// Where the ext4 image is mounted.
const DIRECT_DIR: &str = "/direct";
/// The C library and its C test programs (see xtask/src/vm/mod.rs).
const CAPI_LIB: &str = "/capi/libaio.so";
const CAPI_TESTS: &str = "/capi/tests";
/// `finit_module` flag: the file is compressed, the kernel decompresses it (Linux 6.4+).
const MODULE_INIT_COMPRESSED_FILE: libc::c_int = 4;
/// `<linux/loop.h>` ioctls (plain numbers on every architecture).
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;

fn main() {
    for (src, dir, fstype) in [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
        // Pseudo-terminals for the POSIX layer's terminal tests (/dev/ptmx finds this mount).
        ("devpts", "/dev/pts", "devpts"),
        ("tmpfs", "/tmp", "tmpfs"),
    ] {
        if let Err(e) = mount(src, dir, fstype) {
            println!("vm-init: mount {fstype} on {dir}: {e}");
        }
    }
    let uname = std::fs::read_to_string("/proc/version").unwrap_or_default();
    println!("vm-init: {}", uname.trim());

    let direct = load_modules().and_then(|()| mount_direct());
    match &direct {
        Ok(dev) => println!(
            "vm-init: ext4 on {dev} mounted at {DIRECT_DIR} (an O_DIRECT write works there)"
        ),
        Err(e) => println!("vm-init: no O_DIRECT directory: {e}"),
    }

    let mut total = [0usize; 3];
    let mut tests: Vec<_> = std::fs::read_dir("/tests")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    tests.sort();
    for path in &tests {
        let mut cmd = Command::new(path);
        if direct.is_ok() {
            cmd.env("LINUX_AIO_DIRECT_DIR", DIRECT_DIR);
        }
        if std::path::Path::new(CAPI_LIB).exists() {
            cmd.env("LINUX_AIO_CAPI_LIB", CAPI_LIB);
        }
        if std::path::Path::new(CAPI_TESTS).is_dir() {
            cmd.env("LINUX_AIO_CAPI_TESTS", CAPI_TESTS);
        }
        // The faults suite checks the probe's JSON against docs/probe.md.
        cmd.env("LINUX_AIO_PROBE", "/probe");
        let name = path.file_name().unwrap().to_string_lossy();
        let [p, f, s] = run_suite(&name, cmd);
        total = [total[0] + p, total[1] + f, total[2] + s];
    }
    for args in [&[][..], &["--json"][..]] {
        let json = !args.is_empty();
        println!("\n==== /probe {}", args.join(" "));
        if json {
            println!("vm-probe-json-begin");
        }
        let ok = Command::new("/probe")
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        if json {
            println!("vm-probe-json-end");
        }
        if ok {
            total[0] += 1;
        } else {
            total[1] += 1;
            println!("vm-init: FAILED: /probe {}", args.join(" "));
        }
    }
    println!(
        "vm-summary: {} passed, {} failed, {} skipped",
        total[0], total[1], total[2]
    );
    power_off()
}

/// Runs one test binary, echoing its stdout and stderr, and returns its counts.
fn run_suite(name: &str, mut cmd: Command) -> [usize; 3] {
    println!("\n==== {name}");
    let start = Instant::now();
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return fail_suite(name, &format!("pipe: {e}")),
    };
    let child = writer
        .try_clone()
        .map(|w2| cmd.stdout(writer).stderr(w2).spawn());
    // `cmd` still holds the write ends: drop it so that the read below ends with the child.
    drop(cmd);
    let mut child = match child {
        Ok(Ok(c)) => c,
        Ok(Err(e)) | Err(e) => return fail_suite(name, &format!("cannot run: {e}")),
    };
    let mut sum: Option<[usize; 3]> = None;
    for line in BufReader::new(reader).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some(c) = parse_counts(&line) {
            let s = sum.get_or_insert([0; 3]);
            *s = [s[0] + c[0], s[1] + c[1], s[2] + c[2]];
        }
    }
    let status = child.wait();
    let ok = status.as_ref().is_ok_and(|s| s.success());
    let status = status.map_or_else(|e| format!("wait: {e}"), |s| s.to_string());
    println!(
        "vm-init: {name}: {status} after {:.1} s",
        start.elapsed().as_secs_f64()
    );
    match sum {
        Some(c) if ok || c[1] > 0 => c,
        _ => fail_suite(name, "exited without a passing summary"),
    }
}

fn fail_suite(name: &str, why: &str) -> [usize; 3] {
    println!("vm-init: FAILED: {name}: {why}");
    [0, 1, 0]
}

fn mount(src: &str, dir: &str, fstype: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let [src, dir, fstype] = [src, dir, fstype].map(|s| CString::new(s).unwrap());
    // SAFETY: the strings are NUL-terminated and outlive the call; `data` may be null.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dir.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    check(r).map(drop)
}

/// A libc return value, or errno when it is negative.
fn check(r: impl Into<i64>) -> std::io::Result<i64> {
    let r = r.into();
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Loads /modules/* in name order; a module that is already there (EEXIST) is fine.
fn load_modules() -> Result<(), String> {
    let mut files: Vec<_> = std::fs::read_dir("/modules")
        .map_err(|e| format!("/modules: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let compressed = path.extension().is_some_and(|e| e != "ko");
        let flags = if compressed {
            MODULE_INIT_COMPRESSED_FILE
        } else {
            0
        };
        // SAFETY: a valid fd, an empty NUL-terminated parameter string, plain flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_finit_module,
                file.as_raw_fd(),
                c"".as_ptr(),
                flags,
            )
        };
        match check(r) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(format!("finit_module {}: {e}", path.display())),
        }
    }
    Ok(())
}

/// Attaches /direct.img to a free loop device and mounts it (ext4) on [`DIRECT_DIR`].
fn mount_direct() -> Result<String, String> {
    let open = |p: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .map_err(|e| format!("{p}: {e}"))
    };
    let image = open("/direct.img")?;
    let control = open("/dev/loop-control")?;
    // SAFETY: an ioctl without an argument on a valid fd.
    let n = check(unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) })
        .map_err(|e| format!("LOOP_CTL_GET_FREE: {e}"))?;
    let dev = format!("/dev/loop{n}");
    let loop_dev = open(&dev)?;
    // SAFETY: LOOP_SET_FD takes the backing file's fd by value.
    check(unsafe { libc::ioctl(loop_dev.as_raw_fd(), LOOP_SET_FD as _, image.as_raw_fd()) })
        .map_err(|e| format!("LOOP_SET_FD {dev}: {e}"))?;
    mount(&dev, DIRECT_DIR, "ext4").map_err(|e| format!("mount {dev} on {DIRECT_DIR}: {e}"))?;
    direct_write().map_err(|e| format!("O_DIRECT write in {DIRECT_DIR}: {e}"))?;
    Ok(dev)
}

/// Proves that O_DIRECT works in [`DIRECT_DIR`]: one aligned 4 KiB write, then the file is removed.
fn direct_write() -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = format!("{DIRECT_DIR}/o_direct_check");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)?;
    #[repr(C, align(4096))]
    struct Block([u8; 4096]);
    let block = Box::new(Block([0xa5; 4096]));
    file.write_all(&block.0)?;
    std::fs::remove_file(&path)
}

fn power_off() -> ! {
    // SAFETY: plain system calls; reboot only returns on failure.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    // Still here: returning from init panics the kernel, and `panic=-1` with qemu's
    // `-no-reboot` ends the guest all the same.
    println!(
        "vm-init: reboot(RB_POWER_OFF): {}",
        std::io::Error::last_os_error()
    );
    std::process::exit(1)
}
