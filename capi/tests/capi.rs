//! The C library's tests: the C programs of `tests/c/` (built by build.rs against the system's
//! `libaio.h`) run once against this package's `libaio.so.1` and once against the system's
//! libaio, with the same expectations (`syscalls.c` excepted: it shows where the two differ);
//! the exported symbols and versions, checked with `readelf`; and a program linked statically
//! against `libaio.a`.
//!
//! Environment, all optional:
//! - `LINUX_AIO_CAPI_LIB`: the `libaio.so` to test as ours (default: the one cargo built next to
//!   this binary), e.g. a `panic = "abort"` build (see the README); its `libaio.a` is taken from
//!   the same directory;
//! - `LINUX_AIO_CAPI_TESTS`: the directory of the compiled C programs (default: where build.rs
//!   put them), to run this binary elsewhere, such as in a VM guest.

#[path = "../../tests/support/runner.rs"]
mod runner;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use runner::{skipped, Outcome, Passed};

/// The dynamic symbols of libaio 0.3.113 as Debian builds it: `@@` the default version of a
/// name, `@` a compatibility entry point for programs linked against libaio 0.1.
const EXPORTS: &[&str] = &[
    "io_cancel@@LIBAIO_0.4",
    "io_cancel@LIBAIO_0.1",
    "io_destroy@@LIBAIO_0.4",
    "io_getevents@@LIBAIO_0.4",
    "io_getevents@LIBAIO_0.1",
    "io_pgetevents@@LIBAIO_0.5",
    "io_queue_init@@LIBAIO_0.1",
    "io_queue_release@@LIBAIO_0.1",
    "io_queue_run@@LIBAIO_0.1",
    "io_queue_wait@@LIBAIO_0.4",
    "io_queue_wait@LIBAIO_0.1",
    "io_setup@@LIBAIO_0.4",
    "io_submit@@LIBAIO_0.1",
];

#[derive(Clone, Copy, PartialEq)]
enum Lib {
    Ours,
    System,
}

/// Both runs of each C program (names as build.rs's PROGRAMS).
macro_rules! c_tests {
    ($($program:literal),*) => {
        vec![$(
            (concat!("ours: ", $program), (|| c_test($program, Lib::Ours)) as fn() -> Outcome),
            (concat!("system: ", $program), (|| c_test($program, Lib::System)) as fn() -> Outcome),
        )*]
    };
}

fn main() {
    let mut tests: Vec<runner::Test> = vec![
        (
            "symbols: libaio.so.1 exports libaio 0.3.113's symbols and versions",
            symbols_ours,
        ),
        (
            "symbols: the system's libaio.so.1 exports the same",
            symbols_system,
        ),
        (
            "symbols: libaio.so.1 does not import libc's syscall()",
            imports,
        ),
        ("static: a C program links against libaio.a", static_build),
        ("static: and runs", static_run),
    ];
    tests.extend(c_tests!(
        "setup", "rw", "cancel", "queue", "threads", "syscalls", "fork"
    ));
    runner::run("capi", &tests)
}

/// This package's `libaio.so`.
fn our_lib() -> PathBuf {
    if let Some(lib) = std::env::var_os("LINUX_AIO_CAPI_LIB") {
        return PathBuf::from(lib);
    }
    // target/<triple>/<profile>/deps/capi-<hash>; cargo puts the library in deps/ and its parent.
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps, deps.parent().unwrap()]
        .iter()
        .map(|d| d.join("libaio.so"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no libaio.so next to {}", exe.display()))
}

/// The system's libaio for this architecture (Debian's multiarch directories), if installed.
fn system_lib() -> Option<PathBuf> {
    let multiarch = match std::env::consts::ARCH {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        "powerpc64" if cfg!(target_endian = "little") => "powerpc64le-linux-gnu",
        "arm" if cfg!(target_abi = "eabi") => "arm-linux-gnueabi",
        "arm" => "arm-linux-gnueabihf",
        "x86" => "i386-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        _ => return None,
    };
    ["/usr/lib", "/lib"]
        .iter()
        .map(|d| Path::new(d).join(multiarch).join("libaio.so.1"))
        .find(|p| p.exists())
}

/// Why the kernel-facing tests cannot run here, if they cannot.
fn no_kernel_aio() -> Option<String> {
    static PROBE: OnceLock<Option<String>> = OnceLock::new();
    PROBE
        .get_or_init(|| match linux_aio::Context::new(1) {
            Err(e) if e == linux_aio::Errno::NOSYS => {
                Some("io_setup answers ENOSYS: no kernel AIO here (qemu-user?)".into())
            }
            _ => None,
        })
        .clone()
}

/// A fresh directory for one test's files: in the target directory, next to `deps/`, or in the
/// temporary directory where that is not writable. Named after this process, so that two runs
/// at once never share one; directories of runs that have ended are removed.
fn scratch(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let beside_deps = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("capi-scratch"));
    let me = std::process::id();
    for base in beside_deps
        .into_iter()
        .chain([std::env::temp_dir().join("linux-aio-capi")])
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
        let _ = std::fs::remove_dir_all(&dir);
        if std::fs::create_dir_all(&dir).is_ok() {
            return dir;
        }
    }
    panic!("no writable scratch directory for {name}")
}

