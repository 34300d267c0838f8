//! Re-executing the test binary as a child process (for tests that must not disturb the runner:
//! signals, seccomp filters, possible hangs).
//!
//! Under qemu-user the binary is a foreign executable that the host cannot run by itself:
//! `cargo xtask test` then passes the runner in `LINUX_AIO_TEST_RUNNER` (as `.cargo/config.toml`
//! spells it, e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`), and the child is started through
//! it. Run by hand under qemu-user without it, a child cannot start: [`START_FAILED`].

#![allow(dead_code)]

use std::process::Command;

/// The exit status of a child that could not be started at all (the shell's "cannot execute").
pub const START_FAILED: i32 = 127;

/// A `Command` that runs this test binary again.
pub fn self_command() -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    match std::env::var("LINUX_AIO_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap());
            cmd.args(words).arg(exe);
            cmd
        }
        _ => Command::new(exe),
    }
}

/// Why a child that ended with `code` and printed nothing could not run, if that is what
/// happened.
pub fn start_failure(code: Option<i32>, output: &str) -> Option<String> {
    (code == Some(START_FAILED) && output.trim().is_empty()).then(|| {
        "the test binary cannot be re-executed here (under qemu-user, set LINUX_AIO_TEST_RUNNER \
         to the runner, as `cargo xtask test` does)"
            .to_string()
    })
}
