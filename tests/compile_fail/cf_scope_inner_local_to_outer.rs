//! expect: E0597 `buf` does not live long enough
// A buffer declared inside the outer closure cannot go to the outer scope through a nested one.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut outer = Context::new(8).unwrap();
    outer.scope::<4, _>(|s1| {
        let mut buf = [0u8; 16];
        let _ = s1.submit(Request::read(file.as_fd(), &mut buf, 0));
    });
}
