//! expect: E0499 cannot borrow `reaper` as mutable more than once at a time
// There is one reaper: two threads cannot wait on it at once.
use linux_aio::Context;
fn main() {
    let mut ctx = Context::new(8).unwrap();
    ctx.shared_scope::<4, _>(|_s, mut reaper| {
        std::thread::scope(|t| {
            t.spawn(|| reaper.wait(0, None).map(|c| c.count()));
            t.spawn(|| reaper.wait(0, None).map(|c| c.count()));
        });
    });
}
