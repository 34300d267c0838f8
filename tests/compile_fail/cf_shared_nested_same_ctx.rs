//! expect: E0499 cannot borrow `ctx` as mutable more than once
// A scope (shared or not) inside a shared scope on the same context.
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    ctx.shared_scope::<4, _>(|_s, _reaper| {
        ctx.scope::<4, _>(|_inner| {});
    });
}
