//! expect: E0502 cannot borrow `a` as immutable because it is also borrowed as mutable
// A buffer named by a vectored read cannot be read while the request may be in flight, even
// after the completion handed the ReadVecs back (the array stays lent to the scope).
use linux_aio::{Context, Request};
use rustix::io::IoSliceMut;
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
    let mut iov = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
    ctx.scope::<2, _>(|s| {
        s.submit(Request::readv(file.as_fd(), &mut iov, 0)).unwrap();
        let peek = a[0];
        let _ = peek;
    });
}
