//! Builds what the guest runs, for one target.
//!
//! - Static, in target/vm-build (its own target directory, so the static RUSTFLAGS never
//!   invalidate the normal builds): every integration-test executable of package linux-aio (a
//!   new one joins the guests by itself; the unit tests need no kernel and stay out),
//!   abi-probe's `layout` test, the probe (`linux-aio-probe`) and the init program
//!   (tests/vm-init).
//! - The C library: `libaio.so` and `libaio.a` as they ship (profile `capi`), the C test
//!   programs its build script compiles, and the harness tests/capi.rs, the very binary that
//!   `cargo test -p linux-aio-capi --target <triple>` runs under qemu-user. These are built as
//!   by hand, in the normal target directory, and are dynamically linked: the C programs must
//!   load a `libaio.so.1`, and the harness cannot be static (with `crt-static` in the RUSTFLAGS,
//!   the cc crate links the build script's C programs with `-static`, which fails on the
//!   shared libaio they link against). [`runtime`] finds the loader and libraries they need.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::root;

pub struct Programs {
    pub init: PathBuf,
    pub probe: PathBuf,
    /// (name in the guest's /tests, path here), in the order the guest runs them (by name).
    pub tests: Vec<(String, PathBuf)>,
    /// The shipping `libaio.so`; `libaio.a` is beside it.
    pub libaio: PathBuf,
    /// The C test programs of capi/tests/c (none without libaio.h: the harness says why).
    pub c_tests: Vec<PathBuf>,
}

/// glibc's static libc.a is in libc6-dev and in Debian's libc6-dev-<arch>-cross packages.
/// Debug info is stripped to keep the initramfs small (symbols stay, for backtraces).
const RUSTFLAGS: &str = "-C target-feature=+crt-static -C strip=debuginfo";

/// Where cargo builds: the guest's static binaries, or the normal build (as by hand).
#[derive(PartialEq)]
enum Build {
    Static,
    Normal,
}

pub fn build(target: &str) -> Result<Programs, String> {
    let tests_of = |a: &Artifact| {
        let linux_aio = a.manifest == root().join("Cargo.toml");
        let abi_probe = a.manifest == root().join("tests/abi-probe/Cargo.toml");
        a.kind == "test" && (linux_aio || (abi_probe && a.name == "layout"))
    };
    let built = cargo(
        target,
        Build::Static,
        &[
            "test",
            "--no-run",
            "-p",
            "linux-aio",
            "-p",
            "abi-probe",
            "--test",
            "*",
        ],
    )?;
    let mut tests: Vec<(String, PathBuf)> = executables(&built)
        .into_iter()
        .filter(tests_of)
        .map(|a| (a.name, a.executable))
        .collect();
    let capi = executables(&cargo(
        target,
        Build::Normal,
        &["test", "--no-run", "-p", "linux-aio-capi", "--test", "capi"],
    )?);
    let harness = capi
        .into_iter()
        .find(|a| a.kind == "test" && a.name == "capi");
    tests.push((
        "capi".into(),
        harness.ok_or("no capi test executable")?.executable,
    ));
    tests.sort();
    if let Some(w) = tests.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("two test binaries named {}", w[0].0));
    }
    let (libaio, c_tests) = capi_library(target)?;
    let built = executables(&cargo(
        target,
        Build::Static,
        &[
            "build",
            "-p",
            "linux-aio",
            "--bin",
            "linux-aio-probe",
            "-p",
            "vm-init",
            "--bin",
            "vm-init",
        ],
    )?);
    let find = |kind: &str, name: &str| {
        built
            .iter()
            .find(|a| a.kind == kind && a.name == name)
            .map(|a| a.executable.clone())
    };
    Ok(Programs {
        init: find("bin", "vm-init").ok_or("no vm-init executable")?,
        probe: find("bin", "linux-aio-probe").ok_or("no linux-aio-probe executable")?,
        tests,
        libaio,
        c_tests,
    })
}

/// `cargo build -p linux-aio-capi --profile capi`: the shipping `libaio.so`, and the C programs
/// that the build script compiled into `$OUT_DIR/c-tests`.
fn capi_library(target: &str) -> Result<(PathBuf, Vec<PathBuf>), String> {
    let messages = cargo(
        target,
        Build::Normal,
        &["build", "-p", "linux-aio-capi", "--profile", "capi"],
    )?;
    let capi = |l: &&String| l.contains("#linux-aio-capi@");
    let lib = messages
        .iter()
        .filter(capi)
        .filter(|l| json_str(l, "kind") == Some("cdylib"))
        .find_map(|l| json_str(l, "filenames"))
        .map(|f| Path::new(f).with_file_name("libaio.so"))
        .ok_or("cargo reported no libaio.so")?;
    let out_dir = messages
        .iter()
        .filter(capi)
        .filter(|l| json_str(l, "reason") == Some("build-script-executed"))
        .find_map(|l| json_str(l, "out_dir"))
        .ok_or("cargo reported no build script output of linux-aio-capi")?;
    let mut c_tests: Vec<PathBuf> = std::fs::read_dir(Path::new(out_dir).join("c-tests"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    c_tests.sort();
    Ok((lib, c_tests))
}

/// Debian's multiarch name of a target's glibc (its libraries' directory in the guest).
pub fn multiarch(target: &str) -> &'static str {
    match target {
        "x86_64-unknown-linux-gnu" => "x86_64-linux-gnu",
        "aarch64-unknown-linux-gnu" => "aarch64-linux-gnu",
        "riscv64gc-unknown-linux-gnu" => "riscv64-linux-gnu",
        "powerpc64le-unknown-linux-gnu" => "powerpc64le-linux-gnu",
        "armv7-unknown-linux-gnueabihf" => "arm-linux-gnueabihf",
        "i686-unknown-linux-gnu" => "i386-linux-gnu",
        "s390x-unknown-linux-gnu" => "s390x-linux-gnu",
        _ => unreachable!("architecture checked by target_of"),
    }
}

/// Where Debian's cross packages put a target's glibc: /usr/<dir>/lib. The multiarch name but
/// for i386, whose cross toolchain is named after i686.
fn cross_dir(target: &str) -> &'static str {
    match target {
        "i686-unknown-linux-gnu" => "i686-linux-gnu",
        _ => multiarch(target),
    }
}

