//! expect: E0499 cannot borrow `reaper` as mutable more than once at a time
// A SharedCompletions borrows the reaper: no second wait (or cancel) while it lives.
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    ctx.shared_scope::<4, _>(|_s, mut reaper| {
        let first = reaper.wait(0, None).unwrap();
        let second = reaper.wait(0, None).unwrap();
        drop((first, second));
    });
}
