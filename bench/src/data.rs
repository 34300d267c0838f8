//! The data the read scenarios use: the 1 GiB file (made once, cached under
//! `target/bench-data`), its tmpfs copy, the random offsets, aligned buffers, and the
//! filesystem type of a path.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Size of the test file.
pub const FILE_SIZE: u64 = 1 << 30;
/// Size of one read, and the alignment O_DIRECT wants.
pub const BLOCK: usize = 4096;
/// Entries in the random-offset table (a power of two).
pub const OFFSETS: usize = 1 << 16;

const FILE_NAME: &str = "random-1g.dat";
/// Written after the file is complete, so an interrupted creation is redone.
const DONE_MARKER: &str = "random-1g.dat.complete";

/// A small deterministic generator (xorshift64*), so every run reads the same pattern.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `OFFSETS` random 4 KiB-aligned offsets inside the file, the same on every run.
pub fn random_offsets() -> Vec<u64> {
    let mut rng = Rng::new(0x5eed_a10a_10a1);
    let blocks = FILE_SIZE / BLOCK as u64;
    (0..OFFSETS)
        .map(|_| (rng.next_u64() % blocks) * BLOCK as u64)
        .collect()
}

/// The 1 GiB file in `dir`, created (pseudo-random content, fsynced) if it is not there yet.
/// Returns its path and whether it had to be created.
pub fn ensure_file(dir: &Path) -> Result<(PathBuf, bool), String> {
    let path = dir.join(FILE_NAME);
    let marker = dir.join(DONE_MARKER);
    let complete = marker.exists()
        && fs::metadata(&path)
            .map(|m| m.len() == FILE_SIZE)
            .unwrap_or(false);
    if complete {
        return Ok((path, false));
    }
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let _ = fs::remove_file(&marker);
    let mut file = File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let mut rng = Rng::new(42);
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..FILE_SIZE / chunk.len() as u64 {
        for word in chunk.chunks_exact_mut(8) {
            word.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        file.write_all(&chunk)
            .map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    file.sync_all()
        .map_err(|e| format!("fsync {}: {e}", path.display()))?;
    File::create(&marker).map_err(|e| format!("create {}: {e}", marker.display()))?;
    Ok((path, true))
}

/// Reads the whole file once so that it sits in the page cache.
pub fn warm_page_cache(path: &Path) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(format!("read {}: {e}", path.display())),
        }
    }
}

/// The filesystem type of the mount holding `path` (from `/proc/self/mounts`, longest
/// mount-point prefix), and the bytes free there.
pub fn filesystem(path: &Path) -> (String, u64) {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let fstype = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, dir, ty) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(dir).then(|| (dir.len(), ty.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, ty)| ty)
        .unwrap_or_else(|| "unknown".into());
    let free = CString::new(path.as_os_str().as_bytes())
        .ok()
        .and_then(|c| {
            // SAFETY: an all-zero statvfs is valid; statvfs only writes it.
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            // SAFETY: `c` is a NUL-terminated path and `st` is writable.
            (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0)
                .then(|| st.f_bavail as u64 * st.f_frsize as u64)
        })
        .unwrap_or(0);
    (fstype, free)
}

/// A copy of the file on tmpfs, removed on drop (it holds 1 GiB of memory).
pub struct TmpfsCopy {
    pub path: PathBuf,
}

impl TmpfsCopy {
    /// Copies `src` to `/dev/shm` if that is a tmpfs with room; otherwise says why not.
    pub fn make(src: &Path) -> Result<TmpfsCopy, String> {
        let dir = Path::new("/dev/shm");
        if !dir.is_dir() {
            return Err("/dev/shm does not exist".into());
        }
        let (fstype, free) = filesystem(dir);
        if fstype != "tmpfs" {
            return Err(format!("/dev/shm is {fstype}, not tmpfs"));
        }
        if free < FILE_SIZE + (256 << 20) {
            return Err(format!(
                "/dev/shm has {} MiB free, needs {} MiB",
                free >> 20,
                (FILE_SIZE >> 20) + 256
            ));
        }
        remove_stale_copies(dir);
        let path = dir.join(format!("linux-aio-bench-{}.dat", std::process::id()));
        let copy = TmpfsCopy { path };
        fs::copy(src, &copy.path).map_err(|e| format!("copy to {}: {e}", copy.path.display()))?;
        Ok(copy)
    }
}

/// Removes copies left by runs that were killed before they could remove their own (the file
/// name carries the pid of the run that made it).
fn remove_stale_copies(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("linux-aio-bench-"))
            .and_then(|n| n.strip_suffix(".dat"))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

impl Drop for TmpfsCopy {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Opens `path` read-only, with `O_DIRECT` if asked, and proves the mode works with one
/// aligned read (filesystems without O_DIRECT fail the open or the read with `EINVAL`).
pub fn open_for_reads(path: &Path, direct: bool, probe: &mut AlignedBuf) -> Result<File, String> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    if direct {
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut opts, libc::O_DIRECT);
    }
    let file = opts.open(path).map_err(|e| {
        format!(
            "open {}{}: {e}",
            path.display(),
            if direct { " with O_DIRECT" } else { "" }
        )
    })?;
    let buf = probe.as_mut_slice();
    // SAFETY: `buf` is writable for BLOCK bytes and BLOCK-aligned.
    let n = unsafe { libc::pread(file.as_raw_fd(), buf.as_mut_ptr().cast(), BLOCK, 0) };
    if n != BLOCK as isize {
        return Err(format!(
            "a {BLOCK}-byte read of {}{} failed: {}",
            path.display(),
            if direct { " with O_DIRECT" } else { "" },
            std::io::Error::last_os_error()
        ));
    }
    Ok(file)
}

/// A zeroed, 4 KiB-aligned heap buffer (O_DIRECT needs the alignment).
pub struct AlignedBuf {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    pub fn new(len: usize) -> AlignedBuf {
        let layout = std::alloc::Layout::from_size_align(len.max(BLOCK), BLOCK).expect("layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        AlignedBuf { ptr, layout }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is a live allocation of `layout.size()` initialised bytes, borrowed
        // uniquely through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// An eventfd with a non-zero counter: always readable, so a POLL for `POLLIN` on it completes
/// inside `io_submit`. Polling never consumes the counter.
pub fn ready_eventfd() -> Result<OwnedFd, String> {
    // SAFETY: plain syscall wrapper.
    let fd = unsafe { libc::eventfd(1, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by eventfd and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