/// What the dynamically linked `elfs` need to run, as (path in the guest, path here): the
/// dynamic loader at the path they name (PT_INTERP), and every library they need (DT_NEEDED,
/// transitively) in /lib/<multiarch>, as on Debian. The files are the target's glibc that they
/// were linked against: Debian's cross packages in /usr/<multiarch>/lib, or this machine's own
/// /lib/<multiarch>. Libraries found beside `elfs` (libaio.so.1) are not this function's.
pub fn runtime(target: &str, elfs: &[&Path]) -> Result<Vec<(String, PathBuf)>, String> {
    let m = multiarch(target);
    let cross = PathBuf::from(format!("/usr/{}/lib", cross_dir(target)));
    let dir = if cross.join("libc.so.6").exists() {
        cross
    } else {
        PathBuf::from(format!("/lib/{m}"))
    };
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut todo: Vec<PathBuf> = elfs.iter().map(|p| p.to_path_buf()).collect();
    while let Some(elf) = todo.pop() {
        let headers = readelf(&["-l", "-d"], &elf)?;
        for line in headers.lines() {
            let (guest, name) = if let Some(interp) = bracketed(line, "program interpreter: ") {
                let name = Path::new(interp).file_name().unwrap().to_string_lossy();
                (interp.to_string(), name.into_owned())
            } else if let Some(lib) = bracketed(line, "(NEEDED)") {
                if lib == "libaio.so.1" {
                    continue;
                }
                (format!("/lib/{m}/{lib}"), lib.to_string())
            } else {
                continue;
            };
            if files.iter().any(|(g, _)| *g == guest) {
                continue;
            }
            let host = dir.join(&name);
            if !host.exists() {
                return Err(format!(
                    "{} needs {name}: not in {}",
                    elf.display(),
                    dir.display()
                ));
            }
            todo.push(host.clone());
            files.push((guest, host));
        }
    }
    files.sort();
    Ok(files)
}

/// The bracketed name of a line of readelf's output: after `marker`, up to `]` and after any
/// `[` (`[Requesting program interpreter: /lib/ld.so]`, `(NEEDED)  Shared library: [libc.so.6]`).
fn bracketed<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = rest.split_once('[').map_or(rest, |(_, r)| r);
    rest.split_once(']').map(|(name, _)| name)
}

fn readelf(flags: &[&str], elf: &Path) -> Result<String, String> {
    let out = Command::new("readelf")
        .arg("-W")
        .args(flags)
        .arg(elf)
        .output()
        .map_err(|e| format!("readelf: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "readelf {}: {}",
            elf.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An executable that cargo reported.
struct Artifact {
    manifest: PathBuf,
    kind: String,
    name: String,
    executable: PathBuf,
}

/// Runs `cargo <args> --target <target>` (diagnostics shown) and returns its JSON messages.
fn cargo(target: &str, build: Build, args: &[&str]) -> Result<Vec<String>, String> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root())
        .args(args)
        .args([
            "--target",
            target,
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped());
    if build == Build::Static {
        cmd.arg("--target-dir")
            .arg(root().join("target/vm-build"))
            .env("RUSTFLAGS", RUSTFLAGS)
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
    }
    let mut child = cmd.spawn().map_err(|e| format!("cargo: {e}"))?;
    let messages = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    match child.wait() {
        Ok(s) if s.success() => Ok(messages),
        _ => Err(format!("cargo {} --target {target} failed", args.join(" "))),
    }
}

/// The executables among cargo's messages.
fn executables(messages: &[String]) -> Vec<Artifact> {
    messages
        .iter()
        .filter_map(|line| {
            Some(Artifact {
                executable: json_str(line, "executable")?.into(),
                manifest: json_str(line, "manifest_path")?.into(),
                name: json_str(line, "name")?.into(),
                kind: json_str(line, "kind")?.into(),
            })
        })
        .collect()
}

/// The first string value of `"key":` in one line of cargo's JSON, or the first element when the
/// value is an array of strings. Enough for what is read here: `"name"` and `"kind"` occur first
/// in `"target"`, the other keys read occur once, and paths and names hold no quotes or
/// backslashes.
fn json_str<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let rest = &line[line.find(&pattern)? + pattern.len()..];
    let rest = rest.strip_prefix('[').unwrap_or(rest).strip_prefix('"')?;
    rest.split('"').next()
}

#[cfg(test)]
mod tests {
    #[test]
    fn bracketed() {
        let interp = "      [Requesting program interpreter: /lib/ld-linux-aarch64.so.1]";
        let needed = " 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]";
        let b = super::bracketed;
        assert_eq!(
            b(interp, "program interpreter: "),
            Some("/lib/ld-linux-aarch64.so.1")
        );
        assert_eq!(b(needed, "(NEEDED)"), Some("libc.so.6"));
        assert_eq!(b(needed, "program interpreter: "), None);
    }
}
