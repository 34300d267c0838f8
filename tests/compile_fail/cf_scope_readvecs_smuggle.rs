//! expect: E0597 `short` does not live long enough
// Smuggling a shorter-lived IoSliceMut into the caller's array while a ReadVecs lends it: the
// array is mutably borrowed for the scope, and a short IoSliceMut cannot go into it anyway.
use linux_aio::{Context, Request};
use rustix::io::IoSliceMut;
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut long = [0u8; 4];
    let mut iov = [IoSliceMut::new(&mut long)];
    ctx.scope::<2, _>(|s| {
        let mut short = [0u8; 4];
        let done = {
            s.submit(Request::readv(file.as_fd(), &mut iov, 0)).unwrap();
            s.wait(1, None).unwrap().next().unwrap()
        };
        let _vecs = done.buffer.into_read_vecs().unwrap();
        iov[0] = IoSliceMut::new(&mut short);
    });
    let _ = iov;
}
