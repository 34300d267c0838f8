//! expect: borrowed data escapes outside of closure
// `&SharedScope` cannot be stored where it would outlive the closure (submission after the
// scope's end).
use linux_aio::{Context, SharedScope};
fn main() {
    let mut ctx = Context::new(8).unwrap();
    let mut keep: Option<&SharedScope<'_, '_, 4>> = None;
    ctx.shared_scope::<4, _>(|s, _reaper| {
        keep = Some(s);
    });
    let _ = keep;
}
