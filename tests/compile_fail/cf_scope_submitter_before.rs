//! expect: E0502 cannot borrow `ctx` as mutable because it is also borrowed as immutable
// A Submitter taken before the scope cannot be used inside it.
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    let sub = ctx.submitter();
    ctx.scope::<4, _>(|_s| {
        let _ = sub.cancel(core::ptr::null());
    });
}
