//! libposixaio's tests: the C programs of `tests/c/` (built by build.rs against the system's
//! `<aio.h>`, linked against nothing but the C library) run three ways:
//!
//! - `ours`: with this package's `libposixaio.so` preloaded (`LD_PRELOAD`), on kernel AIO;
//! - `ours-sync`: preloaded in synchronous mode (`LINUX_AIO_POSIX_FORCE_SYNC=1`), the path a
//!   process takes where io_setup answers ENOSYS;
//! - `glibc`: alone, so that the C library's own POSIX AIO answers (glibc targets only).
//!
//! Each program prints one line per check (see tests/c/check.h): `ok`, `FAIL`, `skip` or
//! `note` (what an implementation chose where POSIX leaves it open, recorded, not judged). A
//! run fails on a `FAIL` line, on anything written to stderr, or on a non-zero exit. The last
//! test prints the side-by-side table of capi/README.md ("Against glibc"), and writes it to the
//! file `LINUX_AIO_POSIX_TABLE` names, if set.
//!
//! Besides: the exported names and soname (`readelf`), and one program linked with
//! `-lposixaio` instead of preloaded.
//!
//! Environment, all optional:
//! - `LINUX_AIO_POSIX_LIB`: the `libposixaio.so` to test (default: the one cargo built next to
//!   this binary), e.g. a `panic = "abort"` build;
//! - `LINUX_AIO_POSIX_TESTS`: the directory of the compiled C programs (default: where build.rs
//!   put them), to run this binary elsewhere, such as in a VM guest.

#[path = "../../../tests/support/runner.rs"]
mod runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use runner::{skipped, Outcome, Passed};

/// The exported functions: glibc's names, without versions (a preloaded unversioned definition
/// satisfies a program's versioned reference).
const EXPORTS: &[&str] = &[
    "aio_cancel",
    "aio_cancel64",
    "aio_error",
    "aio_error64",
    "aio_fsync",
    "aio_fsync64",
    "aio_read",
    "aio_read64",
    "aio_return",
    "aio_return64",
    "aio_suspend",
    "aio_suspend64",
    "aio_write",
    "aio_write64",
    "lio_listio",
    "lio_listio64",
];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Mode {
    Ours,
    OursSync,
    Glibc,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Ours => "ours",
            Mode::OursSync => "ours-sync",
            Mode::Glibc => "glibc",
        }
    }
}

/// The three runs of each C program (names as build.rs's PROGRAMS).
macro_rules! c_tests {
    ($($program:literal),*) => {
        vec![$(
            (concat!("ours: ", $program), (|| c_test($program, Mode::Ours)) as fn() -> Outcome),
            (concat!("ours-sync: ", $program), (|| c_test($program, Mode::OursSync)) as fn() -> Outcome),
            (concat!("glibc: ", $program), (|| c_test($program, Mode::Glibc)) as fn() -> Outcome),
        )*]
    };
}

fn main() {
    let mut tests: Vec<runner::Test> = vec![
        (
            "symbols: libposixaio.so exports glibc's aio_* names, soname libposixaio.so.1",
            symbols,
        ),
        (
            "linked: cancel.c built with -lposixaio runs against it",
            linked,
        ),
    ];
    tests.extend(c_tests!(
        "cancel", "error", "return", "suspend", "listio", "notify", "misuse", "review"
    ));
    tests.push(("table: the side-by-side results (capi/README.md)", table));
    runner::run("posix", &tests)
}

