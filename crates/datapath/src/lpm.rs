//! Longest-prefix match, with a capacity like a BPF map's `max_entries`.
//!
//! One hash table per prefix length ([`FlatTable`]), and the list of lengths in use, longest
//! first: a lookup
//! probes one table per length in use until one holds the masked address. An ipcache holds
//! mostly host routes (/32, /128) and a handful of CIDR lengths, so a lookup is one to three
//! hash probes whatever the number of prefixes. IPv4 and IPv6 live in separate tables, as the
//! kernel side keeps two LPM tries (measured faster and smaller than one trie with a family
//! byte). The `datapath/lpm_*` benches compare it with the `prefix-trie` crate.

use fqdnpath_policy::table::{FlatKey, FlatTable};

/// Why an insert failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LpmError {
    /// The table holds `max_entries` prefixes already.
    #[error("the table is full ({max_entries} entries)")]
    Full {
        /// Its capacity.
        max_entries: usize,
    },
    /// The prefix length exceeds the address width.
    #[error("prefix length {len} is longer than {bits} bits")]
    BadLength {
        /// The length given.
        len: u8,
        /// The address width.
        bits: u8,
    },
}

/// An address type: `u32` for IPv4, `u128` for IPv6.
pub trait Address: FlatKey + Ord + std::fmt::Debug + std::ops::BitAnd<Output = Self> {
    /// The width in bits.
    const BITS: u8;
    /// Every bit set.
    const ONES: Self;
    /// The address with all but the first `len` bits cleared.
    #[must_use]
    fn mask(self, len: u8) -> Self;
}

impl Address for u32 {
    const BITS: u8 = 32;
    const ONES: Self = u32::MAX;
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - u32::from(len)))
        }
    }
}

impl Address for u128 {
    const BITS: u8 = 128;
    const ONES: Self = u128::MAX;
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - u32::from(len)))
        }
    }
}

/// A longest-prefix-match table from prefixes of `A` to `V`.
#[derive(Clone, Debug)]
pub struct LpmTable<A: Address, V> {
    /// Index = prefix length.
    tables: Vec<FlatTable<A, V>>,
    /// The lengths with at least one prefix, longest first, each with its mask.
    lengths: Vec<(u8, A)>,
    len: usize,
    max_entries: usize,
}

impl<A: Address, V> LpmTable<A, V> {
    /// An empty table that holds at most `max_entries` prefixes.
    pub fn new(max_entries: usize) -> Self {
        Self {
            tables: (0..=A::BITS).map(|_| FlatTable::new()).collect(),
            lengths: Vec::new(),
            len: 0,
            max_entries,
        }
    }

    /// How many prefixes it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its capacity.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Puts `addr/len -> value` (the address is masked); returns the value it replaced.
    pub fn insert(&mut self, addr: A, len: u8, value: V) -> Result<Option<V>, LpmError> {
        if len > A::BITS {
            return Err(LpmError::BadLength { len, bits: A::BITS });
        }
        let key = addr.mask(len);
        let table = &mut self.tables[usize::from(len)];
        if let Some(slot) = table.get_mut(key) {
            return Ok(Some(std::mem::replace(slot, value)));
        }
        if self.len >= self.max_entries {
            return Err(LpmError::Full {
                max_entries: self.max_entries,
            });
        }
        if table.is_empty() {
            let at = self.lengths.partition_point(|&(l, _)| l > len);
            self.lengths.insert(at, (len, A::ONES.mask(len)));
        }
        table.insert(key, value);
        self.len += 1;
        Ok(None)
    }

    /// Removes `addr/len`; returns its value.
    pub fn remove(&mut self, addr: A, len: u8) -> Option<V> {
        let table = self.tables.get_mut(usize::from(len))?;
        let value = table.remove(addr.mask(len))?;
        if table.is_empty() {
            self.lengths.retain(|&(l, _)| l != len);
        }
        self.len -= 1;
        Some(value)
    }

    /// The value of exactly `addr/len`.
    pub fn get(&self, addr: A, len: u8) -> Option<&V> {
        self.tables.get(usize::from(len))?.get(addr.mask(len))
    }

    /// The longest prefix holding `addr`: its length and value. Always inlined: it is on
    /// every verdict's path, and a call returns its result through memory.
    #[expect(clippy::inline_always, reason = "measured in the verdict bench")]
    #[inline(always)]
    pub fn lookup(&self, addr: A) -> Option<(u8, &V)> {
        for &(len, mask) in &self.lengths {
            if let Some(v) = self.tables[usize::from(len)].get(addr & mask) {
                return Some((len, v));
            }
        }
        None
    }

    /// Every prefix with its value, by length then address.
    pub fn iter(&self) -> impl Iterator<Item = (A, u8, &V)> {
        let mut out: Vec<(A, u8, &V)> = Vec::with_capacity(self.len);
        for (len, table) in self.tables.iter().enumerate() {
            #[expect(clippy::cast_possible_truncation, reason = "len <= 128")]
            out.extend(table.iter().map(|(a, v)| (*a, len as u8, v)));
        }
        out.sort_by_key(|&(a, len, _)| (len, a));
        out.into_iter()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        for table in &mut self.tables {
            table.clear();
        }
        self.lengths.clear();
        self.len = 0;
    }
}
