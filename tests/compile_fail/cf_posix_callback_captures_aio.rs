//! expect: E0597 `cb` does not live long enough
// Re-entrancy: a notification callback that calls back into the layer. The callback must
// outlive the layer's requests ('scope), the layer reference does not: rejected.
use linux_aio::posix::{self, Aiocb, Id, Notify};
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = posix::context(8).unwrap();
    let mut buf = [0u8; 16];
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        let cb = |id: Id| {
            let _ = aio.aio_error(id);
        };
        let _ = aio.aio_read(Aiocb::read(file.as_fd(), &mut buf, 0).notify(Notify::Callback(&cb)));
    })
    .unwrap();
}
