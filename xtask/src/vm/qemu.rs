//! Boots a kernel and initramfs under qemu-system (TCG) with the serial console on stdout,
//! echoing the console and keeping its lines; a guest still running after the time limit is
//! killed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One architecture's qemu-system.
pub struct Machine {
    pub qemu: &'static str,
    pub args: &'static [&'static str],
    pub console: &'static str,
}

pub fn machine(arch: &str) -> Machine {
    match arch {
        "x86_64" => Machine { qemu: "qemu-system-x86_64", args: &[], console: "ttyS0" },
        // cortex-a57: `-cpu max` emulates pointer authentication, which is slow under TCG.
        "aarch64" => Machine {
            qemu: "qemu-system-aarch64",
            args: &["-M", "virt", "-cpu", "cortex-a57"],
            console: "ttyAMA0",
        },
        // OpenSBI as the firmware; the kernel is the package's vmlinux ELF.
        "riscv64" => Machine {
            qemu: "qemu-system-riscv64",
            args: &["-M", "virt", "-bios", "default"],
            console: "ttyS0",
        },
        // pseries: the host-side spectre capabilities that TCG cannot provide are switched off
        // (else qemu warns on every boot); x-vof replaces SLOF, which saves seconds of boot.
        "ppc64le" => Machine {
            qemu: "qemu-system-ppc64",
            args: &[
                "-M",
                "pseries,x-vof=on,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off",
                "-vga",
                "none",
            ],
            console: "hvc0",
        },
        // Debian's armmp-lpae kernel on a Cortex-A15 (which has LPAE); qemu builds the device
        // tree of `virt` itself.
        "armv7" => Machine {
            qemu: "qemu-system-arm",
            args: &["-M", "virt", "-cpu", "cortex-a15"],
            console: "ttyAMA0",
        },
        // The 686-pae kernel wants PAE and NX: `max` has both under TCG.
        "i686" => Machine {
            qemu: "qemu-system-i386",
            args: &["-cpu", "max"],
            console: "ttyS0",
        },
        // The console is the SCLP line console.
        "s390x" => Machine {
            qemu: "qemu-system-s390x",
            args: &["-M", "s390-ccw-virtio"],
            console: "ttysclp0",
        },
        _ => unreachable!("architecture checked by target_of"),
    }
}

pub struct Run {
    pub lines: Vec<String>,
    /// None when the guest was killed at the time limit.
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
}

/// Boots `kernel` with `initrd`, echoing the console with `[label] ` before each line.
pub fn boot(
    m: &Machine,
    kernel: &Path,
    initrd: &Path,
    limit: Duration,
    label: &str,
) -> std::io::Result<Run> {
    let append = format!("console={} rdinit=/init panic=-1 quiet", m.console);
    let mut cmd = Command::new(m.qemu);
    cmd.args(m.args)
        .args([
            "-nographic",
            "-no-reboot",
            "-nic",
            "none",
            "-m",
            "1G",
            "-smp",
            "1",
        ])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &append])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    println!("[{label}] {cmd:?}");
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let console = child.stdout.take().unwrap();
    let echo = {
        let lines = Arc::clone(&lines);
        let label = label.to_string();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(console);
            let mut buf = Vec::new();
            // Lines, not strings: the console may carry bytes that are not UTF-8.
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = printable(&String::from_utf8_lossy(&buf));
                println!("[{label}] {line}");
                lines.lock().unwrap().push(line);
                buf.clear();
            }
        })
    };
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let elapsed = start.elapsed();
    let _ = echo.join();
    let lines = std::mem::take(&mut *lines.lock().unwrap());
    Ok(Run {
        lines,
        status,
        elapsed,
    })
}

/// `line` without terminal escape sequences (the firmware clears the screen) and control
/// characters, so that echoing the console cannot disturb the terminal.
fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            // CSI: ESC [ parameters, ended by a byte in @..~; any other escape is two characters.
            '\x1b' => {
                if chars.next() == Some('[') {
                    let _ = chars.find(|c| ('@'..='~').contains(c));
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable() {
        assert_eq!(
            super::printable("\x1bc\x1b[?7l\x1b[2JSeaBIOS 1.16\r\n"),
            "SeaBIOS 1.16"
        );
        assert_eq!(super::printable("a\tb\x07c"), "a\tbc");
    }
}
