//! expect: E0597 `efd` does not live long enough
use linux_aio::posix::{self, Aiocb, Notify};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = posix::context(8).unwrap();
    let mut buf = [0u8; 16];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let _ = aio.aio_read(Aiocb::read(file.as_fd(), &mut buf, 0).notify(Notify::Eventfd(efd.as_fd())));
    })
    .unwrap();
}
