//! expect: E0521 borrowed data escapes outside of closure
// A control block built for an inner layer from a buffer the outer layer handed back is fine,
// but a buffer the inner layer handed back cannot be queued on the outer layer.
use linux_aio::posix::{self, Aiocb};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut outer = posix::context(8).unwrap();
    posix::with::<4, _>(outer.as_mut(), |aio1| {
        let mut inner = posix::context(8).unwrap();
        let mut buf = [0u8; 16];
        posix::with::<4, _>(inner.as_mut(), |aio2| {
            let id = aio2.aio_read(Aiocb::read(file.as_fd(), &mut buf, 0)).unwrap();
            let back = aio2.aio_return(id).unwrap().buffer.into_read().unwrap();
            let _ = aio1.aio_read(Aiocb::read(file.as_fd(), back, 0));
        })
        .unwrap();
    })
    .unwrap();
}
