// Which architecture module a target gets. Shared by this crate's build.rs and by any crate that
// vendors `arch/` and `src/raw/` (its build script does `include!("…/arch/select.rs")` and calls
// `linux_aio_emit_cfg()`). Plain std, no dependencies.

/// The `linux_aio_arch` value for the target cargo is building: one of the seven architecture
/// modules, or `"enosys"` for every other target (other architectures such as mips, sparc and
/// loongarch64, the x32 ABI, big-endian powerpc64, non-Linux systems, bare metal). Setting the environment variable
/// `LINUX_AIO_FORCE_ENOSYS` at build time selects `"enosys"` on any target.
pub fn linux_aio_select_arch() -> &'static str {
    let var = |key: &str| std::env::var(key).unwrap_or_default();
    if std::env::var_os("LINUX_AIO_FORCE_ENOSYS").is_some_and(|v| !v.is_empty() && v != "0") {
        return "enosys";
    }
    let os = var("CARGO_CFG_TARGET_OS");
    let arch = var("CARGO_CFG_TARGET_ARCH");
    let endian = var("CARGO_CFG_TARGET_ENDIAN");
    let width = var("CARGO_CFG_TARGET_POINTER_WIDTH");
    match (os.as_str(), arch.as_str(), endian.as_str(), width.as_str()) {
        ("linux", "x86_64", "little", "64") => "x86_64",
        ("linux", "aarch64", "little", "64") => "aarch64",
        ("linux", "riscv64", "little", "64") => "riscv64",
        // Little-endian only: ppc64 (big-endian) shares target_arch = "powerpc64" but has the
        // other iocb field order, and no module of its own yet.
        ("linux", "powerpc64", "little", "64") => "powerpc64le",
        // EABI, ARM or Thumb code, hard- or soft-float: one kernel ABI (the old ABI, OABI, has
        // no Rust target). Big-endian arm (armeb) has the other iocb order: no module yet.
        ("linux", "arm", "little", "32") => "arm",
        // i386 (i586, i686). x32 is target_arch "x86_64" with 32-bit pointers, not this.
        ("linux", "x86", "little", "32") => "x86",
        ("linux", "s390x", "big", "64") => "s390x",
        _ => "enosys",
    }
}

/// The oldest Rust (its minor version, 1.x) whose stable inline asm covers `arch`'s syscall
/// entry: PowerPC's became stable in 1.95 and s390x's in 1.84; the other architectures' long
/// before the crate's own minimum (1.82).
pub fn linux_aio_min_rustc(arch: &str) -> u32 {
    match arch {
        "powerpc64le" => 95,
        "s390x" => 84,
        _ => 0,
    }
}

/// The minor version of the `rustc` cargo builds with (`RUSTC`), if it can be told.
fn linux_aio_rustc_minor() -> Option<u32> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?; // "rustc 1.95.0 (...)"
    version.split('.').nth(1)?.parse().ok()
}

/// Prints the cargo directives: the selected `linux_aio_arch` cfg and its declaration, and
/// `linux_aio_rustc_too_old` when the compiler predates the module's stable inline asm (the
/// module then stops the build with a message saying which Rust it needs).
pub fn linux_aio_emit_cfg() {
    println!(
        "cargo::rustc-check-cfg=cfg(linux_aio_arch, \
         values(\"x86_64\", \"aarch64\", \"riscv64\", \"powerpc64le\", \"arm\", \"x86\", \
         \"s390x\", \"enosys\"))"
    );
    println!("cargo::rustc-check-cfg=cfg(linux_aio_rustc_too_old)");
    let arch = linux_aio_select_arch();
    println!("cargo::rustc-cfg=linux_aio_arch=\"{arch}\"");
    if linux_aio_rustc_minor().is_some_and(|minor| minor < linux_aio_min_rustc(arch)) {
        println!("cargo::rustc-cfg=linux_aio_rustc_too_old");
    }
    println!("cargo::rerun-if-env-changed=LINUX_AIO_FORCE_ENOSYS");
}
