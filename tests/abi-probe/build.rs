//! Compiles probe.c for the target with its C cross compiler (picked by `cc`), reading the same
//! pinned UAPI header packages as `cargo gen` (gen/headers.lock) where they are installed.

use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=probe.c");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let triple = match arch.as_str() {
        "x86_64" => Some("x86_64-linux-gnu"),
        "aarch64" => Some("aarch64-linux-gnu"),
        "riscv64" => Some("riscv64-linux-gnu"),
        "powerpc64" => Some("powerpc64le-linux-gnu"),
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
