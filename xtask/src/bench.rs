//! `cargo xtask bench [--quick] [--json] [other options of linux-aio-bench]`: builds the
//! benchmark (`bench/`, package `linux-aio-bench`) in release mode and runs it, passing every
//! argument through. The report goes to stdout (a table, or JSON with `--json`); build output
//! and progress go to stderr.
//!
//! Installs nothing: the C competitors need Debian's `libaio-dev` and `liburing-dev`, and when
//! either header is missing this says which apt packages to install and stops.

use std::path::Path;
use std::process::Command;

/// The headers the benchmark's C code includes, and the Debian package of each.
const NEEDED: &[(&str, &str)] = &[("libaio.h", "libaio-dev"), ("liburing.h", "liburing-dev")];

/// The apt packages whose header is not installed.
fn missing_packages() -> Vec<&'static str> {
    NEEDED
        .iter()
        .filter(|(header, _)| {
            !["/usr/include", "/usr/local/include"]
                .iter()
                .any(|dir| Path::new(dir).join(header).exists())
        })
        .map(|(_, package)| *package)
        .collect()
}

/// Runs the benchmark with `args` (everything after `bench`); returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let missing = missing_packages();
    if !missing.is_empty() {
        eprintln!(
            "xtask bench: missing apt packages: {} (install with: apt-get install -y {})",
            missing.join(" "),
            missing.join(" ")
        );
        return 2;
    }
    let root = crate::root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let package = ["--release", "--quiet", "--package", "linux-aio-bench"];
    eprintln!("xtask bench: building linux-aio-bench (release)");
    let built = Command::new(&cargo)
        .current_dir(&root)
        .arg("build")
        .args(package)
        .status();
    match built {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("xtask bench: build failed ({s})");
            return 1;
        }
        Err(e) => {
            eprintln!("xtask bench: cannot run {cargo}: {e}");
            return 1;
        }
    }
    // `cargo run` finds the binary wherever the target directory is (CARGO_TARGET_DIR too);
    // it is already built, so this only runs it. The 1 GiB file stays in target/bench-data
    // (the benchmark's default) between runs.
    let status = Command::new(&cargo)
        .current_dir(&root)
        .arg("run")
        .args(package)
        .arg("--")
        .args(args)
        .status();
    match status {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("xtask bench: cannot run the benchmark: {e}");
            1
        }
    }
}
