//! The reference datapath's LPM table against a naive list of prefixes scanned for the longest
//! match, for IPv4 (`u32`) and IPv6 (`u128`). After every insert, remove, get, lookup or clear,
//! both must agree: the insert's result (the replaced value, or `Full` / `BadLength`), the
//! lookup's (length, value), the length, and the listing in (length, address) order.
#![no_main]

use arbitrary::Arbitrary;
use fqdnpath_datapath::lpm::{Address, LpmError, LpmTable};
use libfuzzer_sys::fuzz_target;

/// The model's view of an address: its width, and its bits left-aligned in a `u128`, so that
/// the naive mask below is written without the table's own `Address::mask`.
trait Bits: Address + for<'a> Arbitrary<'a> {
    fn to_left(self) -> u128;
    fn from_left(bits: u128) -> Self;
}

impl Bits for u32 {
    fn to_left(self) -> u128 {
        u128::from(self) << 96
    }
    fn from_left(bits: u128) -> Self {
        u32::try_from(bits >> 96).expect("32 bits")
    }
}

impl Bits for u128 {
    fn to_left(self) -> u128 {
        self
    }
    fn from_left(bits: u128) -> Self {
        bits
    }
}

/// `addr` with every bit after the first `len` cleared, bit by bit.
fn naive_mask<A: Bits>(addr: A, len: u8) -> A {
    let bits = addr.to_left();
    let mut keep = 0u128;
    for i in 0..u32::from(len.min(128)) {
        keep |= 1u128 << (127 - i);
    }
    A::from_left(bits & keep)
}

/// An address: any, or one near a held prefix (its first `keep` bits, then `noise`), so that
/// lookups and removals hit what the table holds.
#[derive(Debug, Arbitrary)]
enum Addr<A> {
    Any(A),
    Near { index: u8, keep: u8, noise: A },
}

/// A prefix length: mostly valid, sometimes one or two past the width, sometimes anything.
#[derive(Debug, Arbitrary)]
enum Len {
    Valid(u8),
    JustPast(bool),
    Raw(u8),
}

#[derive(Debug, Arbitrary)]
enum Op<A> {
    Insert { addr: Addr<A>, len: Len, value: u16 },
    Remove { addr: Addr<A>, len: Len },
    Get { addr: Addr<A>, len: Len },
    Lookup(Addr<A>),
    Clear,
}

#[derive(Debug, Arbitrary)]
struct Input {
    max_v4: u8,
    ops_v4: Vec<Op<u32>>,
    max_v6: u8,
    ops_v6: Vec<Op<u128>>,
}

/// The naive table: (masked address, length, value), in insertion order.
struct Naive<A> {
    prefixes: Vec<(A, u8, u16)>,
    max_entries: usize,
}

impl<A: Bits> Naive<A> {
    fn bits() -> u8 {
        A::BITS
    }

    fn addr(&self, addr: &Addr<A>) -> A {
        match *addr {
            Addr::Any(a) => a,
            Addr::Near { index, keep, noise } => {
                let Some(&(base, _, _)) = self
                    .prefixes
                    .get(usize::from(index) % self.prefixes.len().max(1))
                else {
                    return noise;
                };
                let keep = keep % (Self::bits() + 1);
                let high = naive_mask(base, keep).to_left();
                let low = noise.to_left() & !naive_mask(A::from_left(u128::MAX), keep).to_left();
                A::from_left(high | low)
            }
        }
    }

    fn len(len: &Len) -> u8 {
        match *len {
            Len::Valid(l) => l % (Self::bits() + 1),
            Len::JustPast(two) => Self::bits() + 1 + u8::from(two),
            Len::Raw(l) => l,
        }
    }

    fn find(&self, addr: A, len: u8) -> Option<usize> {
        let masked = naive_mask(addr, len);
        self.prefixes
            .iter()
            .position(|&(a, l, _)| l == len && a == masked)
    }

