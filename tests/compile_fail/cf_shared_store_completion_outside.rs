//! expect: borrowed data escapes outside of closure
// A shared scope's Completion cannot be stored in a variable that outlives the scope.
use linux_aio::{Completion, Context, Request};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let mut buf = [0u8; 16];
    let mut out: Vec<Completion<'_>> = Vec::new();
    ctx.shared_scope::<4, _>(|s, mut reaper| {
        s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
        out.extend(reaper.wait(1, None).unwrap());
    });
}
