//! expect: E0597 `buf` does not live long enough
// A submitting thread's own buffer dies with the thread, before the shared scope ends.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    ctx.shared_scope::<4, _>(|s, _reaper| {
        std::thread::scope(|t| {
            t.spawn(|| {
                let mut buf = [0u8; 16];
                s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
            });
        });
    });
}
