//! Builds what the guest runs, as static binaries for one target, in target/vm-build (its own
//! target directory, so the static RUSTFLAGS never invalidate the normal builds): every
//! integration-test executable of package linux-aio (a new one joins the guests by itself; the
//! unit tests need no kernel and stay out), abi-probe's `layout` test, the `probe` example and
//! the init program (tests/vm-init).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::root;

pub struct Programs {
    pub init: PathBuf,
    pub probe: PathBuf,
    /// (name in the guest's /tests, path here), in the order the guest runs them (by name).
    pub tests: Vec<(String, PathBuf)>,
}

/// glibc's static libc.a is in libc6-dev and in Debian's libc6-dev-<arch>-cross packages.
/// Debug info is stripped to keep the initramfs small (symbols stay, for backtraces).
const RUSTFLAGS: &str = "-C target-feature=+crt-static -C strip=debuginfo";

pub fn build(target: &str) -> Result<Programs, String> {
    let tests_of = |a: &Artifact| {
        let linux_aio = a.manifest == root().join("Cargo.toml");
        let abi_probe = a.manifest == root().join("tests/abi-probe/Cargo.toml");
        a.kind == "test" && (linux_aio || (abi_probe && a.name == "layout"))
    };
    let built = cargo(
        target,
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
    let mut tests: Vec<(String, PathBuf)> = built
        .into_iter()
        .filter(tests_of)
        .map(|a| (a.name, a.executable))
        .collect();
    tests.sort();
    if let Some(w) = tests.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("two test binaries named {}", w[0].0));
    }
    let built = cargo(
        target,
        &[
            "build",
            "-p",
            "linux-aio",
            "--example",
            "probe",
            "-p",
            "vm-init",
            "--bin",
            "vm-init",
        ],
    )?;
    let find = |kind: &str, name: &str| {
        built
            .iter()
            .find(|a| a.kind == kind && a.name == name)
            .map(|a| a.executable.clone())
    };
    Ok(Programs {
        init: find("bin", "vm-init").ok_or("no vm-init executable")?,
        probe: find("example", "probe").ok_or("no probe executable")?,
        tests,
    })
}

/// An executable that cargo reported.
struct Artifact {
    manifest: PathBuf,
    kind: String,
    name: String,
    executable: PathBuf,
}

/// Runs `cargo <args> --target <target>` (diagnostics shown) and returns its executables.
fn cargo(target: &str, args: &[&str]) -> Result<Vec<Artifact>, String> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root())
        .args(args)
        .args([
            "--target",
            target,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--target-dir")
        .arg(root().join("target/vm-build"))
        .env("RUSTFLAGS", RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cargo: {e}"))?;
    let mut found = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let (Some(exe), Some(manifest), Some(name), Some(kind)) = (
            json_str(&line, "executable"),
            json_str(&line, "manifest_path"),
            json_str(&line, "name"),
            json_str(&line, "kind"),
        ) else {
            continue;
        };
        found.push(Artifact {
            manifest: manifest.into(),
            kind: kind.into(),
            name: name.into(),
            executable: exe.into(),
        });
    }
    match child.wait() {
        Ok(s) if s.success() => Ok(found),
        _ => Err(format!("cargo {} --target {target} failed", args.join(" "))),
    }
}

/// The first string value of `"key":` in one line of cargo's JSON, or the first element when the
/// value is an array of strings. Enough for what is read here: `"name"` and `"kind"` occur first
/// in `"target"`, and paths and names hold no quotes or backslashes.
fn json_str<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let rest = &line[line.find(&pattern)? + pattern.len()..];
    let rest = rest.strip_prefix('[').unwrap_or(rest).strip_prefix('"')?;
    rest.split('"').next()
}
