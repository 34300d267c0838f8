//! The steps of `cargo xtask test`, in order. Each one counts (see main.rs).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{qemu_user, root, section, target_of, vm, Check, Tally, ARCHES, MORE_TARGETS};

/// The crate's `rust-version` (1.82: precise capturing `use<..>`), and each architecture's
/// minimum: its inline asm became stable in 1.84 for s390x and in 1.95 for PowerPC (measured:
/// 1.82 and 1.84 reject those modules' entries with "inline assembly is not stable yet on this
/// architecture"; below them arch/mod.rs stops the build with a message naming the minimum).
const MSRV: &str = "1.82.0";

fn msrv_of(arch: &str) -> &'static str {
    match arch {
        "ppc64le" => "1.95.0",
        "s390x" => "1.84.0",
        _ => MSRV,
    }
}

/// Every minimum toolchain the MSRV checks use.
const MSRV_TOOLCHAINS: &[&str] = &["1.82.0", "1.84.0", "1.95.0"];

/// Debian packages the suite needs, beyond what the `rust` machine image has.
const APT_PACKAGES: &[&str] = &[
    "libclang-dev", // bindgen, for the generator check
    "gcc-aarch64-linux-gnu",
    "gcc-riscv64-linux-gnu",
    "gcc-powerpc64le-linux-gnu",
    "gcc-i686-linux-gnu",
    "gcc-arm-linux-gnueabihf",
    "gcc-arm-linux-gnueabi", // arm-unknown-linux-gnueabi (armv6, soft-float)
    "gcc-s390x-linux-gnu",
    "libc6-dev-arm64-cross",
    "libc6-dev-riscv64-cross",
    "libc6-dev-ppc64el-cross",
    "libc6-dev-i386-cross",
    "libc6-dev-armhf-cross",
    "libc6-dev-armel-cross",
    "libc6-dev-s390x-cross",
    "linux-libc-dev-amd64-cross", // the pinned x86_64 UAPI headers for the C layout probe
    "qemu-user",
    "musl-tools",   // the static probe
    "libaio-dev",   // libaio.h and the system libaio, for capi's C tests and the benchmarks
    "liburing-dev", // io_uring's figures in the benchmarks
];

/// Targets that have no architecture module and must build: bare metal (which other ABIs,
/// such as big-endian powerpc64, x32 or mips, get is checked by xtask's unit tests of
/// arch/select.rs; rustup has no std for them here).
const ENOSYS_TARGETS: &[&str] = &["x86_64-unknown-none"];

/// Targets whose entry borrows registers behind the compiler's back (r7 on arm, esi and ebp on
/// x86): their kernel suite also runs optimized, where live values sit in those registers and a
/// register the asm failed to restore shows (tests/kernel.rs `entry_live_registers_survive`).
const RELEASE_ENTRY: &[&str] = &[
    "armv7-unknown-linux-gnueabihf",
    "thumbv7neon-unknown-linux-gnueabihf",
    "i686-unknown-linux-gnu",
];

/// Other systems: the crate must compile there too (the raw layer alone, answering ENOSYS).
const OTHER_SYSTEMS: &[&str] = &["x86_64-apple-darwin", "x86_64-unknown-freebsd"];

/// The kernel suite of `target` built with `--release`, under qemu-user.
fn release_entry(t: &mut Tally, target: &str) {
    if RELEASE_ENTRY.contains(&target) {
        t.tests(
            &format!("qemu-user: kernel suite built with --release ({target})"),
            cargo_test_on(target).args(["--release", "-p", "linux-aio", "--test", "kernel"]),
        );
    }
}

/// The extra targets rustup can install (the others are built with nightly's `-Zbuild-std`).
fn rustup_targets() -> Vec<&'static str> {
    let more = MORE_TARGETS.iter().filter(|(_, _, c)| *c == Check::Full);
    more.map(|(_, t, _)| *t).collect()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// `cargo test --no-fail-fast`: one failing test binary never keeps the others from running
/// (every binary's counts are reported, see `Tally::tests`).
fn cargo_test() -> Command {
    let mut c = cargo();
    c.args(["test", "--no-fail-fast"]);
    c
}

/// The runner `.cargo/config.toml` sets for `target` (`qemu-aarch64 -L ...`), if any.
fn configured_runner(target: &str) -> Option<String> {
    let config = std::fs::read_to_string(root().join(".cargo/config.toml")).ok()?;
    let header = format!("[target.{target}]");
    let mut in_section = false;
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == header;
        } else if in_section {
            if let Some(value) = line.strip_prefix("runner") {
                let value = value.trim_start().strip_prefix('=')?.trim();
                return Some(value.trim_matches('"').to_string());
            }
        }
    }
    None
}

