//! `cargo xtask vm --arch A [--kernel S]`: the kernel-facing suite inside a qemu-system guest.
//!
//! 1. kernel.rs: the architecture's Debian kernels pinned in vm/kernels.lock (a row per kernel
//!    series: the default one, or those `--kernel` names), from the cache in target/vm-cache or
//!    downloaded with apt-get, with the modules for ext4 on a loop device.
//! 2. programs.rs: the test binaries, the probe and the init program (tests/vm-init), static;
//!    the C library (profile `capi`), its C test programs and its harness, dynamically linked.
//!    With those come the loader and libraries they need (the target's glibc) and, from
//!    vm/libaio.lock, Debian's libaio: the "system" libaio that the harness compares ours with.
//! 3. cpio.rs: an initramfs with those, the modules and an empty ext4 image (for O_DIRECT).
//! 4. qemu.rs: boots it (TCG); tests/vm-init runs everything, prints
//!    `vm-summary: N passed, N failed, N skipped` and powers off. Those counts join the tally.
//!    With several guests, all are built first and then booted two at a time (`run_all`); an
//!    architecture's binaries are built once for all its kernels.

mod cpio;
mod kernel;
mod programs;
mod qemu;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{root, section, target_of, Tally};

/// Debian packages the guests need (installed with --no-install-recommends: with recommends,
/// several qemu-system packages at once fail to install on bookworm).
pub fn install_packages() -> Vec<&'static str> {
    vec![
        "qemu-system-x86",
        "qemu-system-arm",
        "qemu-system-ppc",
        "qemu-system-misc", // riscv64, s390x
        "opensbi",          // riscv64 firmware (bookworm's qemu-system-data has its own copy)
        "e2fsprogs",        // mkfs.ext4 for the O_DIRECT image
    ]
}

/// Modules the guest loads: ext4 and loop, each after the modules it depends on (found by
/// kernel.rs in the package: they differ between series). crc32c_generic comes first: ext4 and
/// jbd2 ask the crypto API for "crc32c" (a soft dependency, not in their `depends=`), and
/// without it mounting fails on kernels that have the algorithm as a module. The init program
/// mounts the ext4 image through a loop device, so that O_DIRECT works there (tmpfs has no
/// O_DIRECT before Linux 6.6).
const MODULES: &[&str] = &["crc32c_generic", "ext4", "loop"];

/// Size of the ext4 image in the initramfs: room for a few MiB of test files after the journal.
const DIRECT_IMAGE_MIB: u64 = 16;

/// A guest still running after this is killed and counted as a failure.
const TIME_LIMIT: Duration = Duration::from_secs(300);

/// How many guests boot side by side: each qemu-system runs one vCPU (TCG) on one host thread,
/// and the machine that runs the suite has two cores.
const GUESTS_AT_ONCE: usize = 2;

/// Which kernels of vm/kernels.lock boot (`--kernel`).
#[derive(Debug, PartialEq)]
pub enum Kernels {
    /// Each architecture's default kernel (`cargo xtask vm` without `--kernel`).
    Default,
    /// What `cargo xtask test` boots: the default kernels and those marked `test`.
    Test,
    /// Every pinned kernel (`--kernel all`).
    All,
    /// The named series (`--kernel 5.10,6.12`); `default` among them is the default kernel.
    Series(Vec<String>),
}

impl Kernels {
    /// The value of `--kernel`: `all`, `default`, `test`, or series separated by commas.
    pub fn parse(value: &str) -> Kernels {
        match value {
            "all" => Kernels::All,
            "default" => Kernels::Default,
            "test" => Kernels::Test,
            list => Kernels::Series(list.split(',').map(str::to_string).collect()),
        }
    }
}

/// A guest ready to boot: everything built and packed.
struct Guest {
    /// `5.10`, `6.1`, `6.12`.
    series: String,
    /// `<arch> <series>`: the console's prefix.
    label: String,
    what: String,
    default: bool,
    kernel: String,
    machine: qemu::Machine,
    image: PathBuf,
    initrd: PathBuf,
    dir: PathBuf,
}

