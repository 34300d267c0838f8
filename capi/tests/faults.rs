//! The C library under emulated kernels and faults (tests/faults/aiofault.c, preloaded): the
//! program `tests/faults/faults.c` runs against this package's `libaio.so.1` and against the
//! system's libaio 0.3.113 under the same `LINUX_AIO_FAULTS`, and the two must print the same
//! return values, which must also be the ones expected here.
//!
//! `LINUX_AIO_CAPI_LIB` names another build of ours to test (as for tests/capi.rs).

#[path = "../../tests/support/faults.rs"]
mod faults;
#[path = "../../tests/support/runner.rs"]
mod runner;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use runner::{skipped, Outcome, Passed};

const AIOFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/faults/aiofault.c");
const PROGRAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/faults/faults.c");
const SYSTEM_LIBAIO: &str = "/usr/lib/x86_64-linux-gnu/libaio.so.1";

/// (test name, program scenario, LINUX_AIO_FAULTS, expected output).
type Case = (&'static str, &'static str, &'static str, &'static str);

const CASES: &[Case] = &[
    (
        "io_setup EAGAIN (fs.aio-max-nr)",
        "setup",
        "setup=EAGAIN*2",
        "io_setup -11\nio_queue_init -11\nio_setup again 0\nio_destroy 0",
    ),
    (
        "io_setup ENOMEM",
        "setup",
        "setup=ENOMEM*2",
        "io_setup -12\nio_queue_init -12\nio_setup again 0\nio_destroy 0",
    ),
    (
        "aio_max_nr reached and freed",
        "max_nr",
        "aio_max_nr=64",
        "io_setup 32 0\nio_setup 32 more 0\nio_setup 1 past the limit -11\n\
         io_queue_init 1 past the limit -11\nio_destroy 0\nio_setup 16 after 0\nio_destroy 0\n\
         io_destroy 0",
    ),
    (
        "io_submit EAGAIN mid-batch",
        "submit",
        "submit=EAGAIN#777*0",
        "io_submit of 3, the second refused 1\nio_submit from the refused one -11\n\
         io_submit of the last 1\nio_getevents 2\nio_destroy 0",
    ),
    (
        "io_submit ENOMEM mid-batch",
        "submit",
        "submit=ENOMEM#777*0",
        "io_submit of 3, the second refused 1\nio_submit from the refused one -12\n\
         io_submit of the last 1\nio_getevents 2\nio_destroy 0",
    ),
    (
        "io_submit EFAULT mid-batch",
        "submit",
        "submit=EFAULT#777*0",
        "io_submit of 3, the second refused 1\nio_submit from the refused one -14\n\
         io_submit of the last 1\nio_getevents 2\nio_destroy 0",
    ),
    (
        "io_submit EBADF mid-batch",
        "submit",
        "submit=EBADF#777*0",
        "io_submit of 3, the second refused 1\nio_submit from the refused one -9\n\
         io_submit of the last 1\nio_getevents 2\nio_destroy 0",
    ),
    (
        "io_getevents and io_pgetevents EINTR",
        "getevents",
        "getevents=EINTR,pgetevents=EINTR",
        "io_submit poll 1\nio_getevents (faulted) -4\nio_getevents (times out) 0\n\
         io_pgetevents (faulted) -4\nio_pgetevents (times out) 0\nio_cancel -115\n\
         io_getevents of the cancelled poll 1\nio_destroy 0",
    ),
    (
        "io_getevents and io_pgetevents EFAULT",
        "getevents",
        "getevents=EFAULT,pgetevents=EFAULT",
        "io_submit poll 1\nio_getevents (faulted) -14\nio_getevents (times out) 0\n\
         io_pgetevents (faulted) -14\nio_pgetevents (times out) 0\nio_cancel -115\n\
         io_getevents of the cancelled poll 1\nio_destroy 0",
    ),
    (
        "Linux 4.17: no POLL, no io_pgetevents",
        "era",
        "era=4.17",
        "io_submit write + poll 1\nio_submit poll -22\nio_pgetevents -38\nio_getevents 1\n\
         io_destroy 0",
    ),
    (
        "io_cancel before Linux 3.12",
        "cancel",
        "cancel=pre3.12",
        "io_submit poll 1\nio_cancel 0\nresult data 4660\nresult obj is the iocb 1\n\
         result res 0\nio_getevents (no duplicate) 0\nio_submit write 1\n\
         io_cancel of the write -11\nio_getevents 1\nio_destroy 0",
    ),
    (
        "misaligned ctxp and events (no fault emulated)",
        "misaligned",
        "log",
        "io_setup, ctxp misaligned 0\nio_submit 1\nio_getevents, events misaligned 1\n\
         event res 8\nio_destroy 0\nio_queue_init, ctxp misaligned 0\nio_queue_release 0",
    ),
    (
        "io_destroy EINVAL",
        "destroy",
        "destroy=EINVAL",
        "io_destroy (refused) -22\nio_queue_release 0",
    ),
];

