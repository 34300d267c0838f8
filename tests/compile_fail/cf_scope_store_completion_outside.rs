//! expect: borrowed data escapes outside of closure
// A Completion cannot be stored in a variable that outlives the scope.
use linux_aio::{Completion, Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    let mut kept: Vec<Completion<'_>> = Vec::new();
    ctx.scope::<4, _>(|s| {
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
        kept.extend(s.wait(1, None).unwrap());
    });
    drop(kept);
}
