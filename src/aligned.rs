//! Buffers for `O_DIRECT` (feature `alloc`): heap memory aligned as direct I/O requires.
//!
//! `O_DIRECT` reads and writes need the buffer's address, its length and the file offset to be
//! multiples of the file's direct-I/O alignment, which depends on the filesystem and the device:
//! - Linux 6.1 and later report it: `statx(STATX_DIOALIGN)` gives `stx_dio_mem_align` (the
//!   buffer's address) and `stx_dio_offset_align` (the file offset and the length).
//!   [`DirectAlignment::of`] asks for it.
//! - Before that, or where the filesystem does not say, the device's logical block size is the
//!   rule, and 4096 bytes is a multiple of every common one (512 and 4096): that is the
//!   fallback [`DirectAlignment::of`] answers with.
//!
//! The buffer is `Send` and `Sync`, derefs to `[u8]`, starts zeroed, and keeps its address when
//! the `AlignedBuf` value moves (it is on the heap), so it can be lent to a scope or owned by an
//! in-flight request.

use core::alloc::Layout;
use core::ptr::NonNull;

use rustix::fd::BorrowedFd;
use rustix::io::Errno;

extern crate alloc;

/// The alignment `O_DIRECT` needs on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectAlignment {
    /// Required alignment of the buffer's address.
    pub memory: usize,
    /// Required alignment of the file offset and of the length.
    pub offset: usize,
    /// True if the kernel reported these (`STATX_DIOALIGN`); false for the 4096-byte fallback.
    pub reported: bool,
}

/// What [`DirectAlignment::of`] answers when the kernel does not say.
pub const FALLBACK_DIRECT_ALIGNMENT: usize = 4096;

impl DirectAlignment {
    /// The direct-I/O alignment of the file open at `fd`: `STATX_DIOALIGN` (Linux 6.1) where
    /// the kernel reports it, else 4096 bytes for both. `Ok` with `memory == 0` never happens:
    /// a file that the kernel says cannot do direct I/O at all gives `EINVAL`.
    pub fn of(fd: BorrowedFd<'_>) -> Result<DirectAlignment, Errno> {
        use rustix::fs::{statx, AtFlags, StatxFlags};
        let fallback = DirectAlignment {
            memory: FALLBACK_DIRECT_ALIGNMENT,
            offset: FALLBACK_DIRECT_ALIGNMENT,
            reported: false,
        };
        match statx(fd, c"", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN) {
            Ok(st) if st.stx_mask & StatxFlags::DIOALIGN.bits() != 0 => {
                if st.stx_dio_mem_align == 0 || st.stx_dio_offset_align == 0 {
                    return Err(Errno::INVAL); // "direct I/O is not supported on this file"
                }
                Ok(DirectAlignment {
                    memory: st.stx_dio_mem_align as usize,
                    offset: st.stx_dio_offset_align as usize,
                    reported: true,
                })
            }
            Ok(_) | Err(Errno::NOSYS) => Ok(fallback),
            Err(e) => Err(e),
        }
    }
}

/// A zeroed heap buffer of `len` bytes at an address aligned to `align`.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    align: usize,
}

// SAFETY: the buffer is plain bytes owned by this value alone (like a Box<[u8]>).
unsafe impl Send for AlignedBuf {}
// SAFETY: as above; `&AlignedBuf` gives only shared access to the bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// `len` zeroed bytes aligned to `align` (a power of two). `EINVAL` for an alignment that
    /// is not a power of two or a size too large to lay out; `ENOMEM` if the allocation fails.
    pub fn new(len: usize, align: usize) -> Result<AlignedBuf, Errno> {
        let layout = Layout::from_size_align(len.max(1), align).map_err(|_| Errno::INVAL)?;
        // SAFETY: the layout has a nonzero size (at least 1 byte).
        let raw = unsafe { alloc::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(Errno::NOMEM)?;
        Ok(AlignedBuf { ptr, len, align })
    }

    /// A buffer for `O_DIRECT` on `fd`: aligned to the file's memory alignment, its length
    /// `len` rounded up to the file's offset alignment (see [`DirectAlignment::of`]).
    pub fn for_direct_io(fd: BorrowedFd<'_>, len: usize) -> Result<AlignedBuf, Errno> {
        let a = DirectAlignment::of(fd)?;
        let len = len.checked_next_multiple_of(a.offset).ok_or(Errno::INVAL)?;
        AlignedBuf::new(len, a.memory.max(1))
    }

    /// The alignment the buffer was made with.
    pub fn align(&self) -> usize {
        self.align
    }

    fn layout(&self) -> Layout {
        // SAFETY: `new` built exactly this layout successfully.
        unsafe { Layout::from_size_align_unchecked(self.len.max(1), self.align) }
    }
}

impl core::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` owns `len` initialised (zeroed at first) bytes for the value's life.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl core::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated by `new` with this very layout, and not freed before.
        unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), self.layout()) }
    }
}

impl core::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("align", &self.align)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    //! Under Miri too: allocation, alignment, access and release.
    use super::*;

    #[test]
    fn aligned_zeroed_and_released() {
        for (len, align) in [(0, 1), (1, 512), (4096, 4096), (10_000, 8192)] {
            let mut b = AlignedBuf::new(len, align).unwrap();
            assert_eq!(b.len(), len);
            assert_eq!(b.as_ptr() as usize % align, 0);
            assert!(b.iter().all(|&x| x == 0));
            if len > 0 {
                b[len - 1] = 7;
                assert_eq!(b[len - 1], 7);
            }
            assert_eq!(b.align(), align);
        }
        assert_eq!(AlignedBuf::new(16, 3).err(), Some(Errno::INVAL));
        assert_eq!(AlignedBuf::new(usize::MAX, 4096).err(), Some(Errno::INVAL));
    }
}
