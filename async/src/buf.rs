//! Owned buffers: the traits a buffer implements to be handed to the kernel by value, and an
//! aligned buffer for `O_DIRECT`.
//!
//! A request takes its buffer by value and hands it back with the result, as tokio-uring does:
//! while the request is in flight nothing but the kernel touches the bytes, and if the future is
//! dropped the driver keeps the buffer until the kernel has completed the request (see the crate
//! documentation). That is only sound for buffers whose bytes do not move when the buffer value
//! moves (a `Vec`'s or a `Box`'s heap memory), hence the `unsafe` traits.

use std::alloc::Layout;
use std::ptr::NonNull;

/// A buffer the kernel may read from (writes) while the value is owned by a request.
///
/// # Safety
/// - [`IoBuf::stable_ptr`] must point to at least [`IoBuf::bytes_total`] bytes that stay
///   allocated, at the same address, while the value is moved (between threads, too) and until
///   it is dropped: heap memory owned by the value, or `'static` memory. An inline array does not
///   qualify.
/// - The first [`IoBuf::bytes_init`] of them must be initialised, and `bytes_init() <=
///   bytes_total()`.
/// - None of these may change while the value is not accessed through `&mut`.
pub unsafe trait IoBuf: Unpin + Send + 'static {
    /// The start of the bytes.
    fn stable_ptr(&self) -> *const u8;
    /// How many bytes are initialised (a write sends these).
    fn bytes_init(&self) -> usize;
    /// How many bytes the buffer can hold (a read may fill these).
    fn bytes_total(&self) -> usize;
}

/// A buffer the kernel may write into (reads) while the value is owned by a request.
///
/// # Safety
/// As [`IoBuf`]; [`IoBufMut::stable_mut_ptr`] must return the same address as
/// [`IoBuf::stable_ptr`], and writing any bytes into `[ptr, ptr + bytes_total())` must leave the
/// value valid.
pub unsafe trait IoBufMut: IoBuf {
    /// The start of the bytes, for writing.
    fn stable_mut_ptr(&mut self) -> *mut u8;

    /// Records that the first `pos` bytes are now initialised (a read filled them). Never
    /// shrinks what is already initialised.
    ///
    /// # Safety
    /// The first `pos` bytes must be initialised, and `pos <= bytes_total()`.
    unsafe fn set_init(&mut self, pos: usize);
}

// SAFETY: a Vec's bytes live in its heap allocation (or, for capacity 0, nowhere: 0 bytes), which
// does not move when the Vec value moves and stays until it is dropped or reallocated, which
// needs `&mut`. `len <= capacity`, and the first `len` bytes are initialised.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as for `IoBuf`; any bytes are valid `u8`s, and `set_len` only grows `len` over bytes
// the caller says are initialised.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        if pos > self.len() {
            // SAFETY: the caller guarantees `pos <= capacity` and that the bytes are initialised.
            unsafe { self.set_len(pos) };
        }
    }
}

// SAFETY: a boxed slice's bytes live in its heap allocation (none when empty), which does not
// move with the Box and stays until it is dropped; every byte is initialised.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: as above; any bytes are valid `u8`s, and every byte is initialised already.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

// SAFETY: `'static` bytes never move or go away; all are initialised; the kernel only reads
// them (no `IoBufMut`).
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

/// A zero-initialised heap buffer with a chosen alignment, for `O_DIRECT`, whose buffers (and
/// lengths and offsets) must be aligned as the file's filesystem and device require: see
/// [`dio_alignment`](crate::dio_alignment).
///
/// Dereferences to `[u8]`; its length is fixed (every byte is initialised, and a read may fill
/// all of them).
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    align: usize,
}

// SAFETY: the buffer owns its allocation exclusively (like a `Box<[u8]>`); nothing about it is
// tied to a thread.
unsafe impl Send for AlignedBuf {}
// SAFETY: `&AlignedBuf` only reads the bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// `len` zero bytes aligned to 4096 (a page: enough for every filesystem and device this
    /// crate has met). `None` if `len` is 0 or too large to allocate.
    pub fn new(len: usize) -> Option<AlignedBuf> {
        AlignedBuf::with_alignment(len, 4096)
    }

    /// `len` zero bytes aligned to `align` (a power of two). `None` if `len` is 0, `align` is
    /// not a power of two, or the size is too large.
    pub fn with_alignment(len: usize, align: usize) -> Option<AlignedBuf> {
        if len == 0 {
            return None;
        }
        let layout = Layout::from_size_align(len, align).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(AlignedBuf { ptr, len, align })
    }

    /// The alignment the buffer was made with.
    pub fn alignment(&self) -> usize {
        self.align
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `with_alignment` with exactly this layout (it was valid then).
        unsafe {
            std::alloc::dealloc(
                self.ptr.as_ptr(),
                Layout::from_size_align_unchecked(self.len, self.align),
            )
        }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialised (zeroed, then only ever written as bytes) bytes at `ptr`,
        // owned by `self`; the shared borrow of `self` keeps `&mut` access out.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("align", &self.align)
            .finish()
    }
}

// SAFETY: the bytes live in the buffer's own allocation, which never moves and stays until
// drop; all `len` bytes are initialised (zeroed at allocation).
unsafe impl IoBuf for AlignedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.len
    }
}

// SAFETY: as above; any bytes are valid, and every byte is initialised already.
unsafe impl IoBufMut for AlignedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_grows_its_length_only() {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&[1, 2, 3]);
        assert_eq!((v.bytes_init(), v.bytes_total() >= 16), (3, true));
        // SAFETY: 3 bytes are initialised.
        unsafe { v.set_init(2) };
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn aligned_buffers() {
        let b = AlignedBuf::with_alignment(8192, 4096).unwrap();
        assert_eq!(b.as_ptr() as usize % 4096, 0);
        assert!(b.iter().all(|&x| x == 0));
        assert!(AlignedBuf::new(0).is_none());
        assert!(AlignedBuf::with_alignment(16, 3).is_none());
    }
}
