//! expect: E0505 cannot move out of `file` because it is borrowed
use linux_aio::posix::{self, Aiocb};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = posix::context(8).unwrap();
    let mut buf = [0u8; 16];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let _ = aio.aio_read(Aiocb::read(file.as_fd(), &mut buf, 0));
        drop(file);
    })
    .unwrap();
}
