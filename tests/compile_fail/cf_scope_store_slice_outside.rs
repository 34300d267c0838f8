//! expect: borrowed data escapes outside of closure
// The `&'scope mut [u8]` a completion hands back cannot be kept past the scope either.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    let mut kept: Option<&mut [u8]> = None;
    ctx.scope::<4, _>(|s| {
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
        kept = s.wait(1, None).unwrap().next().unwrap().buffer.into_read();
    });
    drop(kept);
}
