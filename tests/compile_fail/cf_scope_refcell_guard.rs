//! expect: E0597 `guard` does not live long enough
// A buffer reached through a RefCell guard taken inside the closure.
use linux_aio::{Context, Request};
use std::cell::RefCell;
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let cell = RefCell::new(vec![0u8; 16]);
    let mut ctx = Context::new(8).unwrap();
    ctx.scope::<4, _>(|s| {
        let mut guard = cell.borrow_mut();
        let _ = s.submit(Request::read(file.as_fd(), &mut guard[..], 0));
    });
}