/// Boots `kernels` of each of `arches` with the test binaries and adds the guests' counts to
/// `t`. Downloads and builds happen one architecture after another (cargo uses both cores);
/// then the guests boot, `GUESTS_AT_ONCE` at a time, and are reported in order.
pub fn run_all(t: &mut Tally, arches: &[&str], kernels: &Kernels) {
    let pins = match kernel::kernels() {
        Ok(p) => p,
        Err(kernel::Error::Broken(why) | kernel::Error::Unavailable(why)) => {
            return t.fail(&format!("qemu-system guests: {why}"))
        }
    };
    let mut guests = Vec::new();
    for arch in arches {
        let chosen = choose(t, &pins, arch, kernels);
        if !chosen.is_empty() {
            guests.extend(prepare(t, arch, &chosen));
        }
    }
    if let Kernels::Series(names) = kernels {
        for name in names.iter().filter(|n| *n != "default") {
            if !pins.iter().any(|k| k.series == *name) {
                let known: Vec<&str> = pins.iter().map(|k| k.series.as_str()).collect();
                let mut known = known;
                known.sort();
                known.dedup();
                t.fail(&format!(
                    "--kernel {name}: no such series in vm/kernels.lock (it has {})",
                    known.join(", ")
                ));
            }
        }
    }
    if guests.is_empty() {
        return;
    }
    section(&format!(
        "qemu-system guests: {} ({} at a time)",
        guests
            .iter()
            .map(|g| g.label.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        GUESTS_AT_ONCE.min(guests.len())
    ));
    let start = Instant::now();
    let runs = boot_all(&guests);
    let wall = start.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for (g, run) in guests.iter().zip(runs) {
        match run {
            Ok(run) => {
                let secs = run.elapsed.as_secs_f64();
                times.push(format!("{} {secs:.1} s", g.label));
                section(&format!("{}: {}", g.what, g.kernel));
                let json = g.dir.join(format!("probe-{}.json", g.series));
                if save_probe_json(&run.lines, &json) && g.default {
                    let _ = std::fs::copy(&json, g.dir.join("probe.json"));
                }
                report(t, &g.what, &run, secs);
            }
            Err(e) => t.fail(&format!("{}: {}: {e}", g.what, g.machine.qemu)),
        }
    }
    println!(
        "\nqemu-system guests: {wall:.1} s of wall time for {} ({})",
        guests.len(),
        times.join(", ")
    );
}

/// The kernels of `arch` that `kernels` names, in vm/kernels.lock's order. A series named
/// that `arch` has no kernel of is a skip (the Debian mirror has none: see the lock).
fn choose<'a>(
    t: &mut Tally,
    pins: &'a [kernel::KernelPin],
    arch: &str,
    kernels: &Kernels,
) -> Vec<&'a kernel::KernelPin> {
    let mine = pins.iter().filter(|k| k.arch == arch);
    let chosen: Vec<_> = match kernels {
        Kernels::Default => mine.filter(|k| k.runs == kernel::Runs::Default).collect(),
        Kernels::Test => mine.filter(|k| k.runs != kernel::Runs::Demand).collect(),
        Kernels::All => mine.collect(),
        Kernels::Series(names) => {
            let chosen: Vec<_> = mine
                .filter(|k| {
                    names.iter().any(|n| {
                        *n == k.series || (n == "default" && k.runs == kernel::Runs::Default)
                    })
                })
                .collect();
            for name in names.iter().filter(|n| *n != "default") {
                let pinned_elsewhere = pins.iter().any(|k| k.series == *name);
                if pinned_elsewhere && !chosen.iter().any(|k| k.series == *name) {
                    t.skip(
                        &format!("qemu-system guest {arch} {name}"),
                        &format!("vm/kernels.lock has no Linux {name} for {arch} (not on the Debian mirror)"),
                    );
                }
            }
            chosen
        }
    };
    if chosen.is_empty() && !matches!(kernels, Kernels::Series(_)) {
        t.fail(&format!(
            "qemu-system guest {arch}: no kernel in vm/kernels.lock"
        ));
    }
    chosen
}

