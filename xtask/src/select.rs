//! Which module arch/select.rs gives each kind of target, including the ones that must stay on
//! the ENOSYS module (a target this machine cannot build for is still checked here).

include!("../../arch/select.rs");

#[test]
fn modules_by_os_arch_endianness_and_width() {
    let cases = [
        ("linux", "x86_64", "little", "64", "x86_64"),
        ("linux", "aarch64", "little", "64", "aarch64"),
        ("linux", "riscv64", "little", "64", "riscv64"),
        ("linux", "powerpc64", "little", "64", "powerpc64le"),
        ("linux", "arm", "little", "32", "arm"),
        ("linux", "x86", "little", "32", "x86"),
        ("linux", "s390x", "big", "64", "s390x"),
        // Other ABIs of the same architectures, and everything else.
        ("linux", "x86_64", "little", "32", "enosys"), // x32
        ("linux", "powerpc64", "big", "64", "enosys"),
        ("linux", "arm", "big", "32", "enosys"), // armeb
        ("linux", "aarch64", "big", "64", "enosys"),
        ("linux", "loongarch64", "little", "64", "enosys"),
        ("linux", "mips", "big", "32", "enosys"),
        ("linux", "mips64", "little", "64", "enosys"),
        ("linux", "sparc64", "big", "64", "enosys"),
        ("linux", "powerpc", "big", "32", "enosys"),
        ("linux", "riscv32", "little", "32", "enosys"),
        ("android", "arm", "little", "32", "enosys"),
        ("none", "x86_64", "little", "64", "enosys"),
        ("freebsd", "x86", "little", "32", "enosys"),
    ];
    std::env::remove_var("LINUX_AIO_FORCE_ENOSYS");
    for (os, arch, endian, width, want) in cases {
        std::env::set_var("CARGO_CFG_TARGET_OS", os);
        std::env::set_var("CARGO_CFG_TARGET_ARCH", arch);
        std::env::set_var("CARGO_CFG_TARGET_ENDIAN", endian);
        std::env::set_var("CARGO_CFG_TARGET_POINTER_WIDTH", width);
        assert_eq!(
            linux_aio_select_arch(),
            want,
            "{os} {arch} {endian} {width}"
        );
    }
    std::env::set_var("LINUX_AIO_FORCE_ENOSYS", "1");
    assert_eq!(
        linux_aio_select_arch(),
        "enosys",
        "LINUX_AIO_FORCE_ENOSYS=1"
    );
    std::env::remove_var("LINUX_AIO_FORCE_ENOSYS");
}
