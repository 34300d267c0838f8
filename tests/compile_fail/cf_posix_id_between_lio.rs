//! expect: E0505 cannot move out of `list` because it is borrowed
// lio_listio takes the control blocks by value; they cannot be used afterwards.
use linux_aio::posix::{self, Aiocb, ListMode};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = posix::context(8).unwrap();
    let mut buf = [0u8; 16];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let list = [Aiocb::read(file.as_fd(), &mut buf, 0)];
        let r = &list[0];
        let _ = aio.lio_listio(ListMode::NoWait, list);
        let _ = r.fd();
    })
    .unwrap();
}
