//! expect: E0308 arguments to this function are incorrect
// Two scopes cannot be swapped (that would move their slots while the kernel knows them).
use linux_aio::Context;
fn main() {
    let (mut a, mut b) = (Context::new(8).unwrap(), Context::new(8).unwrap());
    a.scope::<4, _>(|s1| {
        b.scope::<4, _>(|s2| {
            std::mem::swap(s1, s2);
        });
    });
}
