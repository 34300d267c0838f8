//! `cargo xtask test [--arch A] [--no-install]`: the whole suite, ending with one line
//! `N passed, N failed, N skipped`.
//! `cargo xtask vm --arch A`: the kernel-facing suite inside a qemu-system guest (see vm.rs).
//!
//! Every step is a check. A test binary's summary line adds its own counts; any other step
//! (fmt, clippy, a build, the generator check) counts as one test. A step that cannot run here
//! is counted as skipped and its reason printed, never left out silently.

mod bench;
#[path = "../../tests/support/counts.rs"]
mod counts;
mod steps;
mod vm;

use counts::parse_counts;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The four architectures with a module: (name used on the command line, Rust target).
pub const ARCHES: &[(&str, &str)] = &[
    ("x86_64", "x86_64-unknown-linux-gnu"),
    ("aarch64", "aarch64-unknown-linux-gnu"),
    ("riscv64", "riscv64gc-unknown-linux-gnu"),
    ("ppc64le", "powerpc64le-unknown-linux-gnu"),
];

pub fn target_of(arch: &str) -> &'static str {
    ARCHES
        .iter()
        .find(|(a, _)| *a == arch)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| {
            eprintln!("unknown architecture {arch:?}: one of x86_64, aarch64, riscv64, ppc64le");
            std::process::exit(2)
        })
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
        Some("vm") => {
            let arch = value("--arch").unwrap_or_else(|| usage());
            target_of(&arch);
            let mut t = Tally::default();
            if !flag("--no-install") {
                steps::install_vm(&mut t);
            }
            vm::run(&mut t, &arch);
            t.finish()
        }
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage:\n  cargo xtask test [--arch x86_64|aarch64|riscv64|ppc64le] [--no-install]\n  \
         cargo xtask vm --arch x86_64|aarch64|riscv64|ppc64le [--no-install]\n  \
         cargo xtask bench [--quick] [--json]"
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
    /// Runs a test binary (or `cargo test`), echoing its output and adding the counts of every
    /// summary line it prints. No summary line at all, or a non-zero exit without a counted
    /// failure, counts as one failure.
    pub fn tests(&mut self, what: &str, cmd: &mut Command) {
        section(what);
        let (counts, ok) = run_counted(cmd);
        let [p, f, s] = counts.unwrap_or([0, 0, 0]);
        self.passed += p;
        self.failed += f;
        self.skipped += s;
        if counts.is_none() || (!ok && f == 0) {
            self.fail(&format!("{what} (exited without a passing summary)"));
        } else if f > 0 {
            self.failures.push(format!("{what}: {f} failed"));
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

pub fn section(what: &str) {
    println!("\n==== {what}");
}

/// Runs `cmd`, echoing its stdout and stderr, and sums the counts of the summary lines it prints:
/// the crate's own harness (`N passed, N failed, N skipped`) and libtest's
/// (`test result: ok. N passed; N failed; N ignored; ...`, ignored counted as skipped).
pub fn run_counted(cmd: &mut Command) -> (Option<[usize; 3]>, bool) {
    let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            println!("cannot run {cmd:?}: {e}");
            return (None, false);
        }
    };
    let err = child.stderr.take().unwrap();
    let echo_err = std::thread::spawn(move || {
        let mut found = Vec::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("{line}");
            found.extend(parse_counts(&line));
        }
        found
    });
    let mut found = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        println!("{line}");
        found.extend(parse_counts(&line));
    }
    found.extend(echo_err.join().unwrap_or_default());
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    if found.is_empty() {
        return (None, ok);
    }
    let mut sum = [0; 3];
    for c in found {
        for i in 0..3 {
            sum[i] += c[i];
        }
    }
    (Some(sum), ok)
}