/// `cargo test --no-fail-fast --target <target>`, with the target's runner also passed to the
/// tests that re-execute themselves (see tests/support/reexec.rs).
fn cargo_test_on(target: &str) -> Command {
    let mut c = cargo_test();
    c.args(["--target", target]);
    if let Some(runner) = configured_runner(target) {
        c.env("LINUX_AIO_TEST_RUNNER", runner);
    }
    c
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs what is missing: Debian packages, rustup components and targets, the MSRV toolchain.
/// Each install that fails is a failed check (the steps that need it then fail or skip too).
pub fn install(t: &mut Tally, extra_apt: &[&str]) {
    section("install");
    let wanted: Vec<&str> = APT_PACKAGES.iter().chain(extra_apt).copied().collect();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        println!("apt packages: all present");
    } else {
        println!("apt packages to install: {}", missing.join(" "));
        let ok = Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success());
        if ok {
            t.pass("install apt packages");
        } else {
            t.fail(&format!("install apt packages ({})", missing.join(" ")));
        }
    }
    let mut targets: Vec<&str> = ARCHES.iter().map(|(_, t)| *t).collect();
    targets.extend(ENOSYS_TARGETS);
    targets.extend(rustup_targets());
    targets.push("x86_64-unknown-linux-musl");
    targets.extend(OTHER_SYSTEMS);
    let rustup = |args: &[&str]| {
        Command::new("rustup")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = rustup(&["component", "add", "rustfmt", "clippy"])
        && rustup(&[&["target", "add"][..], &targets].concat())
        && MSRV_TOOLCHAINS
            .iter()
            .all(|tc| install_toolchain(tc, &["rust-src"]));
    // Old toolchains' std for foreign targets may not be downloadable here: the MSRV checks
    // then build core from rust-src (see `msrv_check`), so a failed `target add` is no failure.
    for (arch, target) in ARCHES {
        let toolchain = msrv_of(arch);
        let added = Command::new("rustup")
            .args(["target", "add", "--toolchain", toolchain, target])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !added {
            println!(
                "rustup: no {target} std for {toolchain}; its MSRV check builds core from rust-src"
            );
        }
    }
    if ok {
        t.pass("install rustup components, targets and the MSRV toolchain");
    } else {
        t.fail("install rustup components, targets and the MSRV toolchain");
    }
}

/// True if rustup already has `toolchain` (by its channel name, `1.95.0` or `nightly`).
fn have_toolchain(toolchain: &str) -> bool {
    Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|n| n.starts_with(&format!("{toolchain}-")))
            })
        })
}

