//! expect: E0597 `short` does not live long enough
// A buffer handed back by a completion may be lent again only to a scope it outlives: a
// buffer shorter than the shared scope cannot enter it through a thread either.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    ctx.shared_scope::<4, _>(|s, _reaper| {
        let mut short = [0u8; 4];
        std::thread::scope(|t| {
            t.spawn(|| s.submit(Request::read(file.as_fd(), &mut short, 0)).unwrap());
        });
    });
}
