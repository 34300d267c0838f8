//! expect: E0507 cannot move out of `*aio`
// The layer is lent by reference only: it cannot be moved out (or forgotten) by the closure.
use linux_aio::posix;
fn main() {
    let mut ctx = posix::context(8).unwrap();
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let owned = *aio;
        std::mem::forget(owned);
    })
    .unwrap();
}
