//! expect: E0277 cannot be shared between threads safely
// `&Scope` cannot reach another thread (Scope is not Sync).
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    ctx.scope::<4, _>(|s| {
        std::thread::scope(|t| {
            t.spawn(|| s.in_flight());
        });
    });
}
