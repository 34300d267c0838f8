//! Compiles probe.c for the target with its C cross compiler (picked by `cc`), reading the same
//! pinned UAPI header packages as `cargo gen` (gen/headers.lock) where they are installed, and
//! sets the `linux_aio_arch` cfg exactly as linux-aio's own build script does (tests/layout.rs
//! compares per-module declarations).

use std::path::Path;

include!("../../arch/select.rs");

fn main() {
    println!("cargo::rerun-if-changed=probe.c");
    println!("cargo::rerun-if-changed=../../arch/select.rs");
    linux_aio_emit_cfg();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let soft_float = std::env::var("CARGO_CFG_TARGET_ABI").is_ok_and(|abi| abi == "eabi");
    // Debian's directory for each architecture module's headers (armel's for soft-float arm;
    // its UAPI headers are armhf's).
    let triple = match linux_aio_select_arch() {
        "x86_64" => Some("x86_64-linux-gnu"),
        "aarch64" => Some("aarch64-linux-gnu"),
        "riscv64" => Some("riscv64-linux-gnu"),
        "powerpc64le" => Some("powerpc64le-linux-gnu"),
        "arm" if soft_float => Some("arm-linux-gnueabi"),
        "arm" => Some("arm-linux-gnueabihf"),
        "x86" => Some("i686-linux-gnu"),
        "s390x" => Some("s390x-linux-gnu"),
        _ => None,
    };
    let mut build = cc::Build::new();
    build.file("probe.c");
    // Debian's linux-libc-dev-<arch>-cross packages install the UAPI headers here.
    let include = triple.map(|t| format!("/usr/{t}/include"));
    match include {
        Some(dir) if Path::new(&dir).is_dir() => {
            println!("cargo::rerun-if-changed={dir}");
            build.flag("-isystem").flag(&dir);
        }
        _ => println!(
            "cargo::warning=no UAPI header directory {} for target arch {arch}: \
             probe.c uses the C compiler's default headers",
            include.as_deref().unwrap_or("(none)")
        ),
    }
    build.compile("abi_probe");
}