/// Installs `toolchain` with `components` if rustup lacks it; an installed toolchain is never
/// reinstalled or updated (that would break every cargo running it at that moment), only given
/// the components it is missing.
fn install_toolchain(toolchain: &str, components: &[&str]) -> bool {
    let rustup = |args: &[&str]| {
        Command::new("rustup")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    if have_toolchain(toolchain) {
        println!("rustup: toolchain {toolchain} is installed; not updating it");
        return components.is_empty()
            || rustup(
                &[
                    &["component", "add", "--toolchain", toolchain][..],
                    components,
                ]
                .concat(),
            );
    }
    let mut args = vec!["toolchain", "install", toolchain, "--profile", "minimal"];
    for c in components {
        args.extend(["--component", c]);
    }
    rustup(&args)
}

/// The packages the qemu-system guests need, installed without recommends.
pub fn install_vm(t: &mut Tally) {
    install(t, &vm::install_packages());
}

pub fn test(t: &mut Tally, only: Option<&str>, do_install: bool) {
    let arches: Vec<(&str, &str)> = ARCHES
        .iter()
        .copied()
        .filter(|(a, _)| only.is_none_or(|o| o == *a))
        .collect();
    let more: Vec<(&str, &str, Check)> = MORE_TARGETS
        .iter()
        .copied()
        .filter(|(a, _, _)| only.is_none_or(|o| o == *a))
        .collect();
    if do_install {
        install_vm(t);
    }
    let host = only.is_none() || only == Some("x86_64");

    if only.is_none() {
        t.check(
            "cargo fmt --check",
            cargo().args(["fmt", "--all", "--", "--check"]),
        );
        t.tests("xtask unit tests", cargo_test().args(["-p", "xtask"]));
    }
    let full = more.iter().filter(|(_, _, c)| *c == Check::Full);
    for target in arches
        .iter()
        .map(|(_, t)| *t)
        .chain(full.map(|(_, t, _)| *t))
    {
        t.check(
            &format!("clippy -D warnings ({target})"),
            cargo().args([
                "clippy",
                "-q",
                "--target",
                target,
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        );
    }
    if only.is_none() {
        t.check(
            "clippy -D warnings (workspace tools)",
            cargo().args([
                "clippy",
                "-q",
                "--workspace",
                "--exclude",
                "linux-aio",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        );
    }

    if host {
        t.tests(
            "host: cargo test (linux-aio)",
            cargo_test().args(["-p", "linux-aio"]),
        );
        t.tests(
            "host: C layout cross-check",
            cargo_test().args(["-p", "abi-probe"]),
        );
        t.tests(
            "host: every linux-aio suite with the ENOSYS module forced",
            cargo_test()
                .args(["-p", "linux-aio", "--target-dir", "target/enosys"])
                .env("LINUX_AIO_FORCE_ENOSYS", "1"),
        );
        miri(t);
        crate::probes::run(t);
        crate::public_api::run(t, false);
        t.check(
            "rustdoc -D warnings (linux-aio)",
            cargo()
                .args(["doc", "-q", "--no-deps", "-p", "linux-aio"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        );
        run_probe(t);
        capi(t);
        posix_capi(t);
        fuzz(t, FUZZ_SECONDS_IN_SUITE);
        async_layer(t);
    }
    if only.is_none() || only == Some("i686") {
        host_i686(t);
    }
    for (arch, target) in arches.iter().filter(|(a, _)| *a != "x86_64") {
        let runner = qemu_user(target);
        if !have(&runner) {
            t.skip(
                &format!("qemu-user tests ({arch})"),
                &format!("{runner} is not installed"),
            );
            continue;
        }
        t.tests(
            &format!("qemu-user: linux-aio suites ({arch})"),
            cargo_test_on(target).args(["-p", "linux-aio"]),
        );
        t.tests(
            &format!("qemu-user: C libaio ({arch})"),
            cargo_test_on(target).args(["-p", "linux-aio-capi"]),
        );
        t.tests(
            &format!("qemu-user: C layout cross-check ({arch})"),
            cargo_test_on(target).args(["-p", "abi-probe"]),
        );
        if *arch == "riscv64" {
            riscv64_vector(t, target);
        }
        release_entry(t, target);
    }
    for (_, target, check) in &more {
        more_target(t, target, *check);
    }

    if only.is_none() {
        generator_check(t);
        for target in ENOSYS_TARGETS {
            t.check(
                &format!("ENOSYS build ({target})"),
                // The library alone: the probe needs std.
                cargo().args([
                    "build",
                    "-q",
                    "-p",
                    "linux-aio",
                    "--lib",
                    "--target",
                    target,
                ]),
            );
        }
        for target in OTHER_SYSTEMS {
            t.check(
                &format!("other systems: cargo check ({target})"),
                cargo().args(["check", "-q", "-p", "linux-aio", "--target", target]),
            );
        }
        vendoring_check(t);
        std_user_check(t);
        // The crates meant for crates.io package and build from their packages alone.
        t.check(
            "cargo publish --dry-run (linux-aio, linux-aio-async)",
            cargo()
                .args(["publish", "--dry-run", "--allow-dirty", "-p", "linux-aio"])
                .args(["-p", "linux-aio-async", "--target-dir", "target/publish"]),
        );
    }
    for (arch, target) in &arches {
        msrv_check(t, arch, target);
    }
    if only.is_none() {
        // Below its minimum, a module says which Rust it needs (arch/mod.rs).
        let out = Command::new("rustup")
            .current_dir(root())
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["run", "1.84.0", "cargo", "check", "-q", "-p", "linux-aio"])
            .args([
                "--ignore-rust-version",
                "--no-default-features",
                "-Zbuild-std=core,alloc",
            ])
            .args([
                "--target",
                target_of("ppc64le"),
                "--target-dir",
                "target/msrv-1.84.0",
            ])
            .output();
        let what = "MSRV: ppc64le with Rust 1.84 stops with a message naming 1.95";
        match out {
            Ok(o)
                if !o.status.success()
                    && String::from_utf8_lossy(&o.stderr).contains("needs Rust 1.95") =>
            {
                t.pass(what)
            }
            Ok(o) => {
                println!("{}", String::from_utf8_lossy(&o.stderr));
                t.fail(what)
            }
            Err(e) => t.fail(&format!("{what}: {e}")),
        }
    }
    let guests: Vec<&str> = arches.iter().map(|(a, _)| *a).collect();
    // Each architecture's default kernel and those vm/kernels.lock marks `test`.
    vm::run_all(t, &guests, &vm::Kernels::Test);
}

/// `cargo check` of the crate for `target` with `arch`'s minimum Rust: with the default features
/// where rustup has that toolchain's std for the target, else the `no_std` crate over a core
/// built from rust-src (`-Zbuild-std`, through `RUSTC_BOOTSTRAP` on the old stable).
fn msrv_check(t: &mut Tally, arch: &str, target: &str) {
    let toolchain = msrv_of(arch);
    let has_std = Command::new("rustup")
        .args(["target", "list", "--installed", "--toolchain", toolchain])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == target)
        });
    let dir = format!("target/msrv-{toolchain}");
    // `cargo +toolchain` works only through rustup's proxy, and CARGO names the real binary:
    // ask rustup directly.
    let mut cmd = Command::new("rustup");
    cmd.current_dir(root())
        .args(["run", toolchain, "cargo", "check", "-q", "-p", "linux-aio"])
        .args(["--target", target, "--target-dir", &dir]);
    let how = if has_std {
        "default features"
    } else {
        cmd.env("RUSTC_BOOTSTRAP", "1")
            .args(["--no-default-features", "-Zbuild-std=core,alloc"]);
        "no_std, core from rust-src"
    };
    t.check(&format!("MSRV {toolchain} build ({arch}, {how})"), &mut cmd);
}

/// One of `MORE_TARGETS`: see `Check` for what each kind gets.
fn more_target(t: &mut Tally, target: &str, check: Check) {
    let runner = qemu_user(target);
    if check != Check::BuildStdNoLink && !have(&runner) {
        return t.skip(
            &format!("qemu-user tests ({target})"),
            &format!("{runner} is not installed"),
        );
    }
    if check == Check::Full {
        t.tests(
            &format!("qemu-user: linux-aio suites ({target})"),
            cargo_test_on(target).args(["-p", "linux-aio"]),
        );
        return release_entry(t, target);
    }
    // rustup has no std for these targets here: nightly builds it from rust-src (installed
    // with Miri), in a target directory of its own.
    if !install_toolchain("nightly", &["rust-src", "clippy"]) {
        return t.skip(
            &format!("{target} (nightly -Zbuild-std)"),
            "the nightly toolchain with rust-src could not be installed",
        );
    }
    let nightly = |args: &[&str]| {
        let mut c = Command::new("rustup");
        c.current_dir(root())
            .args(["run", "nightly", "cargo"])
            .args(args)
            .args(["-Zbuild-std", "--target", target])
            .args(["--target-dir", "target/build-std"]);
        if let Some(runner) = configured_runner(target) {
            c.env("LINUX_AIO_TEST_RUNNER", runner);
        }
        c
    };
    if check == Check::BuildStdNoLink {
        // No C library for the target on Debian, so nothing links: the library and every
        // suite, checked.
        t.check(
            &format!("clippy -D warnings ({target}, nightly -Zbuild-std, no linking)"),
            nightly(&["clippy", "-q", "-p", "linux-aio", "--lib", "--tests"])
                .args(["--", "-D", "warnings"]),
        );
        return;
    }
    t.tests(
        &format!("qemu-user: linux-aio suites ({target}, nightly -Zbuild-std)"),
        &mut nightly(&["test", "--no-fail-fast", "-p", "linux-aio"]),
    );
    t.tests(
        &format!("qemu-user: C layout cross-check ({target}, nightly -Zbuild-std)"),
        &mut nightly(&["test", "--no-fail-fast", "-p", "abi-probe"]),
    );
}

/// The i686 suites as a 32-bit program on the host's own x86_64 kernel (its IA32 compat
/// syscalls, `io_pgetevents_time64` among them), run directly instead of under qemu-i386, where
/// the host kernel can run 32-bit programs at all. The binaries name the cross glibc's loader
/// and library directory themselves (their own target directory), so nothing needs installing
/// system-wide: a multilib libc6-i386 would also put /lib32 into the host's ld.so.cache, which
/// the loader under qemu-i386 then mixes with the cross glibc.
fn host_i686(t: &mut Tally) {
    let what = "host kernel, 32-bit x86 program (IA32 compat)";
    let lib = "/usr/i686-linux-gnu/lib";
    let loader = format!("{lib}/ld-linux.so.2");
    // The loader is itself a 32-bit program: if the kernel runs it, it runs the suites.
    let runs = Command::new(&loader)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        return t.skip(
            what,
            &format!(
                "{loader} does not run here: no IA32 emulation in this kernel, or no \
                 libc6-dev-i386-cross"
            ),
        );
    }
    // For rustc (the tests), rustdoc (the doctests) and the C compiler (capi's C programs).
    let link = format!("-Wl,--dynamic-linker={loader} -Wl,-rpath={lib}");
    let rust = link
        .split(' ')
        .map(|a| format!("-C link-arg={a}"))
        .collect::<Vec<_>>()
        .join(" ");
    let suite = |package: &str| {
        let mut c = cargo_test();
        c.args(["-p", package, "--target", target_of("i686")])
            .args(["--target-dir", "target/i686-host"])
            .env("RUSTFLAGS", &rust)
            .env("RUSTDOCFLAGS", &rust)
            .env("CFLAGS_i686_unknown_linux_gnu", &link)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env("CARGO_TARGET_I686_UNKNOWN_LINUX_GNU_RUNNER", "env");
        c
    };
    t.tests(
        &format!("{what}: linux-aio suites"),
        &mut suite("linux-aio"),
    );
    t.tests(
        &format!("{what}: C libaio (ours; Debian's libaio1 for i386 is the guest's)"),
        &mut suite("linux-aio-capi"),
    );
}

/// riscv64 with the V extension, where Linux leaves vl, vtype and vstart unspecified after every
/// system call: the entry's asm must declare them clobbered (no `preserves_flags`), which shows
/// in the LLVM IR as `~{vl}` and `~{vtype}` on every `ecall`; and the suites, built with
/// `+v`, must pass on a V-capable CPU (qemu-user's `rv64,v=true`).
fn riscv64_vector(t: &mut Tally, target: &str) {
    const FLAGS: &str = "-C target-feature=+v";
    let dir = "target/riscv64-v";
    let emitted = t.check(
        "riscv64 +v: emit the kernel suite's LLVM IR",
        cargo()
            .args([
                "rustc",
                "-q",
                "--release",
                "-p",
                "linux-aio",
                "--test",
                "kernel",
            ])
            .args([
                "--target",
                target,
                "--target-dir",
                dir,
                "--",
                "--emit=llvm-ir",
            ])
            .env("RUSTFLAGS", FLAGS),
    );
    if emitted {
        let deps = root().join(dir).join(target).join("release/deps");
        let newest = std::fs::read_dir(&deps).ok().and_then(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("kernel-") && n.ends_with(".ll")
                })
                .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
                .map(|e| e.path())
        });
        let ir = newest
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let ecalls: Vec<&str> = ir
            .split("asm sideeffect \"ecall\", \"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap_or(""))
            .collect();
        let bad = ecalls
            .iter()
            .filter(|c| !(c.contains("~{vl}") && c.contains("~{vtype}")))
            .count();
        let what = "riscv64 +v: every ecall declares vl and vtype clobbered";
        if ecalls.is_empty() {
            t.fail(&format!("{what}: no ecall found in the IR"));
        } else if bad > 0 {
            t.fail(&format!(
                "{what}: {bad} of {} do not (preserves_flags?)",
                ecalls.len()
            ));
        } else {
            println!(
                "{} ecall sites, all with ~{{vl}} and ~{{vtype}}",
                ecalls.len()
            );
            t.pass(what);
        }
    }
    let runner = "qemu-riscv64 -cpu rv64,v=true,vlen=128 -L /usr/riscv64-linux-gnu";
    t.tests(
        "qemu-user (rv64 with V): linux-aio suites built with +v",
        cargo_test()
            .args([
                "--release",
                "-p",
                "linux-aio",
                "--target",
                target,
                "--target-dir",
                dir,
            ])
            .env("RUSTFLAGS", FLAGS)
            .env("CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_RUNNER", runner)
            .env("LINUX_AIO_TEST_RUNNER", runner),
    );
}

