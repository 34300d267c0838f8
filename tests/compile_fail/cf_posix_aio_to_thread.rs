//! expect: E0277 cannot be shared between threads safely
use linux_aio::posix;
fn main() {
    let mut ctx = posix::context(8).unwrap();
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        std::thread::scope(|t| {
            t.spawn(|| aio.progress());
        });
    })
    .unwrap();
}
