//! expect: lifetime may not live long enough
// A Rejected (request and buffer) cannot leave the scope.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    let r = ctx.scope::<0, _>(|s| s.submit(Request::read(file.as_fd(), &mut buf, 0)).err());
    drop(r);
}