/// The async crate (`async/`, issue 13): its suite with the tokio feature (drop in flight,
/// cancellation, 10,000 futures, both runtime flavours, shutdown, fork), clippy and rustdoc
/// with the feature, and the runtime-agnostic build without it.
fn async_layer(t: &mut Tally) {
    let pkg = ["-p", "linux-aio-async"];
    t.tests(
        "async: linux-aio-async suite (feature tokio)",
        cargo_test().args(pkg).args(["--features", "tokio"]),
    );
    t.check(
        "async: clippy -D warnings (feature tokio)",
        cargo()
            .args(["clippy", "-q", "--all-targets", "--features", "tokio"])
            .args(pkg)
            .args(["--", "-D", "warnings"]),
    );
    t.check(
        "async: builds without tokio (driver thread only)",
        cargo().args(["build", "-q"]).args(pkg),
    );
    t.check(
        "async: rustdoc -D warnings (feature tokio)",
        cargo()
            .args(["doc", "-q", "--no-deps", "--features", "tokio"])
            .args(pkg)
            .env("RUSTDOCFLAGS", "-D warnings"),
    );
    // The O_DIRECT copy example, end to end, on a file whose length is not a multiple of the
    // alignment (under target/, a real filesystem; its own directory per process).
    let dir = root().join(format!("target/async-copy-{}", std::process::id()));
    let (src, dst) = (dir.join("src.bin"), dir.join("dst.bin"));
    let data: Vec<u8> = (0..3u32 << 20 | 12_345)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    if std::fs::create_dir_all(&dir).is_err() || std::fs::write(&src, &data).is_err() {
        t.fail("async: copy example (cannot write its input)");
        return;
    }
    let out = cargo()
        .args(["run", "-q", "--features", "tokio", "--example", "copy"])
        .args(pkg)
        .arg("--")
        .args([&src, &dst])
        .output();
    let what = "async: copy example (O_DIRECT, QD32) copies a file exactly";
    let same = std::fs::read(&dst).is_ok_and(|d| d == data);
    let _ = std::fs::remove_dir_all(&dir);
    match out {
        Ok(o) if o.status.success() && same => {
            print!("{}", String::from_utf8_lossy(&o.stdout));
            t.pass(what)
        }
        // The example's error when open(O_DIRECT) is refused (EINVAL).
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("code: 22") => {
            t.skip(what, "the target directory's filesystem refuses O_DIRECT")
        }
        Ok(o) => {
            print!("{}", String::from_utf8_lossy(&o.stderr));
            t.fail(what)
        }
        Err(e) => t.fail(&format!("{what}: {e}")),
    }
}

