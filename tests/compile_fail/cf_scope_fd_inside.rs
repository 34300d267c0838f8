//! expect: E0597 `file` does not live long enough
// A descriptor opened inside the closure (closed at its end) cannot be lent to the scope.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    ctx.scope::<4, _>(|s| {
        let file = std::fs::File::open("Cargo.toml").unwrap();
        let _ = s.submit(Request::read(file.as_fd(), &mut buf, 0));
    });
}
