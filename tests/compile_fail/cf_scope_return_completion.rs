//! expect: lifetime may not live long enough
// A Completion (and its buffer) cannot leave the scope through the closure's return value.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    let done = ctx.scope::<4, _>(|s| {
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
        s.wait(1, None).unwrap().next()
    });
    drop(done);
}