/// The C libaio: its tests against our library (as `cargo test` builds it, and as it ships,
/// `panic = "abort"`) and against the system's libaio, with the same expectations.
fn capi(t: &mut Tally) {
    t.tests(
        "capi: C programs against our libaio and the system's",
        cargo_test().args(["-p", "linux-aio-capi"]),
    );
    let built = t.check(
        "capi: shipping build (profile capi, panic = abort)",
        cargo().args(["build", "-q", "-p", "linux-aio-capi", "--profile", "capi"]),
    );
    if built {
        t.tests(
            "capi: C programs against the shipping build",
            cargo_test()
                .args(["-p", "linux-aio-capi"])
                .env("LINUX_AIO_CAPI_LIB", root().join("target/capi/libaio.so")),
        );
    }
}

/// libposixaio: its C programs preloaded (kernel AIO and synchronous mode) and against glibc's
/// POSIX AIO, as `cargo test` builds it and as it ships (`panic = "abort"`).
fn posix_capi(t: &mut Tally) {
    t.tests(
        "posix capi: C programs against libposixaio and glibc",
        cargo_test().args(["-p", "linux-aio-posix-capi"]),
    );
    let built = t.check(
        "posix capi: shipping build (profile capi, panic = abort)",
        cargo().args([
            "build",
            "-q",
            "-p",
            "linux-aio-posix-capi",
            "--profile",
            "capi",
        ]),
    );
    if built {
        t.tests(
            "posix capi: C programs against the shipping build",
            cargo_test()
                .args(["-p", "linux-aio-posix-capi", "--test", "posix"])
                .env(
                    "LINUX_AIO_POSIX_LIB",
                    root().join("target/capi/libposixaio.so"),
                ),
        );
    }
}

