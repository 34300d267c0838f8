//! Miri probes of `ReadVecs` and `Buffer` without system calls (run with
#![allow(clippy::drop_non_drop)] // the drops end borrows on purpose, to use the owners again
//! `rustup run nightly cargo miri test --test miri_readvecs`, also with
//! `MIRIFLAGS=-Zmiri-tree-borrows`): every view a ReadVecs hands out, through a Request and
//! back, alive together, then the caller's own array and buffers used again.

use linux_aio::{Buffer, ReadVecs, Request};
use rustix::io::IoSliceMut;
use std::os::fd::BorrowedFd;

fn fd() -> BorrowedFd<'static> {
    // SAFETY: only its number is used (stored in an iocb); nothing is ever submitted.
    unsafe { BorrowedFd::borrow_raw(1) }
}

#[test]
fn readvecs_through_a_request_and_back() {
    let (mut a, mut b, mut c) = ([1u8; 3], [2u8; 5], [3u8; 0]);
    let mut iov = [
        IoSliceMut::new(&mut a),
        IoSliceMut::new(&mut b),
        IoSliceMut::new(&mut c),
    ];
    {
        let req = Request::readv(fd(), &mut iov, 0);
        assert_eq!(req.iocb().aio_nbytes, 3);
        let mut v = req.into_buffer().into_read_vecs().unwrap();
        // All mutable views alive at once, written in an interleaved order.
        let mut views: Vec<&mut [u8]> = v.iter_mut().collect();
        let (x, rest) = views.split_at_mut(1);
        x[0][0] = 10;
        rest[0][4] = 20;
        x[0][2] = 11;
        assert!(rest[1].is_empty());
        drop(views);
        // Shared views of the same buffer alive at once.
        let (p, q) = (v.get(0).unwrap(), v.get(0).unwrap());
        assert_eq!(p, q);
        // Back into another request, then out again.
        let v2 = Request::readv(fd(), v, 8).into_buffer();
        assert_eq!(v2.len(), 8);
        let mut v3 = v2.into_read_vecs().unwrap();
        v3.get_mut(1).unwrap()[0] = 30;
        let moved = std::thread::scope(|t| t.spawn(move || v3.get(1).unwrap()[0]).join().unwrap());
        assert_eq!(moved, 30);
    }
    // The caller's array is as it was, and still names the buffers.
    iov[0][1] = 12;
    assert_eq!(&*iov[1], &[30, 2, 2, 2, 20]);
    drop(iov);
    assert_eq!(a, [10, 12, 11]);
    assert_eq!(b, [30, 2, 2, 2, 20]);
}

#[test]
fn slices_shorter_than_the_array() {
    // A ReadVecs over part of an array, the rest used by the caller meanwhile.
    let (mut a, mut b) = ([0u8; 2], [0u8; 2]);
    let mut iov = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
    let (left, right) = iov.split_at_mut(1);
    let mut v = ReadVecs::new(left);
    right[0][0] = 7;
    v.get_mut(0).unwrap()[1] = 9;
    assert_eq!(v.get(1), None);
    let buf = Buffer::ReadV(v);
    assert_eq!(format!("{buf:?}"), "ReadV(1 slices)");
    drop(buf);
    drop(iov);
    assert_eq!((a, b), ([0, 9], [7, 0]));
}
