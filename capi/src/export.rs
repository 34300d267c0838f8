//! Versioned symbols without compiler support.
//!
//! Rust has no equivalent of C's `__attribute__((symver))`, so each entry point is an ordinary
//! (mangled, unexported) `extern "C"` function, plus four assembler lines that give it a global
//! alias `linux_aio_capi_<fn>` and bind the alias to `name@@VERSION` (the default version, the
//! one a program links against today) or `name@VERSION` (an old entry point, kept for programs
//! linked against libaio 0.1).
//!
//! In `libaio.a` the versioned names appear as in Debian's own `libaio.a`
//! (`io_getevents@@LIBAIO_0.4`, `io_getevents@LIBAIO_0.1`). In `libaio.so.1` the aliases are
//! made local by rustc's version script (`local: *`), leaving exactly the versioned names;
//! `libaio.map` defines the version nodes (see build.rs for why lld links it).

/// `export! { "name@@VERSION" => unsafe extern "C" fn f(...) -> T { ... } }` defines `f` and
/// exports it as `name` in version `VERSION`.
macro_rules! export {
    ($symbol:literal =>
        $(#[$meta:meta])*
        unsafe extern "C" fn $f:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block
    ) => {
        $(#[$meta])*
        unsafe extern "C" fn $f($($arg: $ty),*) -> $ret $body

        core::arch::global_asm!(
            concat!(".globl linux_aio_capi_", stringify!($f)),
            concat!(".type linux_aio_capi_", stringify!($f), ", %function"),
            concat!(".set linux_aio_capi_", stringify!($f), ", {f}"),
            concat!(".symver linux_aio_capi_", stringify!($f), ", ", $symbol),
            f = sym $f,
        );
    };
}

pub(crate) use export;
