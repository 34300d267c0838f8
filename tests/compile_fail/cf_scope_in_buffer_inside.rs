//! expect: E0597 `buf` does not live long enough
// Slots lent to scope_in outlive the scope, but a buffer must still outlive the scope itself.
use linux_aio::{Context, Request, ScopeSlots};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut slots = ScopeSlots::<4>::new();
    ctx.scope_in(&mut slots, |s| {
        let mut buf = [0u8; 16];
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
    });
}
