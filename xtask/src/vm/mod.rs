//! `cargo xtask vm --arch A`: the kernel-facing suite inside a qemu-system guest.
//!
//! 1. kernel.rs: the architecture's Debian kernel pinned in vm/kernels.lock, from the cache in
//!    target/vm-cache or downloaded with apt-get, with the modules for ext4 on a loop device.
//! 2. programs.rs: the test binaries, the probe and the init program (tests/vm-init), static;
//!    the C library (profile `capi`), its C test programs and its harness, dynamically linked.
//!    With those come the loader and libraries they need (the target's glibc) and, from
//!    vm/libaio.lock, Debian's libaio: the "system" libaio that the harness compares ours with.
//! 3. cpio.rs: an initramfs with those, the modules and an empty ext4 image (for O_DIRECT).
//! 4. qemu.rs: boots it (TCG); tests/vm-init runs everything, prints
//!    `vm-summary: N passed, N failed, N skipped` and powers off. Those counts join the tally.
//!    With several guests, all are built first and then booted two at a time (`run_all`).

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

/// Modules the guest loads, in load order: ext4 and its dependencies, then loop. The init
/// program mounts the ext4 image through a loop device, so that O_DIRECT works there
/// (tmpfs has no O_DIRECT before Linux 6.6).
const MODULES: &[&str] = &["crc16", "mbcache", "crc32c_generic", "jbd2", "ext4", "loop"];

/// Size of the ext4 image in the initramfs: room for a few MiB of test files after the journal.
const DIRECT_IMAGE_MIB: u64 = 16;

/// A guest still running after this is killed and counted as a failure.
const TIME_LIMIT: Duration = Duration::from_secs(300);

/// How many guests boot side by side: each qemu-system runs one vCPU (TCG) on one host thread,
/// and the machine that runs the suite has two cores.
const GUESTS_AT_ONCE: usize = 2;

/// A guest ready to boot: everything built and packed.
struct Guest {
    arch: String,
    what: String,
    kernel: String,
    machine: qemu::Machine,
    image: PathBuf,
    initrd: PathBuf,
    dir: PathBuf,
}

/// Boots each of `arches`' pinned kernel with the test binaries and adds the guests' counts to
/// `t`. Downloads and builds happen one guest after another (cargo uses both cores); then the
/// guests boot, `GUESTS_AT_ONCE` at a time, and are reported in order.
pub fn run_all(t: &mut Tally, arches: &[&str]) {
    let guests: Vec<Guest> = arches.iter().filter_map(|a| prepare(t, a)).collect();
    if guests.is_empty() {
        return;
    }
    section(&format!(
        "qemu-system guests: {} ({} at a time)",
        guests
            .iter()
            .map(|g| g.arch.as_str())
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
                times.push(format!("{} {secs:.1} s", g.arch));
                section(&format!("{}: {}", g.what, g.kernel));
                save_probe_json(&run.lines, &g.dir.join("probe.json"));
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

/// Boots every guest, at most `GUESTS_AT_ONCE` at a time, each console echoed with its
/// architecture as a prefix; the runs come back in the order of `guests`.
fn boot_all(guests: &[Guest]) -> Vec<std::io::Result<qemu::Run>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let runs: Vec<_> = guests.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..GUESTS_AT_ONCE.min(guests.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(g) = guests.get(i) else { break };
                println!("[{}] booting {}", g.arch, g.kernel);
                let run = qemu::boot(&g.machine, &g.image, &g.initrd, TIME_LIMIT, &g.arch);
                if let Ok(r) = &run {
                    println!("[{}] done in {:.1} s", g.arch, r.elapsed.as_secs_f64());
                }
                *runs[i].lock().unwrap() = Some(run);
            });
        }
    });
    runs.into_iter()
        .map(|r| r.into_inner().unwrap().expect("every guest was booted"))
        .collect()
}

/// Fetches `arch`'s kernel, builds its binaries and writes its initramfs; `None` (with the
/// reason in `t`) when the guest cannot run.
fn prepare(t: &mut Tally, arch: &str) -> Option<Guest> {
    let what = format!("qemu-system guest {arch}");
    section(&format!("{what}: kernel"));
    let kernel = match kernel::fetch(arch, MODULES) {
        Ok(k) => k,
        Err(kernel::Error::Unavailable(why)) => {
            t.missing_pinned(&what, &why);
            return None;
        }
        Err(kernel::Error::Broken(why)) => {
            t.fail(&format!("{what}: {why}"));
            return None;
        }
    };
    println!("{}: {}", kernel.name, kernel.image.display());

    section(&format!(
        "{what}: build the binaries for {}",
        target_of(arch)
    ));
    let start = Instant::now();
    let programs = match programs::build(target_of(arch)) {
        Ok(p) => p,
        Err(why) => {
            t.fail(&format!("{what}: build: {why}"));
            return None;
        }
    };
    println!("built in {:.1} s", start.elapsed().as_secs_f64());

    let capi = match capi_files(arch, &programs) {
        Ok(files) => files,
        Err(why) => {
            t.fail(&format!("{what}: C library: {why}"));
            return None;
        }
    };

    let dir = root().join("target/vm-build").join(arch);
    let initrd = dir.join("initramfs.cpio");
    if let Err(e) = initramfs(&initrd, &programs, &kernel.modules, &capi) {
        t.fail(&format!("{what}: initramfs {}: {e}", initrd.display()));
        return None;
    }

    let machine = qemu::machine(arch);
    let have_qemu = Command::new(machine.qemu)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_qemu {
        t.skip(&what, &format!("{} is not installed", machine.qemu));
        return None;
    }
    Some(Guest {
        arch: arch.to_string(),
        what,
        kernel: kernel.name,
        machine,
        image: kernel.image,
        initrd,
        dir,
    })
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

/// Writes the guest's `probe --json` output (between init's markers) to `path`.
fn save_probe_json(lines: &[String], path: &Path) {
    let begin = lines.iter().position(|l| l == "vm-probe-json-begin");
    let end = lines.iter().position(|l| l == "vm-probe-json-end");
    if let (Some(b), Some(e)) = (begin, end) {
        let json: Vec<&str> = lines[b + 1..e].iter().map(String::as_str).collect();
        if std::fs::write(path, json.join("\n") + "\n").is_ok() {
            println!("probe report saved to {}", path.display());
        }
    }
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
