//! expect: E0597 `buf` does not live long enough
// A buffer moved into the (FnOnce) closure dies with the closure's body.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut buf = vec![0u8; 16];
    let mut ctx = Context::new(8).unwrap();
    let fd = file.as_fd();
    ctx.scope::<4, _>(move |s| {
        let _ = s.submit(Request::read(fd, &mut buf, 0));
    });
}
