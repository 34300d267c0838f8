//! Build script of libposixaio.
//!
//! 1. Links `libposixaio.so` with the soname `libposixaio.so.1`, and `-z nodelete` (a service
//!    thread and requests in flight may outlive a `dlclose`).
//! 2. Compiles probe/probe.c for the target against its C library's `<aio.h>` (and, for an
//!    x86_64 glibc target where musl-gcc is installed, against musl's too), linked into the
//!    tests only: tests/layout.rs compares it with the Rust declarations of `src/abi.rs`.
//! 3. Compiles the C programs of tests/c/ for the target against its `<aio.h>`, and tells
//!    tests/posix.rs where they are. They link nothing but the C library: the harness runs them
//!    with this library preloaded, and without it (glibc's own POSIX AIO).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The C test programs, `tests/c/<name>.c` (the list tests/posix.rs runs).
const PROGRAMS: &[&str] = &[
    "cancel", "error", "return", "suspend", "listio", "notify", "misuse", "review",
];

fn main() {
    println!("cargo::rustc-cdylib-link-arg=-Wl,-soname,libposixaio.so.1");
    println!("cargo::rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo::rerun-if-changed=probe/probe.c");
    println!("cargo::rerun-if-changed=tests/c");
    println!("cargo::rustc-check-cfg=cfg(posix_probe_musl)");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());

    let mut probe = cc::Build::new();
    probe.file(dir.join("probe/probe.c")).cargo_metadata(false);
    probe.compile("posix_probe_glibc");
    println!(
        "cargo::rustc-link-arg-tests={}",
        out.join("libposix_probe_glibc.a").display()
    );
    let target = env::var("TARGET").unwrap();
    if target == "x86_64-unknown-linux-gnu" && have("musl-gcc") {
        let mut musl = cc::Build::new();
        musl.compiler("musl-gcc")
            .file(dir.join("probe/probe.c"))
            .define("PROBE_TABLE", "posix_probe_musl")
            .cargo_metadata(false);
        musl.compile("posix_probe_musl");
        println!(
            "cargo::rustc-link-arg-tests={}",
            out.join("libposix_probe_musl.a").display()
        );
        println!("cargo::rustc-cfg=posix_probe_musl");
    }

    c_tests(&dir, &out);
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Builds tests/c/*.c into `$OUT_DIR/c-tests/`, and passes the harness what it needs through
/// `POSIX_*` variables.
fn c_tests(dir: &Path, out: &Path) {
    let tests = out.join("c-tests");
    fs::create_dir_all(&tests).unwrap();
    let cc = cc::Build::new().get_compiler();
    let src = dir.join("tests/c");
    for name in PROGRAMS {
        let mut cmd = cc.to_command();
        cmd.args(["-std=gnu11", "-O1", "-Wall", "-Wextra", "-pthread"])
            .arg(src.join(format!("{name}.c")))
            .arg("-o")
            .arg(tests.join(name))
            .args(["-lrt", "-ldl"]);
        run(&mut cmd, &format!("compiling tests/c/{name}.c"));
    }
    println!("cargo::rustc-env=POSIX_C_TESTS={}", tests.display());
    println!("cargo::rustc-env=POSIX_C_SRC={}", src.display());
    println!("cargo::rustc-env=POSIX_CC={}", cc.path().display());
    let args: Vec<String> = cc
        .args()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!("cargo::rustc-env=POSIX_CC_ARGS={}", args.join("\x1f"));
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        println!("cargo::warning={what}: {line}");
    }
    assert!(out.status.success(), "{what} failed: {cmd:?}\n{stderr}");
}