/// Miri over the library's unit tests (the ring reader on a simulated ring, the `ReadVecs`
/// views) and tests/miri_readvecs.rs (ReadVecs through a Request and back): no system calls.
fn miri(t: &mut Tally) {
    section("install: nightly toolchain with Miri");
    let installed = install_toolchain("nightly", &["miri", "rust-src"]);
    if !installed {
        t.skip(
            "miri: ring reader and ReadVecs",
            "the nightly toolchain with Miri could not be installed",
        );
        return;
    }
    t.tests(
        "miri: ring reader and ReadVecs",
        Command::new("rustup").current_dir(root()).args([
            "run",
            "nightly",
            "cargo",
            "miri",
            "test",
            "--no-fail-fast",
            "--lib",
            "--test",
            "miri_readvecs",
        ]),
    );
}

/// The probe, on the host and as a static, stripped musl binary (what an initramfs would
/// carry). Its JSON against docs/probe.md is the faults suite's `probe_*` tests.
fn run_probe(t: &mut Tally) {
    t.check(
        "probe (host)",
        cargo().args(["run", "-q", "--bin", "linux-aio-probe"]),
    );
    let ok = t.check(
        "probe static build (x86_64-unknown-linux-musl)",
        cargo().args([
            "build",
            "-q",
            "--bin",
            "linux-aio-probe",
            "--target",
            "x86_64-unknown-linux-musl",
            "--release",
        ]),
    );
    if ok {
        let bin = root().join("target/x86_64-unknown-linux-musl/release/linux-aio-probe");
        let out = Command::new("file")
            .arg(&bin)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        let size = std::fs::metadata(&bin).map_or(0, |m| m.len());
        let what = "probe is statically linked and stripped";
        match out {
            // `file` says "not stripped" for one that is not.
            Ok(s) if s.contains("static") && s.contains(", stripped") => {
                println!("{}: {size} bytes", bin.display());
                t.pass(what)
            }
            Ok(s) => t.fail(&format!("{what}: {}", s.trim())),
            Err(e) => t.skip(what, &format!("`file` unavailable: {e}")),
        }
        t.check(
            "probe --json (static binary)",
            Command::new(&bin).arg("--json"),
        );
    }
}

