//! Builds the C competitors in `c/` with the `cc` crate and links libaio and liburing.
//!
//! They need Debian's `libaio-dev` and `liburing-dev`. Where a header is missing, that
//! competitor is replaced by a stand-in (`c/missing.c`) that fails to open, so the workspace
//! still builds (clippy, `cargo build --workspace`); the benchmark then reports it as skipped
//! with the package to install, and `cargo xtask bench` refuses to run until both are there.

use std::path::Path;

/// One optional C library: its header, Debian package, our source using it, the library to link
/// and the macro that makes `c/missing.c` stand in for it.
struct CLibrary {
    header: &'static str,
    package: &'static str,
    source: &'static str,
    link: &'static str,
    missing_macro: &'static str,
}

const LIBRARIES: &[CLibrary] = &[
    CLibrary {
        header: "libaio.h",
        package: "libaio-dev",
        source: "c/libaio.c",
        link: "aio",
        missing_macro: "MISSING_LIBAIO",
    },
    CLibrary {
        header: "liburing.h",
        package: "liburing-dev",
        source: "c/uring.c",
        link: "uring",
        missing_macro: "MISSING_LIBURING",
    },
];

fn header_installed(header: &str) -> bool {
    ["/usr/include", "/usr/local/include"]
        .iter()
        .any(|dir| Path::new(dir).join(header).exists())
}

fn main() {
    println!("cargo:rerun-if-changed=c");
    let mut build = cc::Build::new();
    build
        .files(["c/floor.c", "c/sync.c", "c/missing.c"])
        .include("c")
        .warnings(true)
        .extra_warnings(true)
        .std("gnu11");
    let mut missing = Vec::new();
    for lib in LIBRARIES {
        if header_installed(lib.header) {
            build.file(lib.source);
            println!("cargo:rustc-link-lib={}", lib.link);
        } else {
            build.define(lib.missing_macro, None);
            missing.push(lib.package);
            println!(
                "cargo:warning={} not found: its competitor is left out (apt-get install -y {})",
                lib.header, lib.package
            );
        }
    }
    build.compile("linux_aio_bench_c");
    // Read by src/ffi.rs to say why a competitor cannot open.
    println!(
        "cargo:rustc-env=LINUX_AIO_BENCH_MISSING={}",
        missing.join(" ")
    );
}