    fn insert(&mut self, addr: A, len: u8, value: u16) -> Result<Option<u16>, LpmError> {
        if len > Self::bits() {
            return Err(LpmError::BadLength {
                len,
                bits: Self::bits(),
            });
        }
        if let Some(at) = self.find(addr, len) {
            return Ok(Some(std::mem::replace(&mut self.prefixes[at].2, value)));
        }
        if self.prefixes.len() >= self.max_entries {
            return Err(LpmError::Full {
                max_entries: self.max_entries,
            });
        }
        self.prefixes.push((naive_mask(addr, len), len, value));
        Ok(None)
    }

    fn remove(&mut self, addr: A, len: u8) -> Option<u16> {
        if len > Self::bits() {
            return None;
        }
        let at = self.find(addr, len)?;
        Some(self.prefixes.remove(at).2)
    }

    fn get(&self, addr: A, len: u8) -> Option<u16> {
        if len > Self::bits() {
            return None;
        }
        self.find(addr, len).map(|at| self.prefixes[at].2)
    }

    fn lookup(&self, addr: A) -> Option<(u8, u16)> {
        self.prefixes
            .iter()
            .filter(|&&(a, l, _)| naive_mask(addr, l) == a)
            .max_by_key(|&&(_, l, _)| l)
            .map(|&(_, l, v)| (l, v))
    }

    fn listing(&self) -> Vec<(A, u8, u16)> {
        let mut all = self.prefixes.clone();
        all.sort_by_key(|&(a, l, _)| (l, a));
        all
    }
}

fn run<A: Bits>(max_entries: u8, ops: &[Op<A>]) {
    // Small capacities, so that `Full` comes often.
    let max_entries = usize::from(max_entries % 24);
    let mut table: LpmTable<A, u16> = LpmTable::new(max_entries);
    let mut naive = Naive {
        prefixes: Vec::new(),
        max_entries,
    };
    assert_eq!(table.max_entries(), max_entries);
    for op in ops.iter().take(256) {
        match op {
            Op::Insert { addr, len, value } => {
                let (addr, len) = (naive.addr(addr), Naive::<A>::len(len));
                let want = naive.insert(addr, len, *value);
                assert_eq!(
                    table.insert(addr, len, *value),
                    want,
                    "insert {addr:?}/{len}"
                );
            }
            Op::Remove { addr, len } => {
                let (addr, len) = (naive.addr(addr), Naive::<A>::len(len));
                let want = naive.remove(addr, len);
                assert_eq!(table.remove(addr, len), want, "remove {addr:?}/{len}");
            }
            Op::Get { addr, len } => {
                let (addr, len) = (naive.addr(addr), Naive::<A>::len(len));
                assert_eq!(
                    table.get(addr, len).copied(),
                    naive.get(addr, len),
                    "get {addr:?}/{len}"
                );
            }
            Op::Lookup(addr) => {
                let addr = naive.addr(addr);
                assert_eq!(
                    table.lookup(addr).map(|(l, v)| (l, *v)),
                    naive.lookup(addr),
                    "lookup {addr:?}"
                );
            }
            Op::Clear => {
                table.clear();
                naive.prefixes.clear();
            }
        }
        assert_eq!(table.len(), naive.prefixes.len());
        assert_eq!(table.is_empty(), naive.prefixes.is_empty());
        let listed: Vec<(A, u8, u16)> = table.iter().map(|(a, l, v)| (a, l, *v)).collect();
        assert_eq!(listed, naive.listing());
        // Every held prefix finds itself, or a longer prefix that holds its address.
        for &(a, l, _) in &naive.prefixes {
            let (found, _) = table
                .lookup(a)
                .expect("a held prefix holds its own address");
            assert!(found >= l);
        }
    }
}

fuzz_target!(|input: Input| {
    run(input.max_v4, &input.ops_v4);
    run(input.max_v6, &input.ops_v6);
});
