//! expect: E0507 cannot move out of `*s`
// The scope is lent by reference only: it cannot be moved (or forgotten) by the closure.
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    ctx.scope::<4, _>(|s| {
        let owned = *s;
        std::mem::forget(owned);
    });
}
