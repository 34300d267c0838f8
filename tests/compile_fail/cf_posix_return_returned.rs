//! expect: lifetime may not live long enough
// What aio_return hands back (the buffer) cannot leave the layer.
use linux_aio::posix::{self, Aiocb};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = posix::context(8).unwrap();
    let mut buf = [0u8; 16];
    let r = posix::with::<4, _>(ctx.as_mut(), |aio| {
        let id = aio.aio_read(Aiocb::read(file.as_fd(), &mut buf, 0)).unwrap();
        aio.aio_return(id)
    })
    .unwrap();
    drop(r);
}
