//! Vectored-read destinations that a scope can borrow ([`ReadVecs`]), and the bytes an
//! `IoSlice`/`IoSliceMut` names.
//!
//! Both need `unsafe`, so they live here rather than with the requests:
//! - `IoSlice` and `IoSliceMut` are std's on `std` builds and rustix's own otherwise; the two
//!   share no method that yields their bytes, but both are laid out exactly as the kernel's
//!   `struct iovec { void *iov_base; size_t iov_len; }` (std guarantees it on Unix; rustix's are
//!   `repr(transparent)` over `iovec`). That layout is what `IOCB_CMD_PREADV`/`PWRITEV` hand to
//!   the kernel anyway, and it is asserted below.
//! - A `&'a mut [IoSliceMut<'b>]` is invariant in `'b`, so it cannot be stored in a
//!   `Request<'a>` as is; [`ReadVecs`] shortens `'b` to `'a`, which is sound because it never
//!   lets anything be written into the array.

use core::marker::PhantomData;

use rustix::io::{IoSlice, IoSliceMut};

/// The kernel's `struct iovec`.
#[repr(C)]
struct Iovec {
    base: *mut u8,
    len: usize,
}

// Both are two words, like `struct iovec`.
static_assertions::assert_eq_size!(IoSlice<'static>, Iovec);
static_assertions::assert_eq_size!(IoSliceMut<'static>, Iovec);
static_assertions::assert_eq_align!(IoSliceMut<'static>, Iovec);

/// `(iov_base, iov_len)` of an `IoSlice` or `IoSliceMut`.
fn parts<T>(iovec: &T) -> (*mut u8, usize) {
    let raw = (iovec as *const T).cast::<Iovec>();
    // SAFETY: only called with IoSlice/IoSliceMut, which are `struct iovec` (see the module
    // docs and the assertions above): an initialised, aligned base pointer, then the length.
    let Iovec { base, len } = unsafe { raw.read() };
    (base, len)
}

/// The bytes `slice` names.
pub(crate) fn bytes<'s>(slice: &'s IoSlice<'_>) -> &'s [u8] {
    let (base, len) = parts(slice);
    // SAFETY: an IoSlice<'x> is made from a `&'x [u8]` with exactly these parts, and 'x
    // outlives the borrow of the IoSlice itself.
    unsafe { core::slice::from_raw_parts(base, len) }
}

/// The destinations of a vectored read: the caller's `IoSliceMut` array, lent for `'a`.
///
/// The array and the buffers it names may live longer than `'a` (an array declared before a
/// [`Context::scope`](crate::Context::scope), and the buffers before it); a `ReadVecs` gives
/// access to the bytes of each buffer, never to the `IoSliceMut` values themselves, so it can
/// shorten their lifetime to `'a` without letting anything shorter-lived be stored in the
/// caller's array. Made by [`Request::readv`](crate::Request::readv) from `&mut [IoSliceMut]`
/// (or `&mut [IoSliceMut; N]`), handed back in a completion's
/// [`Buffer::ReadV`](crate::Buffer::ReadV), and accepted by `readv` again.
pub struct ReadVecs<'a> {
    base: *mut IoSliceMut<'a>,
    len: usize,
    /// The caller's `&'a mut [IoSliceMut<'b>]`, with `'b` shortened to `'a` (see `new`).
    _array: PhantomData<&'a mut [IoSliceMut<'a>]>,
}

// SAFETY: a ReadVecs is an exclusive borrow of `[IoSliceMut]`, which is Send and Sync (a
// `&mut [u8]` per element); it adds no shared state.
unsafe impl Send for ReadVecs<'_> {}
// SAFETY: as above; `&ReadVecs` only reads.
unsafe impl Sync for ReadVecs<'_> {}

// SAFETY: every variant of a Buffer is a borrow of bytes: `&mut [u8]`, `&[u8]`, a ReadVecs
// (Send and Sync above) or `&[IoSlice]`. `std::io::IoSlice` is Send and Sync (it is a `&[u8]`
// by contract), and so is rustix's no_std IoSlice in meaning, but that one is a plain `iovec`
// whose raw pointer gives it neither auto trait; without this, a no_std build (no rustix
// `std` feature) would have a Buffer that cannot move to the reaping thread. A Buffer adds no
// shared state of its own.
unsafe impl Send for crate::request::Buffer<'_> {}
// SAFETY: as above; `&Buffer` only reads the borrows.
unsafe impl Sync for crate::request::Buffer<'_> {}

impl<'a> ReadVecs<'a> {
    /// Lends `slices` (and the buffers they name) for `'a`.
    pub fn new<'b: 'a>(slices: &'a mut [IoSliceMut<'b>]) -> ReadVecs<'a> {
        // Only the elements' lifetime changes, from 'b to the shorter 'a. Through `&mut` that
        // would be unsound if something wrote an `IoSliceMut<'a>` into the array, which its
        // owner would later read as an `IoSliceMut<'b>`: nothing in this type writes to the
        // array, or hands out an element, so when the borrow ends the owner finds its values
        // as it left them.
        ReadVecs {
            base: slices.as_mut_ptr().cast(),
            len: slices.len(),
            _array: PhantomData,
        }
    }

    /// Number of buffers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no buffers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `(iov_base, iov_len)` of buffer `i < len`.
    fn buffer(&self, i: usize) -> (*mut u8, usize) {
        debug_assert!(i < self.len);
        // SAFETY: `i < len`, so the element is inside the array borrowed for 'a.
        parts(unsafe { &*self.base.add(i) })
    }

    /// Buffer `i`'s bytes.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        (i < self.len).then(|| {
            let (base, len) = self.buffer(i);
            // SAFETY: the IoSliceMut<'b> was made from a `&'b mut [u8]` of exactly these parts,
            // which this value borrows exclusively (through the array) for 'a; `&self` keeps
            // every `get_mut` out while the shared view lives.
            unsafe { core::slice::from_raw_parts(base, len) }
        })
    }

    /// Buffer `i`'s bytes, writable.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        (i < self.len).then(|| {
            let (base, len) = self.buffer(i);
            // SAFETY: as in `get`; `&mut self` makes the view exclusive.
            unsafe { core::slice::from_raw_parts_mut(base, len) }
        })
    }

    /// Every buffer's bytes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + use<'_, 'a> {
        (0..self.len).filter_map(move |i| self.get(i))
    }

    /// Every buffer's bytes, writable, in order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut [u8]> + use<'_, 'a> {
        let this = &*self;
        (0..self.len).map(move |i| {
            let (base, len) = this.buffer(i);
            // SAFETY: as in `get`. The views are live together, but each comes from its own
            // `&'b mut [u8]` (IoSliceMut::new takes one), so no two overlap, and the iterator
            // holds `&mut self`, so nothing else looks at the buffers meanwhile.
            unsafe { core::slice::from_raw_parts_mut(base, len) }
        })
    }

    /// The iovec array, as `IOCB_CMD_PREADV` names it.
    pub(crate) fn as_iovec(&self) -> (u64, u64) {
        (self.base as u64, self.len as u64)
    }
}

