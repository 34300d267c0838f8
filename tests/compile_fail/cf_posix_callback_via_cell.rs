//! expect: borrowed data escapes outside of closure
// Re-entrancy through a cell declared outside: the layer reference cannot be stored there.
use linux_aio::posix::{self, Aio, Aiocb, Id, Notify};
use std::cell::Cell;
use std::os::fd::AsFd;
fn main() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut ctx = posix::context(8).unwrap();
    let mut buf = [0u8; 16];
    let hook: Cell<Option<&Aio<'_, '_, '_, 4>>> = Cell::new(None);
    let cb = |id: Id| {
        if let Some(aio) = hook.get() {
            let _ = aio.aio_error(id);
        }
    };
    posix::with::<4, _>(ctx.as_mut(), |aio| {
        hook.set(Some(aio));
        let _ = aio.aio_read(Aiocb::read(file.as_fd(), &mut buf, 0).notify(Notify::Callback(&cb)));
    })
    .unwrap();
}
