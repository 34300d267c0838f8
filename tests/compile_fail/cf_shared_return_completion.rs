//! expect: lifetime may not live long enough
// A completion of the shared scope (and its buffer) cannot leave through the return value.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    let done = ctx.shared_scope::<4, _>(|s, mut reaper| {
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
        reaper.wait(1, None).unwrap().next()
    });
    drop(done);
}
