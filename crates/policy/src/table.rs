//! A flat hash table for the lookups on every packet's path: the policy map's, and in
//! fqdnpath-datapath the ipcache's per-length tables, the local endpoints' and conntrack's.
//!
//! Open addressing with linear probing over one array of `(key, value)` slots, at most half
//! full (a quarter, for a [`FlatTable::sparse`] one), with backward-shift deletion (no
//! tombstones). A table is never without slots, so a lookup does not test for that. A lookup
//! hashes the key with one multiply and reads the slot it lands on: with the table at most half full, that slot
//! holds the key or is empty about three times in four, so a lookup touches one cache line
//! and runs a dozen instructions. A general-purpose table (hashbrown's groups of control
//! bytes) touches two lines, the control bytes and the slot, and runs about forty: at 100k
//! prefixes and thousands of flows, the verdict is bound by those lines.
//!
//! The hash is fixed (no random seed), as everything in the model is deterministic.

/// A key of a [`FlatTable`]: an integer, or a few packed together.
pub trait FlatKey: Copy + Eq {
    /// 64 well-mixed bits; the table indexes by the high ones.
    fn hash64(self) -> u64;
}

const SEED_LO: u64 = 0x243f_6a88_85a3_08d3;
const SEED_HI: u64 = 0x1319_8a2e_0370_7344;
const MULTIPLE: u64 = 0x9e37_79b9_7f4a_7c15;

/// The 128-bit product of `a` and `b`, its halves folded together: a fast mixer whose every
/// output bit depends on every input bit.
#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    #[expect(clippy::cast_possible_truncation, reason = "the halves of the product")]
    let (lo, hi) = (product as u64, (product >> 64) as u64);
    lo ^ hi
}

/// Mixes 128 bits of key into 64 bits of hash: the halves multiplied together, then the
/// result multiplied once more. One multiply of the halves alone spreads keys that differ
/// in one half only as well as the other half's bits happen to allow: conntrack keys of one
/// pod's flows (one source, one port pair, destinations in a row) averaged 4.2 slots read
/// per lookup, where a random hash reads 1.5. The second multiply costs a few cycles and
/// takes every key shape to the random figure (`mean_probe_length` in the tests).
#[inline]
pub fn hash128(hi: u64, lo: u64) -> u64 {
    folded_multiply(folded_multiply(lo ^ SEED_LO, hi ^ SEED_HI), MULTIPLE)
}

impl FlatKey for u32 {
    #[inline]
    fn hash64(self) -> u64 {
        folded_multiply(u64::from(self) ^ SEED_LO, MULTIPLE)
    }
}

impl FlatKey for u64 {
    #[inline]
    fn hash64(self) -> u64 {
        folded_multiply(self ^ SEED_LO, MULTIPLE)
    }
}

impl FlatKey for u128 {
    #[inline]
    fn hash64(self) -> u64 {
        #[expect(clippy::cast_possible_truncation, reason = "the halves of the key")]
        hash128((self >> 64) as u64, self as u64)
    }
}

/// A hash table of [`FlatKey`]s, see the module's docs.
#[derive(Clone, Debug)]
pub struct FlatTable<K, V> {
    /// A power of two long, never empty (so that a lookup need not check), at most half full
    /// (a quarter, when sparse).
    slots: Vec<Option<(K, V)>>,
    len: usize,
    /// `64 - log2(slots.len())`: a hash shifted right by it is a slot index.
    shift: u32,
    /// The table holds at most `slots.len() >> sparseness` keys: 1 (half full) unless made
    /// [`FlatTable::sparse`].
    sparseness: u8,
}

impl<K: FlatKey, V> Default for FlatTable<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Equal when they hold the same keys with equal values, whatever their layout.
impl<K: FlatKey, V: PartialEq> PartialEq for FlatTable<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().all(|(k, v)| other.get(*k) == Some(v))
    }
}

impl<K: FlatKey, V: Eq> Eq for FlatTable<K, V> {}

/// What [`FlatTable::entry`] finds.
pub enum Entry<'a, K, V> {
    /// The key is there: its value.
    Occupied(&'a mut V),
    /// It is not: where it goes.
    Vacant(VacantEntry<'a, K, V>),
}

/// The place of a key not in the table, from [`FlatTable::entry`].
pub struct VacantEntry<'a, K, V> {
    table: &'a mut FlatTable<K, V>,
    index: usize,
    key: K,
}

impl<'a, K: FlatKey, V> VacantEntry<'a, K, V> {
    /// Puts the key there with `value`.
    pub fn insert(self, value: V) -> &'a mut V {
        self.table.len += 1;
        let slot = &mut self.table.slots[self.index];
        &mut slot.insert((self.key, value)).1
    }
}

impl<K: FlatKey, V> FlatTable<K, V> {
    const MIN_SLOTS: usize = 8;

    /// An empty table, with its first few slots.
    pub fn new() -> Self {
        let mut slots = Vec::new();
        slots.resize_with(Self::MIN_SLOTS, || None);
        Self {
            slots,
            len: 0,
            shift: 64 - Self::MIN_SLOTS.trailing_zeros(),
            sparseness: 1,
        }
    }

