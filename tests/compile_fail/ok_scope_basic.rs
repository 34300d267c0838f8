//! expect: ok
use linux_aio::{Context, Request};
use rustix::io::IoSliceMut;
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
    let mut iov = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
    ctx.scope::<4, _>(|s| {
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
        s.submit(Request::readv(file.as_fd(), &mut iov, 0)).unwrap();
        for done in s.wait(2, None).unwrap() {
            if let Some(v) = done.buffer.into_read_vecs() {
                // the handed-back ReadVecs goes straight into another readv
                s.submit(Request::readv(file.as_fd(), v, 4)).unwrap();
            }
        }
        // a completion (and its buffer) may be sent to another thread
        let c = s.wait(1, None).unwrap().next().unwrap();
        std::thread::scope(|t| {
            t.spawn(move || c.buffer.len());
        });
    });
    let _ = (buf, a, b);
}
