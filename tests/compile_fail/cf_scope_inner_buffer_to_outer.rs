//! expect: E0521 borrowed data escapes outside of closure
// A buffer handed back by an inner scope (on another context) cannot be submitted to the outer
// scope, which may outlive the inner scope's borrow.
use linux_aio::{Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut outer = Context::new(8).unwrap();
    outer.scope::<4, _>(|s1| {
        let mut inner = Context::new(8).unwrap();
        let mut buf = [0u8; 16];
        inner.scope::<4, _>(|s2| {
            s2.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
            let back = s2.wait(1, None).unwrap().next().unwrap().buffer.into_read().unwrap();
            let _ = s1.submit(Request::read(file.as_fd(), back, 0));
        });
    });
}
