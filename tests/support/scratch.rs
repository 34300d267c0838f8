//! Helpers shared by the kernel-facing suites: scratch files, eventfds and data patterns.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A scratch file, removed when dropped.
pub struct Scratch {
    pub file: File,
    pub path: PathBuf,
}

impl Scratch {
    /// A new, empty file in the temp directory; `tag` keeps a suite's files apart.
    pub fn new(tag: &str) -> Scratch {
        Scratch::new_in(&std::env::temp_dir(), tag)
    }

    /// A new, empty file in `dir`.
    pub fn new_in(dir: &Path, tag: &str) -> Scratch {
        let exe = std::env::current_exe().ok();
        let suite = exe
            .as_deref()
            .and_then(Path::file_stem)
            .and_then(|s| s.to_str())
            .unwrap_or("test");
        let path = dir.join(format!("linux-aio-{suite}-{}-{tag}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        Scratch { file, path }
    }

    /// Removes the file's name now, keeping it open: for a scratch file that no `Drop` will
    /// clean up (held in a `static`, or used by a child process that aborts or `_exit`s).
    pub fn unlink_now(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// The descriptor, as an `iocb` wants it.
    pub fn fd(&self) -> u32 {
        self.file.as_raw_fd() as u32
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A buffer of `len` bytes aligned to 4096 (what `O_DIRECT` wants), inside `storage`.
pub fn aligned(storage: &mut Vec<u8>, len: usize) -> &mut [u8] {
    storage.resize(len + 4096, 0);
    let off = storage.as_ptr().align_offset(4096);
    &mut storage[off..off + len]
}

/// `path` opened for reading and writing with `O_DIRECT`; `None` where the file system refuses it.
pub fn open_direct(path: &std::path::Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

/// A non-blocking eventfd with a zero counter.
pub fn eventfd() -> OwnedFd {
    let flags = rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK;
    rustix::event::eventfd(0, flags).unwrap()
}

/// `len` bytes that differ from position to position and from seed to seed.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
