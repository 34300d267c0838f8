//! expect: E0277 cannot be shared between threads safely
// The Completions iterator holds `&Scope`: it cannot be sent to another thread either.
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    ctx.scope::<4, _>(|s| {
        let c = s.wait(0, None).unwrap();
        std::thread::scope(|t| {
            t.spawn(move || c.count());
        });
    });
}
