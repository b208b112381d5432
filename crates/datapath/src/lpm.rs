//! Longest-prefix match, with a capacity like a BPF map's `max_entries`.
//!
//! One hash table per prefix length in use ([`FlatTable`]), in a list, longest first: a
//! lookup probes one table per length until one holds the masked address. An ipcache holds
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

/// [`Address`] for the integer of each width.
macro_rules! address {
    ($($t:ty = $bits:literal),+) => {$(
        impl Address for $t {
            const BITS: u8 = $bits;
            const ONES: Self = <$t>::MAX;
            fn mask(self, len: u8) -> Self {
                if len == 0 {
                    0
                } else {
                    self & (<$t>::MAX << ($bits - u32::from(len)))
                }
            }
        }
    )+};
}

address!(u32 = 32, u128 = 128);

/// One prefix length in use: its mask and the prefixes of that length.
#[derive(Clone, Debug)]
struct Level<A, V> {
    len: u8,
    mask: A,
    table: FlatTable<A, V>,
}

/// A longest-prefix-match table from prefixes of `A` to `V`.
#[derive(Clone, Debug)]
pub struct LpmTable<A: Address, V> {
    /// The lengths with at least one prefix, longest first, each with its table: a lookup
    /// walks this one array, with no index into a table per possible length (and no bounds
    /// check on it).
    levels: Vec<Level<A, V>>,
    len: usize,
    max_entries: usize,
}

impl<A: Address, V> LpmTable<A, V> {
    /// An empty table that holds at most `max_entries` prefixes.
    pub fn new(max_entries: usize) -> Self {
        Self {
            levels: Vec::new(),
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

    /// Where the level of `len` is, or where it would go.
    fn level(&self, len: u8) -> Result<usize, usize> {
        let at = self.levels.partition_point(|l| l.len > len);
        match self.levels.get(at) {
            Some(l) if l.len == len => Ok(at),
            _ => Err(at),
        }
    }

    /// Puts `addr/len -> value` (the address is masked); returns the value it replaced.
    pub fn insert(&mut self, addr: A, len: u8, value: V) -> Result<Option<V>, LpmError> {
        if len > A::BITS {
            return Err(LpmError::BadLength { len, bits: A::BITS });
        }
        let key = addr.mask(len);
        let found = self.level(len);
        if let Ok(at) = found
            && let Some(slot) = self.levels[at].table.get_mut(key)
        {
            return Ok(Some(std::mem::replace(slot, value)));
        }
        if self.len >= self.max_entries {
            return Err(LpmError::Full {
                max_entries: self.max_entries,
            });
        }
        let at = found.unwrap_or_else(|at| {
            let level = Level {
                len,
                mask: A::ONES.mask(len),
                table: FlatTable::new(),
            };
            self.levels.insert(at, level);
            at
        });
        self.levels[at].table.insert(key, value);
        self.len += 1;
        Ok(None)
    }

    /// Removes `addr/len`; returns its value.
    pub fn remove(&mut self, addr: A, len: u8) -> Option<V> {
        let at = self.level(len).ok()?;
        let table = &mut self.levels[at].table;
        let value = table.remove(addr.mask(len))?;
        if table.is_empty() {
            self.levels.remove(at);
        }
        self.len -= 1;
        Some(value)
    }

    /// The value of exactly `addr/len`.
    pub fn get(&self, addr: A, len: u8) -> Option<&V> {
        let at = self.level(len).ok()?;
        self.levels[at].table.get(addr.mask(len))
    }

    /// The longest prefix holding `addr`: its length and value. Always inlined: it is on
    /// every verdict's path, and a call returns its result through memory.
    #[expect(clippy::inline_always, reason = "measured in the verdict bench")]
    #[inline(always)]
    pub fn lookup(&self, addr: A) -> Option<(u8, &V)> {
        for level in &self.levels {
            if let Some(v) = level.table.get(addr & level.mask) {
                return Some((level.len, v));
            }
        }
        None
    }

    /// Every prefix with its value, by length then address.
    pub fn iter(&self) -> impl Iterator<Item = (A, u8, &V)> {
        let mut out: Vec<(A, u8, &V)> = Vec::with_capacity(self.len);
        for level in &self.levels {
            out.extend(level.table.iter().map(|(a, v)| (*a, level.len, v)));
        }
        out.sort_by_key(|&(a, len, _)| (len, a));
        out.into_iter()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.levels.clear();
        self.len = 0;
    }
}
