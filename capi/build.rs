//! Build script of the C library.
//!
//! 1. Links `libaio.so` as libaio 0.3.113 is linked: the version nodes of `libaio.map`, the
//!    soname `libaio.so.1`. rustc also hands the linker a version script of its own (anonymous,
//!    ending in `local: *`). GNU ld refuses to combine an anonymous script with named versions
//!    ("anonymous version tag cannot be combined with other version tags"); lld accepts the pair,
//!    so the shared library is always linked by rustc's bundled lld (already the default linker
//!    of x86_64-unknown-linux-gnu; for the other targets the C compiler driver is told to use it).
//! 2. Compiles the C test programs of `tests/c/` for the target against the system's `libaio.h`
//!    (Debian's libaio-dev), and tells `tests/capi.rs` where they are. They are linked against the
//!    system's libaio when one is installed for the target, as any Debian program is, and
//!    otherwise against a stub with the same symbol versions; either way they run against ours
//!    or the system's library by `LD_LIBRARY_PATH`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The C test programs, `tests/c/<name>.c` (the list `tests/capi.rs` runs).
const PROGRAMS: &[&str] = &[
    "setup", "rw", "cancel", "queue", "threads", "syscalls", "fork",
];

/// Every entry point of libaio 0.3.113 (`name@@VERSION` is the default, `name@VERSION` a
/// compatibility one), for the link stub.
const EXPORTS: &[&str] = &[
    "io_queue_init@@LIBAIO_0.1",
    "io_queue_release@@LIBAIO_0.1",
    "io_queue_run@@LIBAIO_0.1",
    "io_submit@@LIBAIO_0.1",
    "io_queue_wait@LIBAIO_0.1",
    "io_cancel@LIBAIO_0.1",
    "io_getevents@LIBAIO_0.1",
    "io_setup@@LIBAIO_0.4",
    "io_destroy@@LIBAIO_0.4",
    "io_cancel@@LIBAIO_0.4",
    "io_getevents@@LIBAIO_0.4",
    "io_queue_wait@@LIBAIO_0.4",
    "io_pgetevents@@LIBAIO_0.5",
];

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo::rerun-if-changed=libaio.map");
    println!("cargo::rerun-if-changed=tests/c");
    let map = dir.join("libaio.map");

    println!(
        "cargo::rustc-cdylib-link-arg=-Wl,--version-script={}",
        map.display()
    );
    println!("cargo::rustc-cdylib-link-arg=-Wl,-soname,libaio.so.1");
    if let Some(gcc_ld) = bundled_lld() {
        println!("cargo::rustc-cdylib-link-arg=-B{}", gcc_ld.display());
    }
    println!("cargo::rustc-cdylib-link-arg=-fuse-ld=lld");

    c_tests(&dir, &out, &map);
}

/// The directory of rustc's `ld.lld` wrapper (for the C compiler driver's `-B`), if the
/// toolchain has one; otherwise the system's `ld.lld` must do.
fn bundled_lld() -> Option<PathBuf> {
    let rustc = env::var("RUSTC").ok()?;
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let dir = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(env::var("HOST").ok()?)
        .join("bin/gcc-ld");
    dir.join("ld.lld").exists().then_some(dir)
}

/// Builds `tests/c/*.c` into `$OUT_DIR/c-tests/`, and passes the harness what it needs through
/// `CAPI_*` variables. Without `libaio.h` nothing is built and the harness reports why.
fn c_tests(dir: &Path, out: &Path, map: &Path) {
    let header = Path::new("/usr/include/libaio.h");
    if !header.exists() {
        println!(
            "cargo::rustc-env=CAPI_C_TESTS_SKIP=/usr/include/libaio.h not found: install libaio-dev"
        );
        println!("cargo::rustc-env=CAPI_C_TESTS=");
        return;
    }
    let tests = out.join("c-tests");
    let include = out.join("include");
    fs::create_dir_all(&tests).unwrap();
    fs::create_dir_all(&include).unwrap();
    // libaio.h is the same on every architecture; copied alone so that a cross compiler does not
    // see the host's other headers.
    fs::copy(header, include.join("libaio.h")).unwrap();

    let cc = cc::Build::new().get_compiler();
    let libaio = match system_libaio() {
        Some(lib) => lib,
        None => stub_libaio(&cc, out, map),
    };
    let src = dir.join("tests/c");
    for name in PROGRAMS {
        let mut cmd = cc.to_command();
        cmd.args(["-std=gnu11", "-O1", "-Wall", "-Wextra", "-pthread"])
            .arg("-I")
            .arg(&include)
            .arg(src.join(format!("{name}.c")))
            .arg("-o")
            .arg(tests.join(name))
            .arg(&libaio)
            .arg("-ldl");
        run(&mut cmd, &format!("compiling tests/c/{name}.c"));
    }
    println!("cargo::rustc-env=CAPI_C_TESTS={}", tests.display());
    println!("cargo::rustc-env=CAPI_C_TESTS_SKIP=");
    println!("cargo::rustc-env=CAPI_C_SRC={}", src.display());
    println!("cargo::rustc-env=CAPI_C_INCLUDE={}", include.display());
    println!("cargo::rustc-env=CAPI_CC={}", cc.path().display());
    let args: Vec<String> = cc
        .args()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!("cargo::rustc-env=CAPI_CC_ARGS={}", args.join("\x1f"));
}

/// The system's libaio for the target (Debian's multiarch path), when installed.
fn system_libaio() -> Option<PathBuf> {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return None;
    }
    let multiarch = match (
        var("CARGO_CFG_TARGET_ARCH").as_str(),
        var("CARGO_CFG_TARGET_ENDIAN").as_str(),
    ) {
        ("x86_64", _) => "x86_64-linux-gnu",
        ("aarch64", "little") => "aarch64-linux-gnu",
        ("riscv64", _) => "riscv64-linux-gnu",
        ("powerpc64", "little") => "powerpc64le-linux-gnu",
        ("arm", "little") if var("CARGO_CFG_TARGET_ABI") == "eabi" => "arm-linux-gnueabi",
        ("arm", "little") => "arm-linux-gnueabihf",
        ("x86", _) => "i386-linux-gnu",
        ("s390x", _) => "s390x-linux-gnu",
        _ => return None,
    };
    ["/usr/lib", "/lib"]
        .iter()
        .map(|d| Path::new(d).join(multiarch).join("libaio.so.1"))
        .find(|p| p.exists())
}

/// A shared library with libaio's soname and symbol versions and empty functions, to link the
/// test programs against where the target has no system libaio (cross builds).
fn stub_libaio(cc: &cc::Tool, out: &Path, map: &Path) -> PathBuf {
    let dir = out.join("stub");
    fs::create_dir_all(&dir).unwrap();
    let mut c = String::from("/* Generated by build.rs: link-time stand-in for libaio.so.1. */\n");
    for (i, symbol) in EXPORTS.iter().enumerate() {
        c += &format!(
            "int stub_{i}(void) {{ return 0; }}\n__asm__(\".symver stub_{i}, {symbol}\");\n"
        );
    }
    fs::write(dir.join("stub.c"), c).unwrap();
    let lib = dir.join("libaio.so.1");
    let mut cmd = cc.to_command();
    cmd.args(["-shared", "-nostdlib", "-fPIC"])
        .arg(dir.join("stub.c"))
        .arg("-o")
        .arg(&lib)
        .arg(format!("-Wl,--version-script={}", map.display()))
        .arg("-Wl,-soname,libaio.so.1");
    run(&mut cmd, "linking the libaio stub");
    lib
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
