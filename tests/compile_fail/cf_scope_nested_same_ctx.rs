//! expect: E0499 cannot borrow `ctx` as mutable more than once
// A second scope (or any wait) on the same context while the first lives.
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    ctx.scope::<4, _>(|_s| {
        ctx.scope::<4, _>(|_t| {});
    });
}