/// Regenerates every committed ABI file and fails on any difference.
fn generator_check(t: &mut Tally) {
    section("generator: regenerate and compare");
    let status = cargo()
        .args(["run", "-q", "-p", "linux-aio-gen", "--", "--check"])
        .status();
    match status.map(|s| s.code()) {
        Ok(Some(0)) => t.pass("generator: committed ABI files match a fresh generation"),
        Ok(Some(3)) => t.missing_pinned(
            "generator check",
            "the pinned header packages cannot be downloaded (see above)",
        ),
        _ => t.fail(
            "generator: committed ABI files differ from a fresh generation (run `cargo gen`)",
        ),
    }
}

/// Copies exactly the folders the README says to vendor into a scratch crate and builds it for
/// the host and one foreign architecture.
fn vendoring_check(t: &mut Tally) {
    section("vendoring: the README's recipe, in a scratch crate");
    let scratch = root().join("target/vendor-check");
    let _ = std::fs::remove_dir_all(&scratch);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    let files = recipe_files(&readme);
    if files.len() != 2 {
        return t.fail(&format!(
            "vendoring: expected the two files (build.rs, src/lib.rs) in the README's \
             \"Vendoring the raw layer\" section, found {files:?}"
        ));
    }
    let vendored = scratch.join("vendor/linux-aio");
    let copy = |from: &str| {
        Command::new("cp")
            .arg("-r")
            .arg(root().join(from))
            .arg(vendored.join(Path::new(from).parent().unwrap()))
            .status()
            .is_ok_and(|s| s.success())
    };
    let manifest = "[package]\nname = \"vendor-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n";
    let mut ok =
        std::fs::create_dir_all(vendored.join("src")).is_ok() && copy("arch") && copy("src/raw");
    for (name, text) in files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .chain([("Cargo.toml", manifest)])
    {
        let path = scratch.join(name);
        ok &= std::fs::create_dir_all(path.parent().unwrap()).is_ok()
            && std::fs::write(path, text).is_ok();
    }
    if !ok {
        t.fail("vendoring: could not prepare the scratch crate");
        return;
    }
    for target in [
        target_of("x86_64"),
        target_of("aarch64"),
        target_of("armv7"), // src/raw/time32.rs comes along
        "x86_64-unknown-none",
    ] {
        t.check(
            &format!("vendoring: the README's recipe builds without warnings ({target})"),
            cargo()
                .current_dir(&scratch)
                .args(["build", "-q", "--offline", "--target", target])
                .env("RUSTFLAGS", "-D warnings")
                .env_remove("CARGO_TARGET_DIR"),
        );
    }
}

/// The files of the README's "Vendoring the raw layer" section: each fenced block there whose
/// first line is `// <path>`, as (path, the rest of the block).
fn recipe_files(readme: &str) -> Vec<(String, String)> {
    let Some(start) = readme.find("## Vendoring the raw layer") else {
        return Vec::new();
    };
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut files = Vec::new();
    let mut blocks = section.split("```");
    blocks.next(); // the prose before the first fence
    while let (Some(block), _) = (blocks.next(), blocks.next()) {
        let body = block.split_once('\n').map_or("", |(_, b)| b);
        if let Some((first, rest)) = body.split_once('\n') {
            if let Some(path) = first.strip_prefix("// ") {
                files.push((path.trim().to_string(), rest.to_string()));
            }
        }
    }
    files
}

