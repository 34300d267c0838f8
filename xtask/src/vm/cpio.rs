//! A writer of "newc" cpio archives, the format the kernel unpacks as an initramfs (left
//! uncompressed: the kernel accepts that, and it saves the guest a decompression under TCG).
//!
//! Each entry is a 110-byte ASCII header (`070701`, then 13 eight-digit hex fields), the
//! NUL-terminated name padded to 4 bytes, and the data padded to 4 bytes; `TRAILER!!!` ends it.
//! The kernel creates no missing parent directory, so [`Cpio::file`] writes those first.

use std::collections::BTreeSet;
use std::io::{self, Write};

pub struct Cpio<W: Write> {
    out: W,
    ino: u32,
    dirs: BTreeSet<String>,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

impl<W: Write> Cpio<W> {
    pub fn new(out: W) -> Self {
        Cpio {
            out,
            ino: 0,
            dirs: BTreeSet::new(),
        }
    }

    /// A directory (once: a second call for the same name writes nothing).
    pub fn dir(&mut self, name: &str) -> io::Result<()> {
        if !self.dirs.insert(name.to_string()) {
            return Ok(());
        }
        self.entry(name, S_IFDIR | 0o755, 2, (0, 0), &[])
    }

    /// A file, after its parent directories.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        for (i, _) in name.match_indices('/') {
            self.dir(&name[..i])?;
        }
        self.entry(name, S_IFREG | mode, 1, (0, 0), data)
    }

    pub fn char_dev(&mut self, name: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(name, S_IFCHR | mode, 1, (major, minor), &[])
    }

    /// Writes the trailer and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        self.ino += 1;
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::other(format!("{name}: over 4 GiB")))?;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            size, // ino mode uid gid nlink mtime filesize
            0,
            0,
            rdev.0,
            rdev.1, // devmajor devminor rdevmajor rdevminor
            name.len() as u32 + 1,
            0, // namesize (with the NUL) check
        ];
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(header.len() + name.len() + 1)?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    /// Zeros up to the next multiple of 4 after `len` bytes (every entry starts aligned).
    fn pad(&mut self, len: usize) -> io::Result<()> {
        self.out.write_all(&[0; 3][..(4 - len % 4) % 4])
    }
}

#[cfg(test)]
mod tests {
    use super::Cpio;

    #[test]
    fn layout() {
        let mut c = Cpio::new(Vec::new());
        c.file("init", 0o755, b"hello").unwrap();
        let out = c.finish().unwrap();
        let header = std::str::from_utf8(&out[..110]).unwrap();
        assert!(header.starts_with("07070100000001000081ed"));
        assert_eq!(&header[54..62], "00000005"); // filesize
        assert_eq!(&header[94..102], "00000005"); // namesize: "init\0"
        assert_eq!(&out[110..115], b"init\0");
        assert_eq!(&out[116..121], b"hello"); // 110 + 5 = 115, padded to 116
        assert_eq!(out.len() % 4, 0);
        assert_eq!(&out[124 + 110..124 + 120], b"TRAILER!!!");
    }

    #[test]
    fn parents_first_and_once() {
        let mut c = Cpio::new(Vec::new());
        c.file("lib/x/a", 0o644, b"").unwrap();
        c.file("lib/x/b", 0o644, b"").unwrap();
        let out = String::from_utf8_lossy(&c.finish().unwrap()).into_owned();
        let names: Vec<&str> = out
            .split("070701")
            .filter_map(|e| e.get(104..)?.split('\0').next())
            .collect();
        assert_eq!(names, ["lib", "lib/x", "lib/x/a", "lib/x/b", "TRAILER!!!"]);
    }
}
