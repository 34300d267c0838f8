//! Selects the architecture module (or the ENOSYS module) for the target. Needs no C compiler,
//! no libclang and no kernel headers: the ABI files under `arch/` are generated ahead of time by
//! `cargo gen` and committed.

include!("arch/select.rs");

fn main() {
    println!("cargo::rerun-if-changed=arch/select.rs");
    linux_aio_emit_cfg();
}
