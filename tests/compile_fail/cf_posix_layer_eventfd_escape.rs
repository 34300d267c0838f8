//! expect: lifetime may not live long enough
// The layer's own eventfd (closed when the layer ends) cannot leave it.
use linux_aio::posix;
fn main() {
    let mut ctx = posix::context(8).unwrap();
    let fd = posix::with::<4, _>(ctx.as_mut(), |aio| aio.eventfd()).unwrap();
    drop(fd);
}
