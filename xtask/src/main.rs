//! `cargo xtask test [--arch A] [--no-install]`: the whole suite, ending with one line
//! `N passed, N failed, N skipped`.
//! `cargo xtask vm --arch A [--kernel S]`: the kernel-facing suite inside qemu-system guests
//! (see vm/mod.rs).
//! `cargo xtask soak [--fuzz-seconds N]`: the long soak, 64k contexts, and long fuzz runs.
//!
//! Every step is a check. A test binary's summary line adds its own counts; any other step
//! (fmt, clippy, a build, the generator check) counts as one test. A step that cannot run here
//! is counted as skipped and its reason printed, never left out silently.

mod bench;
#[path = "../../tests/support/counts.rs"]
mod counts;
mod probes;
mod public_api;
// arch/select.rs's choices, as unit tests (it also defines what build scripts call).
#[cfg(test)]
#[allow(dead_code)]
mod select;
mod steps;
mod vm;

use counts::parse_counts;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The seven architectures with a module: (name used on the command line, Rust target). Each
/// has a qemu-system guest; the name is the guest's.
pub const ARCHES: &[(&str, &str)] = &[
    ("x86_64", "x86_64-unknown-linux-gnu"),
    ("aarch64", "aarch64-unknown-linux-gnu"),
    ("riscv64", "riscv64gc-unknown-linux-gnu"),
    ("ppc64le", "powerpc64le-unknown-linux-gnu"),
    ("armv7", "armv7-unknown-linux-gnueabihf"),
    ("i686", "i686-unknown-linux-gnu"),
    ("s390x", "s390x-unknown-linux-gnu"),
];

/// How another target of an architecture module is checked besides its main target.
#[derive(Clone, Copy, PartialEq)]
pub enum Check {
    /// rustup has its std: clippy, and the linux-aio suites under qemu-user.
    Full,
    /// rustup has no std for it here: nightly's `-Zbuild-std`, the linux-aio suites and the C
    /// layout cross-check under qemu-user.
    BuildStd,
    /// As `BuildStd`, but nothing links (no C library for it on Debian): clippy only.
    BuildStdNoLink,
}

/// More targets of the modules above: (architecture, target, how it is checked).
pub const MORE_TARGETS: &[(&str, &str, Check)] = &[
    // Thumb code, where r7 is the frame pointer (see arch/arm/syscall.rs).
    ("armv7", "thumbv7neon-unknown-linux-gnueabihf", Check::Full),
    ("armv7", "arm-unknown-linux-gnueabi", Check::BuildStd),
    (
        "armv7",
        "armv7-unknown-linux-musleabihf",
        Check::BuildStdNoLink,
    ),
    ("i686", "i586-unknown-linux-gnu", Check::Full),
];

pub fn target_of(arch: &str) -> &'static str {
    ARCHES
        .iter()
        .find(|(a, _)| *a == arch)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| {
            eprintln!("unknown architecture {arch:?}: one of {}", arch_names());
            std::process::exit(2)
        })
}

/// `x86_64|aarch64|...`, for messages.
fn arch_names() -> String {
    ARCHES.iter().map(|(a, _)| *a).collect::<Vec<_>>().join("|")
}

/// The qemu-user program that runs `target`'s binaries.
pub fn qemu_user(target: &str) -> String {
    let cpu = target.split('-').next().unwrap_or(target);
    let name = match cpu {
        "riscv64gc" => "riscv64",
        "powerpc64le" => "ppc64le",
        "i586" | "i686" => "i386",
        c if c.starts_with("arm") || c.starts_with("thumb") => "arm",
        c => c,
    };
    format!("qemu-{name}")
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("test") => {
            let arch = value("--arch");
            if let Some(a) = &arch {
                target_of(a);
            }
            let mut t = Tally::default();
            steps::test(&mut t, arch.as_deref(), !flag("--no-install"));
            t.finish()
        }
        Some("bench") => std::process::exit(bench::run(&args[1..])),
        Some("public-api") => {
            let mut t = Tally::default();
            public_api::run(&mut t, flag("--bless"));
            t.finish()
        }
        Some("probes") => {
            let mut t = Tally::default();
            probes::run(&mut t);
            t.finish()
        }
        Some("soak") => {
            let seconds = value("--fuzz-seconds").map_or(600, |s| s.parse().unwrap_or(600));
            let mut t = Tally::default();
            steps::soak(&mut t, seconds);
            t.finish()
        }
        Some("vm") => {
            // One architecture, several separated by commas (booted side by side), or `all`.
            let arch = value("--arch").unwrap_or_else(|| usage());
            let arches: Vec<&str> = match arch.as_str() {
                "all" => ARCHES.iter().map(|(a, _)| *a).collect(),
                list => list.split(',').collect(),
            };
            arches.iter().for_each(|a| _ = target_of(a));
            // The architectures' default kernels, or the series named (see vm/kernels.lock).
            let kernels =
                value("--kernel").map_or(vm::Kernels::Default, |k| vm::Kernels::parse(&k));
            let mut t = Tally::default();
            if !flag("--no-install") {
                steps::install_vm(&mut t);
            }
            vm::run_all(&mut t, &arches, &kernels);
            t.finish()
        }
        _ => usage(),
    }
}