macro_rules! cases {
    ($($i:literal)*) => {
        [$((CASES[$i].0, (|| case(&CASES[$i])) as fn() -> Outcome)),*]
    };
}

fn main() {
    runner::run("capi-faults", &cases!(0 1 2 3 4 5 6 7 8 9 10 11 12))
}

/// This package's `libaio.so` (as tests/capi.rs finds it).
fn our_lib() -> PathBuf {
    if let Some(lib) = std::env::var_os("LINUX_AIO_CAPI_LIB") {
        return PathBuf::from(lib);
    }
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps, deps.parent().unwrap()]
        .iter()
        .map(|d| d.join("libaio.so"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no libaio.so next to {}", exe.display()))
}

/// The compiled program and a directory holding our library as `libaio.so.1`, or why not.
fn prepared() -> Result<(PathBuf, PathBuf), String> {
    static PREPARED: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    PREPARED
        .get_or_init(|| {
            match linux_aio::Context::new(1) {
                Err(e) if e == linux_aio::Errno::NOSYS => {
                    return Err("io_setup answers ENOSYS: no kernel AIO here".into())
                }
                _ => {}
            }
            faults::library(AIOFAULT)?;
            if !Path::new("/usr/include/libaio.h").exists() || !Path::new(SYSTEM_LIBAIO).exists() {
                return Err(format!(
                    "libaio.h or {SYSTEM_LIBAIO} missing (Debian's libaio-dev, x86_64)"
                ));
            }
            let dir = faults::scratch_dir("capi-faults");
            let exe = dir.join("faults");
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
            let out = Command::new(&cc)
                .args(["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror"])
                .arg(PROGRAM)
                .arg("-o")
                .arg(&exe)
                .arg(SYSTEM_LIBAIO)
                .output()
                .map_err(|e| format!("no C compiler ({cc}: {e})"))?;
            assert!(
                out.status.success(),
                "compiling faults.c: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let ours = dir.join("ours");
            std::fs::create_dir_all(&ours).unwrap();
            let _ = std::fs::remove_file(ours.join("libaio.so.1"));
            std::os::unix::fs::symlink(our_lib().canonicalize().unwrap(), ours.join("libaio.so.1"))
                .unwrap();
            Ok((exe, ours))
        })
        .clone()
}

fn output(exe: &Path, scenario: &str, config: &str, libdir: Option<&Path>) -> String {
    let lib = faults::library(AIOFAULT).unwrap();
    let mut cmd = Command::new(exe);
    cmd.arg(scenario);
    match libdir {
        Some(dir) => cmd.env("LD_LIBRARY_PATH", dir),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    faults::under(&mut cmd, &lib, config);
    let out = faults::run(&mut cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "faults {scenario}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

fn case(&(_, scenario, config, expected): &Case) -> Outcome {
    if std::env::consts::ARCH != "x86_64" {
        return skipped("compared with Debian's x86_64 libaio only");
    }
    let (exe, ours) = match prepared() {
        Ok(p) => p,
        Err(why) => return skipped(why),
    };
    let system = output(&exe, scenario, config, None);
    let mine = output(&exe, scenario, config, Some(&ours));
    println!("    under {config}:");
    for (s, m) in system.lines().zip(mine.lines()) {
        println!("      system: {s:<50} ours: {m}");
    }
    assert_eq!(mine, system, "ours differs from libaio 0.3.113");
    assert_eq!(mine, expected);
    Passed
}
