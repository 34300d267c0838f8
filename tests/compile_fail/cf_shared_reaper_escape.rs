//! expect: lifetime may not live long enough
// The reaper cannot leave the closure (it would outlive the scope's drain).
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    let _r = ctx.shared_scope::<4, _>(|_s, reaper| reaper);
}