impl<'a, 'b: 'a> From<&'a mut [IoSliceMut<'b>]> for ReadVecs<'a> {
    fn from(slices: &'a mut [IoSliceMut<'b>]) -> ReadVecs<'a> {
        ReadVecs::new(slices)
    }
}

impl<'a, 'b: 'a, const N: usize> From<&'a mut [IoSliceMut<'b>; N]> for ReadVecs<'a> {
    fn from(slices: &'a mut [IoSliceMut<'b>; N]) -> ReadVecs<'a> {
        ReadVecs::new(slices)
    }
}

impl core::fmt::Debug for ReadVecs<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(<[u8]>::len))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    //! Under Miri too (`cargo +nightly miri test --lib`): every view a `ReadVecs` hands out.

    extern crate std;
    use super::*;

    #[test]
    fn views_and_the_callers_array_afterwards() {
        let (mut a, mut b) = ([1u8; 3], [2u8; 5]);
        let mut iov = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
        {
            let mut v = ReadVecs::new(&mut iov);
            assert_eq!((v.len(), v.is_empty()), (2, false));
            assert_eq!(v.get(1), Some(&[2u8; 5][..]));
            assert_eq!(v.get(2), None);
            v.get_mut(0).unwrap()[2] = 9;
            for (i, buf) in v.iter_mut().enumerate() {
                buf[0] = 10 + i as u8;
            }
            let lens: std::vec::Vec<usize> = v.iter().map(<[u8]>::len).collect();
            assert_eq!(lens, [3, 5]);
            assert_eq!(std::format!("{v:?}"), "[3, 5]");
            let (base, len) = v.as_iovec();
            assert_eq!((base, len), (iov_address(&v), 2));
        }
        // The array is as its owner left it, and names the buffers the views wrote.
        assert_eq!(parts(&iov[0]).1, 3);
        assert_eq!((a, b), ([10, 1, 9], [11, 2, 2, 2, 2]));
    }

    fn iov_address(v: &ReadVecs<'_>) -> u64 {
        v.base as u64
    }

    #[test]
    fn write_slices_bytes() {
        let data = [7u8; 4];
        let s = IoSlice::new(&data);
        assert_eq!(bytes(&s), &data);
        let empty = IoSlice::new(&[]);
        assert!(bytes(&empty).is_empty());
    }
}