    /// An empty table that stays at most a quarter full, for keys looked up on every packet
    /// whose structure the hash cannot count on: at half full a hit is off its home slot
    /// about one time in three (conntrack, 1.45 slots read per hit in the verdict bench), and
    /// each such walk is a branch the CPU mispredicts; at a quarter full, about one in six.
    /// It costs twice the slots.
    pub fn sparse() -> Self {
        Self {
            sparseness: 2,
            ..Self::new()
        }
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, key: K) -> usize {
        // `shift` is below 64 (there are always slots); the index is below their number.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "an index below slots.len()"
        )]
        let home = (key.hash64() >> self.shift) as usize;
        home
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot holding `key` (`true`), or the empty slot where it would go.
    #[inline]
    fn probe(&self, key: K) -> (usize, bool) {
        let mask = self.mask();
        // The home is below the number of slots already; masking it lets the compiler see
        // that every index is, and drop the bounds checks.
        let mut i = self.home(key) & mask;
        // At most half full: the walk meets an empty slot.
        loop {
            match &self.slots[i] {
                Some((k, _)) if *k == key => return (i, true),
                Some(_) => i = (i + 1) & mask,
                None => return (i, false),
            }
        }
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: K) -> Option<&V> {
        // The walk of `probe`, written again: through `probe`, the slot is indexed a second
        // time, with its bounds check. Walking here, with the masked home index, took a
        // verdict from 388 to 368 instructions (callgrind).
        let mask = self.mask();
        let mut i = self.home(key) & mask;
        loop {
            match &self.slots[i] {
                Some((k, v)) if *k == key => return Some(v),
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
    }

    /// The value of `key`, to change.
    #[inline]
    pub fn get_mut(&mut self, key: K) -> Option<&mut V> {
        match self.probe(key) {
            (i, true) => self.slots[i].as_mut().map(|(_, v)| v),
            (_, false) => None,
        }
    }

    /// Doubles the slots and puts every entry back.
    #[cold]
    fn grow(&mut self) {
        let slots = self.slots.len() * 2;
        let old = std::mem::take(&mut self.slots);
        self.slots.resize_with(slots, || None);
        self.shift = 64 - slots.trailing_zeros();
        for (k, v) in old.into_iter().flatten() {
            let (i, _) = self.probe(k);
            self.slots[i] = Some((k, v));
        }
    }

    /// The entry of `key`: its value, or the place to insert it (room for it is made first,
    /// so the place stays valid).
    #[inline]
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let mut found = self.probe(key);
        if !found.1 && (self.len + 1) << self.sparseness > self.slots.len() {
            self.grow();
            found = self.probe(key);
        }
        match found {
            (i, true) => match &mut self.slots[i] {
                Some((_, v)) => Entry::Occupied(v),
                None => unreachable!("the probe found the key here"),
            },
            (index, false) => Entry::Vacant(VacantEntry {
                table: self,
                index,
                key,
            }),
        }
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.entry(key) {
            Entry::Occupied(v) => Some(std::mem::replace(v, value)),
            Entry::Vacant(slot) => {
                slot.insert(value);
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: K) -> Option<V> {
        let (mut gap, true) = self.probe(key) else {
            return None;
        };
        let (_, value) = self.slots[gap].take()?;
        self.len -= 1;
        // Backward shift: pull later entries of the run into the gap when their home is not
        // between the gap and where they are, so that every probe walk stays unbroken.
        let mask = self.mask();
        let mut j = gap;
        loop {
            j = (j + 1) & mask;
            let Some((k, _)) = &self.slots[j] else {
                break;
            };
            let at = self.home(*k);
            if j.wrapping_sub(at) & mask >= j.wrapping_sub(gap) & mask {
                self.slots[gap] = self.slots[j].take();
                gap = j;
            }
        }
        Some(value)
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let removed: Vec<K> = self
            .slots
            .iter_mut()
            .flatten()
            .filter_map(|(k, v)| (!keep(k, v)).then_some(*k))
            .collect();
        for k in removed {
            self.remove(k);
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots.iter().flatten().map(|(k, v)| (k, v))
    }

    /// How many slots a lookup of each key reads, on average (1 when every key sits in its
    /// home slot): how well the hash spreads these keys. A random hash in a table between a
    /// quarter and half full gives about 1.2 to 1.6.
    pub fn mean_probe_length(&self) -> f64 {
        if self.len == 0 {
            return 0.0;
        }
        let mask = self.mask();
        let total: usize = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                slot.as_ref()
                    .map(|(k, _)| (i.wrapping_sub(self.home(*k)) & mask) + 1)
            })
            .sum();
        #[expect(clippy::cast_precision_loss, reason = "a statistic")]
        let mean = total as f64 / self.len as f64;
        mean
    }

    /// Removes everything (and frees all but the first few slots).
    pub fn clear(&mut self) {
        *self = Self {
            sparseness: self.sparseness,
            ..Self::new()
        };
    }
}