/// This package's `libposixaio.so`.
fn our_lib() -> PathBuf {
    if let Some(lib) = std::env::var_os("LINUX_AIO_POSIX_LIB") {
        return PathBuf::from(lib);
    }
    // target/<triple>/<profile>/deps/posix-<hash>; cargo puts the library in deps/ and its parent.
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps, deps.parent().unwrap()]
        .iter()
        .map(|d| d.join("libposixaio.so"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no libposixaio.so next to {}", exe.display()))
}

/// Why the kernel AIO run cannot happen here, if it cannot.
fn no_kernel_aio() -> Option<String> {
    static PROBE: OnceLock<Option<String>> = OnceLock::new();
    PROBE
        .get_or_init(|| match linux_aio_io_setup() {
            Some(e) if e == libc::ENOSYS => Some(
                "io_setup answers ENOSYS: no kernel AIO here (qemu-user?); the ours-sync run \
                 covers this library's path"
                    .into(),
            ),
            _ => None,
        })
        .clone()
}

/// io_setup(1) and io_destroy through libc's syscall(): the errno of a failure.
fn linux_aio_io_setup() -> Option<i32> {
    let mut ctx: libc::c_ulong = 0;
    // SAFETY: io_setup writes one aio_context_t through the pointer, which is valid.
    let r = unsafe { libc::syscall(libc::SYS_io_setup, 1 as libc::c_long, &mut ctx) };
    if r < 0 {
        return Some(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    // SAFETY: ctx is the context io_setup just created.
    unsafe { libc::syscall(libc::SYS_io_destroy, ctx) };
    None
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

fn symbols() -> Outcome {
    let lib = our_lib();
    let table = match readelf("--dyn-syms", &lib) {
        Ok(t) => t,
        Err(outcome) => return outcome,
    };
    let mut defined: Vec<String> = Vec::new();
    for line in table.lines() {
        let mut f: Vec<&str> = line.split_whitespace().collect();
        if f.last()
            .is_some_and(|w| w.starts_with('(') && w.ends_with(')'))
        {
            f.pop();
        }
        if f.len() < 8 || f[3] != "FUNC" || f[4] == "LOCAL" || f[f.len() - 2] == "UND" {
            continue;
        }
        defined.push(f[f.len() - 1].to_string());
    }
    defined.sort();
    println!("    {}: {}", lib.display(), defined.join(" "));
    assert_eq!(defined, EXPORTS, "exported functions of {}", lib.display());
    let dynamic = readelf("-d", &lib).unwrap_or_default();
    assert!(
        dynamic.contains("Library soname: [libposixaio.so.1]"),
        "soname of {}:\n{dynamic}",
        lib.display()
    );
    Passed
}

/// Where build.rs put the C programs.
fn c_programs() -> PathBuf {
    match std::env::var_os("LINUX_AIO_POSIX_TESTS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("POSIX_C_TESTS")),
    }
}

/// A fresh directory (in the target directory, or the temporary one) for one test's files,
/// named after this process.
fn scratch(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let beside_deps = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("posix-scratch"));
    let me = std::process::id();
    for base in beside_deps
        .into_iter()
        .chain([std::env::temp_dir().join("linux-aio-posix")])
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

/// One check line of a C program.
#[derive(Clone)]
struct Check {
    kind: String,
    text: String,
    detail: String,
}

/// Every run's checks, by program and id, for the table.
type Results = BTreeMap<(String, String), BTreeMap<Mode, Check>>;
/// The results, and the order in which each (program, id) first appeared.
type Table = (Results, Vec<(String, String)>);

fn results() -> &'static Mutex<Table> {
    static R: OnceLock<Mutex<Table>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Parses `<kind> <id> <text>[ => <detail>]`.
fn parse(line: &str) -> Option<(String, Check)> {
    let (kind, rest) = line.split_once(' ')?;
    if !matches!(kind, "ok" | "FAIL" | "skip" | "note") {
        return None;
    }
    let (id, rest) = rest.split_once(' ')?;
    let (text, detail) = rest.split_once(" => ").unwrap_or((rest, ""));
    Some((
        id.to_string(),
        Check {
            kind: kind.to_string(),
            text: text.to_string(),
            detail: detail.to_string(),
        },
    ))
}

fn record(program: &str, mode: Mode, lines: &[String]) {
    let mut guard = results().lock().unwrap();
    let (map, order) = &mut *guard;
    for (id, check) in lines.iter().filter_map(|l| parse(l)) {
        let key = (program.to_string(), id);
        if !map.contains_key(&key) {
            order.push(key.clone());
        }
        map.entry(key).or_default().insert(mode, check);
    }
}

/// Runs a C program, prints its lines, and judges them.
fn run_and_judge(mut cmd: Command, program: &str, mode: Mode, ours: Option<&Path>) -> Outcome {
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
    let mut failed = 0;
    for line in &lines {
        println!("    {line}");
        if line.starts_with("FAIL ") || line.starts_with("stderr: ") {
            failed += 1;
        }
    }
    record(program, mode, &lines);
    let loaded = lines
        .iter()
        .find_map(|l| l.strip_prefix("lib "))
        .map(|p| Path::new(p).canonicalize().unwrap_or_else(|_| p.into()));
    match (ours, &loaded) {
        (Some(lib), Some(p)) => assert_eq!(p, lib, "{program} did not use our library"),
        (None, Some(p)) => assert!(
            !p.to_string_lossy().contains("posixaio"),
            "{program} loaded our library"
        ),
        (_, None) => panic!("{program} printed no `lib` line"),
    }
    let ok = out.status.success();
    assert!(
        ok && failed == 0,
        "{program} ({}): {failed} failed check(s), exit {:?}",
        mode.arg(),
        out.status
    );
    Passed
}

fn c_test(program: &str, mode: Mode) -> Outcome {
    let exe = c_programs().join(program);
    if !exe.exists() {
        return skipped(format!("{} was not built", exe.display()));
    }
    let mut cmd = Command::new(&exe);
    cmd.arg(mode.arg()).env_remove("LD_PRELOAD");
    let ours = our_lib().canonicalize().unwrap();
    match mode {
        Mode::Ours => {
            if let Some(why) = no_kernel_aio() {
                return skipped(why);
            }
            cmd.env("LD_PRELOAD", &ours)
                .env_remove("LINUX_AIO_POSIX_FORCE_SYNC");
        }
        Mode::OursSync => {
            cmd.env("LD_PRELOAD", &ours)
                .env("LINUX_AIO_POSIX_FORCE_SYNC", "1");
        }
        Mode::Glibc => {
            if !cfg!(target_env = "gnu") {
                return skipped("not a glibc target: no glibc POSIX AIO to compare with");
            }
        }
    }
    run_and_judge(
        cmd,
        program,
        mode,
        (mode != Mode::Glibc).then_some(ours.as_path()),
    )
}

/// cancel.c linked with `-lposixaio` (no preloading), once; skipped where the C compiler
/// build.rs used cannot run (e.g. in a VM guest).
fn linked() -> Outcome {
    if let Some(why) = no_kernel_aio() {
        return skipped(why);
    }
    let ours = our_lib().canonicalize().unwrap();
    let dir = scratch("linked");
    std::os::unix::fs::symlink(&ours, dir.join("libposixaio.so")).unwrap();
    std::os::unix::fs::symlink(&ours, dir.join("libposixaio.so.1")).unwrap();
    let exe = dir.join("cancel");
    let mut cc = Command::new(env!("POSIX_CC"));
    cc.args(
        env!("POSIX_CC_ARGS")
            .split('\x1f')
            .filter(|a| !a.is_empty()),
    )
    .args(["-std=gnu11", "-O1", "-pthread"])
    .arg(Path::new(env!("POSIX_C_SRC")).join("cancel.c"))
    .arg("-o")
    .arg(&exe)
    .arg("-L")
    .arg(&dir)
    // before libc, so that the program's aio_* references bind to it
    .args(["-lposixaio", "-ldl"]);
    match cc.output() {
        Err(e) => return skipped(format!("the C compiler cannot run here: {cc:?}: {e}")),
        Ok(out) if !out.status.success() => {
            panic!("{cc:?} failed:\n{}", String::from_utf8_lossy(&out.stderr))
        }
        Ok(_) => {}
    }
    let needed = readelf("-d", &exe).unwrap_or_default();
    assert!(
        needed.contains("Shared library: [libposixaio.so.1]"),
        "{} does not need libposixaio.so.1:\n{needed}",
        exe.display()
    );
    let mut cmd = Command::new(&exe);
    cmd.arg("ours")
        .env_remove("LD_PRELOAD")
        .env_remove("LINUX_AIO_POSIX_FORCE_SYNC")
        .env("LD_LIBRARY_PATH", &dir);
    run_and_judge(cmd, "linked", Mode::Ours, Some(&ours))
}

fn cell(c: Option<&Check>) -> String {
    match c {
        None => "-".into(),
        Some(c) if c.detail.is_empty() => c.kind.clone(),
        Some(c) => format!("{}: {}", c.kind, c.detail.replace('|', "\\|")),
    }
}

/// The side-by-side table of every check, ours against glibc.
fn table() -> Outcome {
    let guard = results().lock().unwrap();
    let (map, order) = &*guard;
    if order.is_empty() {
        return skipped("no C program ran");
    }
    let mut md = String::from(
        "| program | id | sentence | ours (kernel AIO) | ours (synchronous) | glibc |\n\
         |---|---|---|---|---|---|\n",
    );
    for key in order.iter().filter(|(p, _)| p != "linked") {
        let runs = &map[key];
        let text = runs
            .values()
            .next()
            .map(|c| c.text.clone())
            .unwrap_or_default();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            key.0,
            key.1,
            text.replace('|', "\\|"),
            cell(runs.get(&Mode::Ours)),
            cell(runs.get(&Mode::OursSync)),
            cell(runs.get(&Mode::Glibc)),
        ));
    }
    print!("{md}");
    if let Some(path) = std::env::var_os("LINUX_AIO_POSIX_TABLE") {
        std::fs::write(&path, &md).unwrap();
        println!("    written to {}", Path::new(&path).display());
    }
    Passed
}