/// Boots every guest, at most `GUESTS_AT_ONCE` at a time, each console echoed with its
/// label as a prefix; the runs come back in the order of `guests`.
fn boot_all(guests: &[Guest]) -> Vec<std::io::Result<qemu::Run>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let runs: Vec<_> = guests.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..GUESTS_AT_ONCE.min(guests.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(g) = guests.get(i) else { break };
                println!("[{}] booting {}", g.label, g.kernel);
                let run = qemu::boot(&g.machine, &g.image, &g.initrd, TIME_LIMIT, &g.label);
                if let Ok(r) = &run {
                    println!("[{}] done in {:.1} s", g.label, r.elapsed.as_secs_f64());
                }
                *runs[i].lock().unwrap() = Some(run);
            });
        }
    });
    runs.into_iter()
        .map(|r| r.into_inner().unwrap().expect("every guest was booted"))
        .collect()
}

/// Builds `arch`'s binaries (once), fetches each of `kernels` and writes its initramfs; the
/// guests that can run (the reasons for the others are in `t`).
fn prepare(t: &mut Tally, arch: &str, kernels: &[&kernel::KernelPin]) -> Vec<Guest> {
    let whats: Vec<String> = kernels
        .iter()
        .map(|k| format!("qemu-system guest {arch} {}", k.series))
        .collect();
    let fail_all = |t: &mut Tally, why: &str| {
        for what in &whats {
            t.fail(&format!("{what}: {why}"));
        }
        Vec::new()
    };
    let machine = || qemu::machine(arch);
    let have_qemu = Command::new(machine().qemu)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_qemu {
        for what in &whats {
            t.skip(what, &format!("{} is not installed", machine().qemu));
        }
        return Vec::new();
    }

    section(&format!(
        "qemu-system guests {arch}: build the binaries for {}",
        target_of(arch)
    ));
    let start = Instant::now();
    let programs = match programs::build(target_of(arch)) {
        Ok(p) => p,
        Err(why) => return fail_all(t, &format!("build: {why}")),
    };
    println!("built in {:.1} s", start.elapsed().as_secs_f64());
    let capi = match capi_files(arch, &programs) {
        Ok(files) => files,
        Err(why) => return fail_all(t, &format!("C library: {why}")),
    };

    let dir = root().join("target/vm-build").join(arch);
    let mut guests = Vec::new();
    for (k, what) in kernels.iter().zip(whats.iter()) {
        section(&format!("{what}: kernel"));
        let kernel = match kernel::fetch(k, MODULES) {
            Ok(kernel) => kernel,
            Err(kernel::Error::Unavailable(why)) => {
                t.missing_pinned(what, &why);
                continue;
            }
            Err(kernel::Error::Broken(why)) => {
                t.fail(&format!("{what}: {why}"));
                continue;
            }
        };
        println!("{}: {}", kernel.name, kernel.image.display());
        for m in &kernel.modules {
            println!("  module {}", m.file_name().unwrap().to_string_lossy());
        }
        let initrd = dir.join(format!("initramfs-{}.cpio", k.series));
        if let Err(e) = initramfs(&initrd, &programs, &kernel.modules, &capi) {
            t.fail(&format!("{what}: initramfs {}: {e}", initrd.display()));
            continue;
        }
        guests.push(Guest {
            series: k.series.clone(),
            label: format!("{arch} {}", k.series),
            what: what.clone(),
            default: k.runs == kernel::Runs::Default,
            kernel: kernel.name,
            machine: machine(),
            image: kernel.image,
            initrd,
            dir: dir.clone(),
        });
    }
    guests
}

