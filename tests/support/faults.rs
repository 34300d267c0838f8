//! The seccomp emulation of `tests/faults/aiofault.c` (kernel eras and injected faults, see the
//! comment at its top), for tests that run a program under it: the library is compiled once per
//! test process with the C compiler, into a directory named after the process, and loaded into
//! the program with `LD_PRELOAD`; `LINUX_AIO_FAULTS` says what to emulate.
//!
//! [`library`] answers why the emulation cannot run here (the reason for a SKIPPED line): an
//! architecture without a handler in aiofault.c (x86_64 and aarch64 have one), no C compiler
//! (the qemu-system guests), or no source tree next to the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The emulation's C source, in this repository.
pub const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/faults/aiofault.c");

/// The compiled `aiofault.so`, or why there is none. `source` is aiofault.c's path.
pub fn library(source: &str) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(|| build(Path::new(source))).clone()
}

fn build(source: &Path) -> Result<PathBuf, String> {
    let arch = std::env::consts::ARCH;
    if !matches!(arch, "x86_64" | "aarch64") {
        return Err(format!(
            "aiofault.c has a SIGSYS handler for x86_64 and aarch64 only, not {arch}"
        ));
    }
    if !source.exists() {
        return Err(format!(
            "{} is not here (a copied binary?)",
            source.display()
        ));
    }
    let dir = scratch_dir("faults-lib");
    let lib = dir.join("aiofault.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args([
            "-std=gnu11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-shared",
            "-fPIC",
        ])
        .arg(source)
        .arg("-o")
        .arg(&lib)
        .output();
    match out {
        Err(e) => Err(format!(
            "no C compiler to build the seccomp emulation ({cc}: {e})"
        )),
        Ok(o) if !o.status.success() => panic!(
            "compiling {}: {}",
            source.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(_) => Ok(lib),
    }
}

/// A fresh directory for this process's files, beside `deps/` in the target directory (or in
/// the temporary directory); those of processes that have ended are removed.
pub fn scratch_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let beside_deps = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("faults-scratch"));
    let me = std::process::id();
    for base in beside_deps
        .into_iter()
        .chain([std::env::temp_dir().join("linux-aio-faults")])
    {
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let file_name = entry.file_name();
            let pid = file_name
                .to_str()
                .and_then(|n| n.rsplit('.').next()?.parse::<u32>().ok());
            if pid.is_some_and(|p| p != me && !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = base.join(format!("{name}.{me}"));
        if std::fs::create_dir_all(&dir).is_ok() {
            return dir;
        }
    }
    panic!("no writable scratch directory for {name}")
}

/// `cmd` set to run under the emulation with `faults` (LINUX_AIO_FAULTS).
pub fn under<'a>(cmd: &'a mut Command, lib: &Path, faults: &str) -> &'a mut Command {
    cmd.env("LD_PRELOAD", lib)
        .env("LINUX_AIO_FAULTS", faults)
        .stdin(Stdio::null())
}

/// Runs `cmd` to its end, or kills it after `limit` (a hung child must never hang the suite).
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} still running after {limit:?}; killed. stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// In a program started [`under`] the emulation: `Ok` if it is installed, or why not.
pub fn active() -> Result<(), String> {
    match symbol::<unsafe extern "C" fn() -> i32>(c"linux_aio_faults_status") {
        None => Err("LD_PRELOAD had no effect (a static binary?)".into()),
        // SAFETY: the library's `int linux_aio_faults_status(void)`.
        Some(status) => match unsafe { status() } {
            0 => Ok(()),
            1 => Err("LINUX_AIO_FAULTS is not set".into()),
            e if e == -libc::ENOTSUP => Err(format!(
                "aiofault.c has no SIGSYS handler for {}",
                std::env::consts::ARCH
            )),
            e => Err(format!(
                "the seccomp emulation could not be installed: {}",
                std::io::Error::from_raw_os_error(-e)
            )),
        },
    }
}

/// How many of the emulation's answers differed from the real kernel's so far (0 outside it).
pub fn fired() -> i64 {
    match symbol::<unsafe extern "C" fn() -> libc::c_long>(c"linux_aio_faults_fired") {
        // SAFETY: the library's `long linux_aio_faults_fired(void)`.
        #[allow(clippy::useless_conversion)] // c_long is i64 or i32
        Some(f) => i64::from(unsafe { f() }),
        None => 0,
    }
}

fn symbol<F: Copy>(name: &std::ffi::CStr) -> Option<F> {
    // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the loaded objects.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of_val(&p));
    // SAFETY: F is the function pointer type of the symbol (the callers name both), and a
    // non-null symbol address is that function.
    (!p.is_null()).then(|| unsafe { std::mem::transmute_copy::<*mut libc::c_void, F>(&p) })
}

/// The number of this process's `[aio]` mappings (completion rings) in /proc/self/maps.
pub fn aio_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("/[aio]"))
        .count()
}
