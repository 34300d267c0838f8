//! expect: E0597 `buf` does not live long enough
// A buffer declared inside the closure cannot be lent to the scope.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    ctx.scope::<4, _>(|s| {
        let mut buf = [0u8; 16];
        let _ = s.submit(Request::read(file.as_fd(), &mut buf, 0));
    });
}
