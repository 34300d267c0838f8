//! expect: ok
// The control for the shared-scope probes: buffers declared before the scope, lent from
// threads; the reaper moved to a thread of its own; buffers handed back and sent on.
use linux_aio::{Context, Request, ScopeSlots};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = Context::new(8).unwrap();
    let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
    ctx.shared_scope::<4, _>(|s, mut reaper| {
        let (ra, rb) = (&mut a, &mut b);
        std::thread::scope(|t| {
            let fd = file.as_fd();
            t.spawn(move || s.submit(Request::read(fd, ra, 0)).unwrap());
            t.spawn(move || s.submit(Request::read(fd, rb, 16)).unwrap());
        });
        std::thread::scope(|t| {
            t.spawn(move || {
                let c = reaper.wait(2, None).unwrap().next().unwrap();
                std::thread::scope(|t2| {
                    t2.spawn(move || c.buffer.len());
                });
            });
        });
    });
    let mut slots = ScopeSlots::<2>::new();
    let mut c = [0u8; 4];
    ctx.scope_in(&mut slots, |s| {
        s.submit(Request::read(file.as_fd(), &mut c, 0)).unwrap();
    });
    let _ = (a, b, c);
}
