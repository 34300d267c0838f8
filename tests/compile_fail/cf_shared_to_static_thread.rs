//! expect: E0521 borrowed data escapes outside of closure
// The shared scope reaches threads that end inside the closure, never a detached one.
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    ctx.shared_scope::<4, _>(|s, _reaper| {
        std::thread::spawn(move || s.in_flight());
    });
}