/// Adds the guest's `vm-summary` counts to `t`; no summary (a hang, a crash) is one failure.
fn report(t: &mut Tally, what: &str, run: &qemu::Run, secs: f64) {
    let summary = run.lines.iter().rev().find_map(|l| summary_counts(l));
    let Some([p, f, s]) = summary else {
        let why = match run.status {
            None => "killed at the time limit".to_string(),
            Some(st) => format!("qemu ended ({st}) without a vm-summary line"),
        };
        println!("\n==== {what}: the console's last 30 lines");
        for line in &run.lines[run.lines.len().saturating_sub(30)..] {
            println!("{line}");
        }
        return t.fail(&format!("{what}: {why} after {secs:.1} s"));
    };
    let release = run
        .lines
        .iter()
        .find_map(|l| l.split("Linux version ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("?");
    println!("\n{what}: {p} passed, {f} failed, {s} skipped (Linux {release}, {secs:.1} s)");
    // One tally entry carries each message, so add one count less.
    t.passed += p;
    if f > 0 {
        t.failed += f - 1;
        let names: Vec<&str> = run
            .lines
            .iter()
            .filter_map(|l| {
                l.strip_prefix("failures in ")
                    .or_else(|| l.strip_prefix("vm-init: FAILED: "))
            })
            .collect();
        t.fail(&format!("{what}: {f} failed ({})", names.join("; ")));
    }
    if s > 0 {
        t.skipped += s - 1;
        t.skip(
            what,
            &format!("{s} test(s) skipped in the guest (reasons above)"),
        );
    }
}

/// The counts of init's `vm-summary: N passed, N failed, N skipped` line. Kernel messages may
/// share the console line, so the line is found anywhere in it.
fn summary_counts(line: &str) -> Option<[usize; 3]> {
    let rest = line.split("vm-summary: ").nth(1)?;
    let n: Vec<usize> = rest
        .split([' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    let words = ["passed", "failed", "skipped"];
    let shape_ok = words.iter().all(|w| rest.contains(w));
    (shape_ok && n.len() == 3).then(|| [n[0], n[1], n[2]])
}

/// Writes the guest's `probe --json` output (between init's markers) to `path`; true if it did.
fn save_probe_json(lines: &[String], path: &Path) -> bool {
    let begin = lines.iter().position(|l| l == "vm-probe-json-begin");
    let end = lines.iter().position(|l| l == "vm-probe-json-end");
    if let (Some(b), Some(e)) = (begin, end) {
        let json: Vec<&str> = lines[b + 1..e].iter().map(String::as_str).collect();
        if std::fs::write(path, json.join("\n") + "\n").is_ok() {
            println!("probe report saved to {}", path.display());
            return true;
        }
    }
    false
}

/// What the guest needs for the C library's tests, as (path in the guest, path here): the
/// library in /capi (`libaio.so`, and `libaio.a`, which the harness looks for beside it), the C
/// programs in /capi/tests (tests/vm-init points the harness at both), Debian's libaio in
/// /lib/<multiarch> as on Debian (without it the harness skips the "system" runs), and the
/// loader and libraries that all of these and the harness need.
fn capi_files(arch: &str, p: &programs::Programs) -> Result<Vec<(String, PathBuf)>, String> {
    let target = target_of(arch);
    let mut files = vec![
        ("capi/libaio.so".to_string(), p.libaio.clone()),
        (
            "capi/libaio.a".to_string(),
            p.libaio.with_file_name("libaio.a"),
        ),
    ];
    for c in &p.c_tests {
        let name = c.file_name().unwrap().to_string_lossy();
        files.push((format!("capi/tests/{name}"), c.clone()));
    }
    match kernel::libaio(arch) {
        Ok((name, lib)) => {
            println!("system libaio: {name}: {}", lib.display());
            let guest = format!("lib/{}/libaio.so.1", programs::multiarch(target));
            files.push((guest, lib));
        }
        Err(kernel::Error::Unavailable(why)) if crate::ci() => {
            return Err(format!(
                "the pinned libaio cannot be had under CI=true: {why}"
            ))
        }
        Err(kernel::Error::Unavailable(why)) => println!("no system libaio in the guest: {why}"),
        Err(kernel::Error::Broken(why)) => return Err(why),
    }
    let harness = p.tests.iter().filter(|(name, _)| name == "capi");
    let elfs: Vec<&Path> = (files.iter().map(|(_, host)| host))
        .chain(harness.map(|(_, host)| host))
        .filter(|host| host.extension().is_none_or(|e| e != "a"))
        .map(PathBuf::as_path)
        .collect();
    let runtime = programs::runtime(target, &elfs)?;
    let names: Vec<&str> = runtime.iter().map(|(guest, _)| guest.as_str()).collect();
    println!("loader and libraries: {}", names.join(" "));
    for (guest, host) in runtime {
        files.push((guest.trim_start_matches('/').to_string(), host));
    }
    Ok(files)
}

/// Writes the initramfs: /init, /probe, /tests/*, /modules/* (numbered in load order),
/// /direct.img, /dev/console (the kernel opens it for init before /dev is mounted), the
/// directories init mounts on, and `capi` (see [`capi_files`]).
fn initramfs(
    path: &Path,
    p: &programs::Programs,
    modules: &[PathBuf],
    capi: &[(String, PathBuf)],
) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().unwrap())?;
    let mut c = cpio::Cpio::new(BufWriter::new(File::create(path)?));
    for d in ["dev", "proc", "sys", "tmp", "direct", "tests", "modules"] {
        c.dir(d)?;
    }
    c.char_dev("dev/console", 0o600, 5, 1)?;
    c.file("init", 0o755, &std::fs::read(&p.init)?)?;
    c.file("probe", 0o755, &std::fs::read(&p.probe)?)?;
    for (name, exe) in &p.tests {
        c.file(&format!("tests/{name}"), 0o755, &std::fs::read(exe)?)?;
    }
    for (name, file) in capi {
        c.file(name, 0o755, &std::fs::read(file)?)?;
    }
    for (i, m) in modules.iter().enumerate() {
        let name = m.file_name().unwrap().to_string_lossy();
        c.file(&format!("modules/{i:02}-{name}"), 0o644, &std::fs::read(m)?)?;
    }
    match direct_image(&path.with_file_name("direct.img")) {
        Ok(image) => c.file("direct.img", 0o644, &image)?,
        Err(why) => println!("no ext4 image for O_DIRECT: {why}"),
    }
    c.finish()?;
    Ok(())
}

/// An empty ext4 filesystem image made with mkfs.ext4 (4 KiB blocks).
fn direct_image(path: &Path) -> Result<Vec<u8>, String> {
    let file = File::create(path).map_err(|e| e.to_string())?;
    file.set_len(DIRECT_IMAGE_MIB << 20)
        .map_err(|e| e.to_string())?;
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096"])
        .arg(path)
        .output()
        .map_err(|e| format!("mkfs.ext4: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mkfs.ext4: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::Kernels;

    #[test]
    fn kernel_option() {
        assert_eq!(Kernels::parse("all"), Kernels::All);
        assert_eq!(Kernels::parse("default"), Kernels::Default);
        assert_eq!(Kernels::parse("test"), Kernels::Test);
        assert_eq!(
            Kernels::parse("5.10,6.12"),
            Kernels::Series(vec!["5.10".into(), "6.12".into()])
        );
    }

    #[test]
    fn summary_line() {
        let line = "[   12.3] vm-summary: 85 passed, 0 failed, 6 skipped";
        assert_eq!(super::summary_counts(line), Some([85, 0, 6]));
        assert_eq!(super::summary_counts("vm-summary: 85 passed"), None);
    }
}
