//! The ring reader and event decoding against hostile ring contents.
//!
//! The input is a ring in ordinary memory (what `Ring::attach`'s contract allows: a header
//! whose `nr` matches the memory, every other field arbitrary) followed by a program of
//! operations, each of which may first scribble on the header (`head`, `tail`, `nr`, `magic`,
//! `header_length`, `incompat_features`) or on an event, as a buggy or hostile thread could.
//! Every reap is checked against a model computed from the memory (head and tail reduced modulo
//! the attached `nr`, events copied from exactly those slots, `head` stored as the model says),
//! the memory is exactly `32 + 32 * nr` bytes so that AddressSanitizer sees any access outside
//! it, and every event decodes without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linux_aio::raw::{aio_ring, io_event, AIO_RING_MAGIC};
use linux_aio::ring::Ring;
use linux_aio::{Errno, Event};

const HEADER: usize = 32;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u32(&mut self) -> Option<u32> {
        let mut v = [0u8; 4];
        for b in &mut v {
            *b = self.byte()?;
        }
        Some(u32::from_le_bytes(v))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from(self.u32()?) | u64::from(self.u32()?) << 32)
    }
}

fn header(mem: &mut [u64]) -> *mut aio_ring {
    mem.as_mut_ptr().cast()
}

fn read_header(mem: &mut [u64]) -> aio_ring {
    // SAFETY: the memory starts with a u64-aligned header; no Ring access is in progress.
    unsafe { header(mem).read_volatile() }
}

fn event_at(mem: &[u64], slot: usize) -> io_event {
    let at = HEADER / 8 + slot * 4;
    io_event {
        data: mem[at],
        obj: mem[at + 1],
        res: mem[at + 2] as i64,
        res2: mem[at + 3] as i64,
    }
}

/// Every raw event decodes: a result, an errno in 1..=4095, or EIO for anything else.
fn decode(ev: io_event) {
    let e = Event::from_raw(ev);
    match e.result() {
        Ok(n) => assert_eq!(n as i64, ev.res),
        Err(errno) if (-4095..=-1).contains(&ev.res) => {
            assert_eq!(i64::from(errno.raw_os_error()), -ev.res)
        }
        Err(errno) => assert_eq!(errno, Errno::IO),
    }
    let _ = format!("{e:?}");
    assert_eq!((e.user_data(), e.iocb_address(), e.res2()), (ev.data, ev.obj, ev.res2));
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(nr) = input.u32().map(|n| n % 1024) else { return };
    let words = (HEADER + 32 * nr as usize) / 8;
    let mut mem = vec![0u64; words];
    // The header as the kernel could have left it, or not: only nr must match the memory.
    let fields = [0u32; 6].map(|_| input.u32().unwrap_or(0));
    let magic = if fields[2] & 1 == 0 { AIO_RING_MAGIC } else { fields[3] };
    let h = aio_ring {
        id: fields[0],
        nr,
        head: fields[1] % nr.max(1),
        tail: fields[4] % nr.max(1),
        magic,
        compat_features: 1,
        incompat_features: if fields[5] & 1 == 0 { 0 } else { fields[5] },
        header_length: if fields[5] & 2 == 0 { 32 } else { fields[5] >> 2 },
    };
    // SAFETY: the header is in bounds and aligned.
    unsafe { header(&mut mem).write_volatile(h) };
    for w in mem[HEADER / 8..].iter_mut() {
        match input.u64() {
            Some(v) => *w = v,
            None => break,
        }
    }
    for slot in 0..nr as usize {
        decode(event_at(&mem, slot));
    }
    // SAFETY: `mem` holds 32 + 32 * nr bytes, nr is the header's, and it outlives `ring`.
    let Some(mut ring) = (unsafe { Ring::attach(header(&mut mem)) }) else {
        let ok = h.magic == AIO_RING_MAGIC
            && h.incompat_features == 0
            && h.header_length == 32
            && nr > 0;
        assert!(!ok, "a valid header was refused");
        return;
    };
    assert_eq!(ring.nr(), nr);
    let mut out = vec![io_event::default(); 2048];
    while let Some(op) = input.byte() {
        let value = input.u32().unwrap_or(0);
        // SAFETY (every write below): the header is in bounds and aligned; no Ring call is in
        // progress on this thread, and nothing else accesses the memory.
        let hp = header(&mut mem);
        match op % 10 {
            0 => unsafe { (*hp).head = value },
            1 => unsafe { (*hp).tail = value },
            2 => unsafe { (*hp).nr = value },
            3 => unsafe { (*hp).magic = value },
            4 => unsafe { (*hp).header_length = value },
            5 => unsafe { (*hp).incompat_features = value },
            6 => {
                let slot = value as usize % nr as usize;
                let at = HEADER / 8 + slot * 4 + (value as usize >> 16) % 4;
                mem[at] = input.u64().unwrap_or(u64::MAX);
            }
            7 => {
                let obj = input.u64().unwrap_or(0);
                let _ = ring.contains(obj);
            }
            _ => {}
        }
        let before = read_header(&mut mem);
        let intact = ring.intact();
        assert_eq!(
            intact,
            before.magic == AIO_RING_MAGIC
                && before.incompat_features == 0
                && before.header_length == 32
                && before.nr == nr
        );
        // The model: indices reduced modulo the attached nr.
        let (head, tail) = (before.head % nr, before.tail % nr);
        let available = (tail + nr - head) % nr;
        assert_eq!(ring.pending(), available as usize);
        let want = (value as usize) % out.len();
        let expected: Vec<io_event> = (0..available.min(want as u32))
            .map(|i| event_at(&mem, ((head + i) % nr) as usize))
            .collect();
        let n = ring.reap(&mut out[..want]);
        assert_eq!(n, expected.len());
        for (got, exp) in out[..n].iter().zip(&expected) {
            assert_eq!(
                (got.data, got.obj, got.res, got.res2),
                (exp.data, exp.obj, exp.res, exp.res2)
            );
            decode(*got);
        }
        let after = read_header(&mut mem);
        if n > 0 {
            assert_eq!(after.head, (head + n as u32) % nr, "head stored");
        } else {
            assert_eq!(after.head, before.head, "head untouched by an empty reap");
        }
        assert_eq!(
            (after.tail, after.nr, after.magic),
            (before.tail, before.nr, before.magic),
            "the reader writes only head"
        );
    }
});