/// A plain std program, depending on the crate with default features and nothing else, passes
/// `file.as_fd()` to the safe API (the crate's own tests cannot show this: their
/// dev-dependencies switch rustix's `std` on for everyone).
fn std_user_check(t: &mut Tally) {
    section("a plain std user of the safe API");
    let scratch = root().join("target/std-user-check");
    let _ = std::fs::remove_dir_all(&scratch);
    let manifest = format!(
        "[package]\nname = \"std-user-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nlinux-aio = {{ path = {:?} }}\n\n[workspace]\n",
        root()
    );
    let main = "use std::os::fd::AsFd;\n\nfn main() {\n    \
                let file = std::fs::File::open(\"/dev/null\").unwrap();\n    \
                let mut buf = [0u8; 8];\n    \
                let _ = linux_aio::Request::read(file.as_fd(), &mut buf, 0);\n}\n";
    let ok = std::fs::create_dir_all(scratch.join("src")).is_ok()
        && std::fs::write(scratch.join("Cargo.toml"), manifest).is_ok()
        && std::fs::write(scratch.join("src/main.rs"), main).is_ok();
    if !ok {
        t.fail("std user: could not prepare the scratch crate");
        return;
    }
    t.check(
        "std user: `Request::read(file.as_fd(), ..)` compiles with default features",
        cargo()
            .current_dir(&scratch)
            .args(["build", "-q", "--offline"])
            .env_remove("CARGO_TARGET_DIR"),
    );
}

// ---------------------------------------------------------------------------------------------
// Issue 15's additions: fuzzing, and the long soak. (The fault emulation, the short soak and the
// exhaustion test are test binaries of linux-aio and linux-aio-capi, counted with the others.)

/// Seconds each fuzz target runs in `cargo xtask test`.
const FUZZ_SECONDS_IN_SUITE: u32 = 15;
/// The fuzz targets of fuzz/ (cargo-fuzz, nightly).
const FUZZ_TARGETS: &[&str] = &["ring", "capi"];

/// The fuzz targets for `seconds` each, from the committed corpus (fuzz/corpus/<target>, read
/// only: new inputs go to a scratch directory). Needs nightly and cargo-fuzz, installed if
/// missing; without them the runs are skipped, except under CI=true, where that is a failure.
pub fn fuzz(t: &mut Tally, seconds: u32) {
    section("install: nightly toolchain and cargo-fuzz");
    let have_fuzz = || {
        Command::new("rustup")
            .args(["run", "nightly", "cargo", "fuzz", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ready = install_toolchain("nightly", &[])
        && (have_fuzz()
            || cargo()
                .args(["install", "--locked", "cargo-fuzz"])
                .status()
                .is_ok_and(|s| s.success())
                && have_fuzz());
    for target in FUZZ_TARGETS {
        let what = format!("fuzz: {target} for {seconds} s from fuzz/corpus/{target}");
        if !ready {
            let why = "nightly or cargo-fuzz could not be installed";
            if crate::ci() {
                t.fail(&format!("{what}: {why} (a failure under CI=true)"));
            } else {
                t.skip(&what, why);
            }
            continue;
        }
        let scratch = root().join("target/fuzz-scratch").join(target);
        let _ = std::fs::create_dir_all(&scratch);
        t.check(
            &what,
            Command::new("rustup")
                .current_dir(root().join("fuzz"))
                .args(["run", "nightly", "cargo", "fuzz", "run", "-O", target])
                .arg(&scratch)
                .arg(format!("corpus/{target}"))
                .args([
                    "--",
                    &format!("-max_total_time={seconds}"),
                    "-timeout=10",
                    "-print_funcs=0",
                ]),
        );
    }
}

/// `cargo xtask soak`: the long runs, each one check: 10 million requests (release build),
/// 65,536 contexts set up and destroyed, and each fuzz target for `fuzz_seconds`.
pub fn soak(t: &mut Tally, fuzz_seconds: u32) {
    t.tests(
        "soak: 10,000,000 mixed requests, 4 threads, 2 contexts, forks, signal storm",
        cargo_test()
            .args(["--release", "-p", "linux-aio", "--test", "soak"])
            .env("LINUX_AIO_SOAK_REQUESTS", "10000000"),
    );
    t.tests(
        "exhaustion: 65,536 contexts set up and destroyed",
        cargo_test()
            .args(["--release", "-p", "linux-aio", "--test", "exhaustion"])
            .env("LINUX_AIO_EXHAUST_CONTEXTS", "65536"),
    );
    fuzz(t, fuzz_seconds);
}

#[cfg(test)]
mod tests {
    #[test]
    fn recipe_files_from_the_readme() {
        let readme = std::fs::read_to_string(crate::root().join("README.md")).unwrap();
        let files = super::recipe_files(&readme);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["build.rs", "src/lib.rs"]);
        assert!(files[1].1.starts_with("#![no_std]"), "{:?}", files[1].1);
    }
}
