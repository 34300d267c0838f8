//! expect: E0597 `buf` does not live long enough
// A buffer declared in the shared_scope closure itself (not in a thread) dies before the scope
// ends: 'scope must stay invariant and universally quantified.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    ctx.shared_scope::<4, _>(|s, _reaper| {
        let mut buf = [0u8; 16];
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
    });
}
