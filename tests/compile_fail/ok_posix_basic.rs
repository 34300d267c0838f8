//! expect: ok
// A callback of an inner layer may capture the outer layer: that compiles (it can only run
// inside inner-layer calls, when no outer-layer call is on the stack).
use linux_aio::posix::{self, Aiocb, Id, Notify};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = posix::context(8).unwrap();
    let mut buf = [0u8; 16];
    let mut buf2 = [0u8; 16];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let outer = aio.aio_read(Aiocb::read(file.as_fd(), &mut buf, 0)).unwrap();
        let mut ctx2 = posix::context(8).unwrap();
        let cb = |_: Id| {
            let _ = aio.aio_error(outer);
        };
        posix::with::<4, _>(ctx2.as_mut(), |inner| {
            let id = inner
                .aio_read(Aiocb::read(file.as_fd(), &mut buf2, 0).notify(Notify::Callback(&cb)))
                .unwrap();
            let _ = inner.aio_suspend(&[id], None);
        })
        .unwrap();
    })
    .unwrap();
}