/// `readelf -W <flags> <file>`, or a skip if readelf is missing.
fn readelf(flags: &str, file: &Path) -> Result<String, Outcome> {
    match Command::new("readelf")
        .args(["-W", flags])
        .arg(file)
        .output()
    {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => panic!(
            "readelf {flags} {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => Err(skipped(format!("readelf cannot run: {e}"))),
    }
}

/// `(defined, undefined)` global function names of a shared library, with their versions as
/// readelf prints them (`name@@V`, `name@V`; undefined ones without the `(n)` index).
fn dynamic_functions(lib: &Path) -> Result<(Vec<String>, Vec<String>), Outcome> {
    let table = readelf("--dyn-syms", lib)?;
    let (mut defined, mut undefined) = (Vec::new(), Vec::new());
    for line in table.lines() {
        // Num: Value Size Type Bind Vis Ndx Name [(version index)]; Vis may take more than one
        // word (`DEFAULT [<localentry>: 8]` on ppc64le), so Ndx and Name are taken from the end.
        let mut f: Vec<&str> = line.split_whitespace().collect();
        if f.last()
            .is_some_and(|w| w.starts_with('(') && w.ends_with(')'))
        {
            f.pop();
        }
        if f.len() < 8 || f[3] != "FUNC" || f[4] == "LOCAL" {
            continue;
        }
        let (ndx, name) = (f[f.len() - 2], f[f.len() - 1].to_string());
        if ndx == "UND" {
            undefined.push(name);
        } else {
            defined.push(name);
        }
    }
    defined.sort();
    undefined.sort();
    Ok((defined, undefined))
}

/// Checks that `lib` exports exactly `EXPORTS`, has the soname and defines the version nodes.
fn check_exports(lib: &Path) -> Outcome {
    let (defined, _) = match dynamic_functions(lib) {
        Ok(d) => d,
        Err(outcome) => return outcome,
    };
    println!("    {}:", lib.display());
    for name in &defined {
        println!("      {name}");
    }
    let mut expected: Vec<&str> = EXPORTS.to_vec();
    expected.sort();
    assert_eq!(defined, expected, "exported functions of {}", lib.display());
    let dynamic = readelf("-d", lib).unwrap_or_default();
    assert!(
        dynamic.contains("Library soname: [libaio.so.1]"),
        "soname of {}:\n{dynamic}",
        lib.display()
    );
    let versions = readelf("-V", lib).unwrap_or_default();
    for node in ["LIBAIO_0.1", "LIBAIO_0.4", "LIBAIO_0.5"] {
        assert!(
            versions.contains(&format!("Name: {node}")),
            "version node {node} missing from {}:\n{versions}",
            lib.display()
        );
    }
    println!("      soname libaio.so.1; version nodes LIBAIO_0.1, LIBAIO_0.4, LIBAIO_0.5");
    Passed
}

fn symbols_ours() -> Outcome {
    check_exports(&our_lib())
}

fn symbols_system() -> Outcome {
    match system_lib() {
        Some(lib) => check_exports(&lib),
        None => skipped("no system libaio.so.1 for this architecture (Debian's libaio1)"),
    }
}

/// The library's system calls go through linux-aio's entry: libc's `syscall` must not be
/// imported. Only meaningful for a `panic = "abort"` build; an unwinding build links std's
/// runtime, which imports it (see src/lib.rs).
fn imports() -> Outcome {
    let (_, undefined) = match dynamic_functions(&our_lib()) {
        Ok(d) => d,
        Err(outcome) => return outcome,
    };
    println!("    imports: {}", undefined.join(" "));
    if undefined.iter().any(|s| s.starts_with("_Unwind_")) {
        return skipped(
            "this libaio.so was built with panic = \"unwind\", so std's runtime is linked \
             (set LINUX_AIO_CAPI_LIB to a panic = \"abort\" build, see capi/README.md)",
        );
    }
    assert!(
        !undefined
            .iter()
            .any(|s| s == "syscall" || s.starts_with("syscall@")),
        "libaio.so imports syscall()"
    );
    Passed
}

/// Where build.rs put the C programs, or why there are none.
fn c_programs() -> Result<PathBuf, Outcome> {
    if let Some(dir) = std::env::var_os("LINUX_AIO_CAPI_TESTS") {
        return Ok(PathBuf::from(dir));
    }
    match (env!("CAPI_C_TESTS"), env!("CAPI_C_TESTS_SKIP")) {
        ("", why) => Err(skipped(format!("the C programs were not built: {why}"))),
        (dir, _) => Ok(PathBuf::from(dir)),
    }
}

/// Output of a C program: its lines, and whether it passed.
struct Run {
    lines: Vec<String>,
    ok: bool,
}

fn run_program(cmd: &mut Command) -> Run {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    lines.extend(
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(|l| format!("stderr: {l}")),
    );
    Run {
        ok: out.status.success(),
        lines,
    }
}

/// Prints a program's checks and turns them into an outcome.
fn judge(run: Run, context: &str) -> Outcome {
    let mut failed = Vec::new();
    for line in &run.lines {
        println!("    {line}");
        if line.starts_with("FAIL ") || line.starts_with("stderr: ") {
            failed.push(line.clone());
        }
    }
    if let Some(why) = run.lines.iter().find_map(|l| l.strip_prefix("skip all: ")) {
        return skipped(why.to_string());
    }
    assert!(
        run.ok && failed.is_empty(),
        "{context}: {} failed check(s), exit {}",
        failed.len(),
        if run.ok { "0" } else { "non-zero" }
    );
    Passed
}

fn c_test(program: &str, lib: Lib) -> Outcome {
    let dir = match c_programs() {
        Ok(dir) => dir,
        Err(outcome) => return outcome,
    };
    if let Some(why) = no_kernel_aio() {
        return skipped(why);
    }
    let mut cmd = Command::new(dir.join(program));
    cmd.arg(if lib == Lib::Ours { "ours" } else { "system" });
    let ours = our_lib().canonicalize().unwrap();
    match lib {
        Lib::Ours => {
            // The loader looks for the soname, libaio.so.1.
            let libdir = scratch(&format!("ours-{program}"));
            std::os::unix::fs::symlink(&ours, libdir.join("libaio.so.1")).unwrap();
            cmd.env("LD_LIBRARY_PATH", &libdir);
        }
        Lib::System => {
            if system_lib().is_none() {
                return skipped("the system's libaio (Debian's libaio1) is not installed");
            }
            cmd.env_remove("LD_LIBRARY_PATH");
        }
    }
    let run = run_program(&mut cmd);
    let loaded = run
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("lib "))
        .map(|p| Path::new(p).canonicalize().unwrap_or_else(|_| p.into()));
    match (lib, &loaded) {
        (Lib::Ours, Some(p)) => assert_eq!(p, &ours, "{program} did not load our library"),
        (Lib::System, Some(p)) => assert_ne!(p, &ours, "{program} loaded our library"),
        (_, None) => {}
    }
    judge(run, program)
}

