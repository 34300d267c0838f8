//! expect: E0597 `efd` does not live long enough
// An eventfd created inside the closure cannot be named by a request of the scope.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    ctx.scope::<4, _>(|s| {
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let _ = s.submit(Request::read(file.as_fd(), &mut buf, 0).eventfd(efd.as_fd()));
    });
}
