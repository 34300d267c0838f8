//! expect: E0506 cannot assign to `buf[_]` because it is borrowed
// A buffer lent to the shared scope cannot be written while the scope holds it.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    ctx.shared_scope::<4, _>(|s, _reaper| {
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
        buf[0] = 1;
    });
}