/// Links rw.c against our `libaio.a` (no shared libaio at all), once per test run; skipped
/// where the C compiler build.rs used cannot run (e.g. in a VM guest).
fn static_program() -> Result<PathBuf, Outcome> {
    enum Built {
        Exe(PathBuf),
        Skip(String),
        Fail(String),
    }
    static BUILT: OnceLock<Built> = OnceLock::new();
    c_programs()?;
    let built = BUILT.get_or_init(|| {
        let archive = our_lib().with_file_name("libaio.a");
        if !archive.exists() {
            return Built::Fail(format!("no {}", archive.display()));
        }
        let exe = scratch("static").join("rw");
        let mut cmd = Command::new(env!("CAPI_CC"));
        cmd.args(env!("CAPI_CC_ARGS").split('\x1f').filter(|a| !a.is_empty()))
            .args([
                "-std=gnu11",
                "-O1",
                "-pthread",
                "-I",
                env!("CAPI_C_INCLUDE"),
            ])
            .arg(Path::new(env!("CAPI_C_SRC")).join("rw.c"))
            .arg("-o")
            .arg(&exe)
            .arg(&archive)
            // What a Rust staticlib may need besides libc (`rustc --print native-static-libs`).
            .args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl"]);
        match cmd.output() {
            Err(e) => Built::Skip(format!("the C compiler cannot run here: {cmd:?}: {e}")),
            Ok(out) if !out.status.success() => Built::Fail(format!(
                "{cmd:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )),
            Ok(_) => Built::Exe(exe),
        }
    });
    match built {
        Built::Exe(exe) => Ok(exe.clone()),
        Built::Skip(why) => Err(skipped(why.clone())),
        Built::Fail(e) => panic!("{e}"),
    }
}

fn static_build() -> Outcome {
    let exe = match static_program() {
        Ok(exe) => exe,
        Err(outcome) => return outcome,
    };
    let dynamic = match readelf("-d", &exe) {
        Ok(d) => d,
        Err(outcome) => return outcome,
    };
    assert!(
        !dynamic.contains("libaio"),
        "{} still needs a shared libaio:\n{dynamic}",
        exe.display()
    );
    println!("    {}: no libaio.so needed", exe.display());
    Passed
}

fn static_run() -> Outcome {
    let exe = match static_program() {
        Ok(exe) => exe,
        Err(outcome) => return outcome,
    };
    if let Some(why) = no_kernel_aio() {
        return skipped(why);
    }
    judge(
        run_program(&mut Command::new(&exe)),
        "rw.c linked with libaio.a",
    )
}
