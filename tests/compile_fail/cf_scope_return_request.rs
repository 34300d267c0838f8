//! expect: lifetime may not live long enough
// A request built from a buffer the scope handed back cannot leave the scope (to be submitted
// later, after the scope is gone).
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    let req = ctx.scope::<4, _>(|s| {
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
        let back = s.wait(1, None).unwrap().next().unwrap().buffer.into_read().unwrap();
        Request::read(file.as_fd(), back, 0)
    });
    drop(req);
}
