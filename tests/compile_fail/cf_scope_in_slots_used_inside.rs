//! expect: E0499 cannot borrow `slots` as mutable more than once
// The slots lent to scope_in cannot be touched (here: lent again) while the scope runs.
use linux_aio::{Context, ScopeSlots};
fn main() {
    let mut ctx = Context::new(8).unwrap();
    let mut other = Context::new(8).unwrap();
    let mut slots = ScopeSlots::<4>::new();
    ctx.scope_in(&mut slots, |_s| {
        other.scope_in(&mut slots, |_t| {});
    });
}