fn usage() -> ! {
    let a = arch_names();
    eprintln!(
        "usage:\n  cargo xtask test [--arch {a}] [--no-install]\n  \
         cargo xtask vm --arch {a}[,...]|all [--kernel 5.10|6.1|6.12[,...]|default|test|all] [--no-install]\n  \
         cargo xtask bench [--quick] [--json]\n  \
         cargo xtask probes   (the compile-fail probes alone)\n  \
         cargo xtask soak [--fuzz-seconds N]\n  \
         cargo xtask public-api [--bless]"
    );
    std::process::exit(2)
}

/// Counts of the whole run.
#[derive(Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    failures: Vec<String>,
    skips: Vec<String>,
}

impl Tally {
    pub fn pass(&mut self, what: &str) {
        self.passed += 1;
        println!("xtask: ok: {what}");
    }
    pub fn fail(&mut self, what: &str) {
        self.failed += 1;
        self.failures.push(what.to_string());
        println!("xtask: FAILED: {what}");
    }
    pub fn skip(&mut self, what: &str, why: &str) {
        self.skipped += 1;
        self.skips.push(format!("{what}: {why}"));
        println!("xtask: SKIPPED: {what}: {why}");
    }
    /// A pinned artefact (a kernel image, the UAPI header packages, a pinned .deb) that cannot
    /// be had: a skip with its reason on a user's machine, a failure under `CI=true`, where a
    /// pin that has left the mirror must be noticed and bumped.
    pub fn missing_pinned(&mut self, what: &str, why: &str) {
        if ci() {
            self.fail(&format!("{what}: {why} (a failure under CI=true)"));
        } else {
            self.skip(what, why);
        }
    }
    /// Runs a command as one check.
    pub fn check(&mut self, what: &str, cmd: &mut Command) -> bool {
        section(what);
        let ok = cmd.status().map(|s| s.success()).unwrap_or(false);
        if ok {
            self.pass(what)
        } else {
            self.fail(what)
        }
        ok
    }
    /// Runs a test binary (or `cargo test --no-fail-fast`), echoing its output and adding the
    /// counts of every summary line it prints. Each test binary cargo runs is reported on its
    /// own line; a binary that ends without a summary (a crash, a signal) is one failure, and
    /// so is no summary at all, or a non-zero exit without a counted failure.
    pub fn tests(&mut self, what: &str, cmd: &mut Command) {
        section(what);
        let (units, ok) = run_counted(cmd);
        let (mut p, mut f, mut s) = (0, 0, 0);
        let mut failed_units = Vec::new();
        if units.len() > 1 || units.first().is_some_and(|u| !u.name.is_empty()) {
            println!("\n---- {what}: per test binary");
        }
        for u in &units {
            let name = if u.name.is_empty() { what } else { &u.name };
            match u.counts {
                Some([up, uf, us]) => {
                    (p, f, s) = (p + up, f + uf, s + us);
                    if !u.name.is_empty() {
                        println!("{name}: {up} passed, {uf} failed, {us} skipped");
                    }
                    if uf > 0 {
                        failed_units.push(format!("{name}: {uf} failed"));
                    }
                }
                None => {
                    println!("{name}: ended without a summary line (crashed?)");
                    f += 1;
                    failed_units.push(format!("{name}: ended without a summary line"));
                }
            }
        }
        self.passed += p;
        self.skipped += s;
        if units.is_empty() || (!ok && f == 0) {
            self.fail(&format!("{what} (exited without a passing summary)"));
        } else if f > 0 {
            self.failed += f;
            for u in failed_units {
                self.failures.push(format!("{what}: {u}"));
            }
            println!("xtask: FAILED: {what}: {p} passed, {f} failed, {s} skipped");
        } else {
            if s > 0 {
                self.skips
                    .push(format!("{what}: {s} test(s) skipped (reasons above)"));
            }
            println!("xtask: ok: {what}: {p} passed, {f} failed, {s} skipped");
        }
    }
    fn finish(self) -> ! {
        println!("\n==== summary");
        for s in &self.skips {
            println!("skipped: {s}");
        }
        for f in &self.failures {
            println!("failed: {f}");
        }
        println!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        );
        std::process::exit(if self.failed == 0 { 0 } else { 1 })
    }
}

