//! `cargo xtask vm --arch A`: the kernel-facing suite inside a qemu-system guest (in progress).

use crate::Tally;

/// Boots `arch`'s pinned kernel with the test binaries and adds the guest's counts to `t`.
pub fn run(t: &mut Tally, arch: &str) {
    t.skip(&format!("qemu-system guest {arch}"), "not implemented yet");
}

/// Debian packages the guests need (installed without recommends).
pub fn install_packages() -> Vec<&'static str> {
    Vec::new()
}
