//! expect: E0502 cannot borrow `ctx` as mutable because it is also borrowed as immutable
// The context's own (safe) cancel cannot reach the scope's requests from inside it.
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    ctx.scope::<4, _>(|_s| {
        let _ = ctx.cancel(core::ptr::null());
    });
}