/// True under `CI=true` (set by `.ci/run`, and by most CI services).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub fn section(what: &str) {
    println!("\n==== {what}");
}

/// One test binary of a `cargo test` run (named after cargo's `Running`/`Doc-tests` line; an
/// empty name for a command that is itself a test binary), and the sum of its summary lines.
pub struct Unit {
    pub name: String,
    pub counts: Option<[usize; 3]>,
}

/// The test binary a line of cargo's output starts: `Running tests/api.rs (target/...)` or
/// `Doc-tests linux_aio`.
fn unit_header(line: &str) -> Option<String> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("Running ") {
        return Some(rest.split(" (").next().unwrap_or(rest).to_string());
    }
    line.strip_prefix("Doc-tests ")
        .map(|c| format!("doctests {c}"))
}

/// Runs `cmd`, echoing its output, and collects the counts of the summary lines it prints per
/// test binary: the crate's own harness (`N passed, N failed, N skipped`) and libtest's
/// (`test result: ok. N passed; N failed; N ignored; ...`, ignored counted as skipped).
/// stdout and stderr share one pipe, so cargo's `Running` lines (stderr) stay in order with
/// the binaries' summaries (stdout).
pub fn run_counted(cmd: &mut Command) -> (Vec<Unit>, bool) {
    let spawned = std::io::pipe().and_then(|(reader, writer)| {
        let child = cmd
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .stdin(Stdio::null())
            .spawn()?;
        // `cmd` still holds the write ends: drop them, or the reader never sees the end.
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        Ok((child, reader))
    });
    let (mut child, reader) = match spawned {
        Ok(c) => c,
        Err(e) => {
            println!("cannot run the command: {e}");
            return (Vec::new(), false);
        }
    };
    let mut units: Vec<Unit> = Vec::new();
    for line in BufReader::new(reader).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some(name) = unit_header(&line) {
            units.push(Unit { name, counts: None });
        } else if let Some(c) = parse_counts(&line) {
            if units.is_empty() {
                units.push(Unit {
                    name: String::new(),
                    counts: None,
                });
            }
            let unit = units.last_mut().unwrap();
            let sum = unit.counts.get_or_insert([0; 3]);
            for i in 0..3 {
                sum[i] += c[i];
            }
        }
    }
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    (units, ok)
}

#[cfg(test)]
mod tests {
    use super::{qemu_user, unit_header};

    #[test]
    fn qemu_user_programs() {
        let cases = [
            ("aarch64-unknown-linux-gnu", "qemu-aarch64"),
            ("riscv64gc-unknown-linux-gnu", "qemu-riscv64"),
            ("powerpc64le-unknown-linux-gnu", "qemu-ppc64le"),
            ("armv7-unknown-linux-gnueabihf", "qemu-arm"),
            ("thumbv7neon-unknown-linux-gnueabihf", "qemu-arm"),
            ("arm-unknown-linux-gnueabi", "qemu-arm"),
            ("i686-unknown-linux-gnu", "qemu-i386"),
            ("i586-unknown-linux-gnu", "qemu-i386"),
            ("s390x-unknown-linux-gnu", "qemu-s390x"),
        ];
        for (target, program) in cases {
            assert_eq!(qemu_user(target), program, "{target}");
        }
    }

    #[test]
    fn cargo_unit_headers() {
        assert_eq!(
            unit_header("     Running tests/api.rs (target/debug/deps/api-0123abcd)").as_deref(),
            Some("tests/api.rs")
        );
        assert_eq!(
            unit_header("     Running unittests src/lib.rs (target/debug/deps/x-01)").as_deref(),
            Some("unittests src/lib.rs")
        );
        assert_eq!(
            unit_header("   Doc-tests linux_aio").as_deref(),
            Some("doctests linux_aio")
        );
        assert_eq!(unit_header("test api::ring_pressure ... ok"), None);
    }
}
