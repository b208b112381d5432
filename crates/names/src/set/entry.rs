//! The suffix table's entry, one cache line: what a probe's hit reads is in it.
//!
//! At 100k selectors the table's entries do not fit the caches, so each hit costs a memory
//! access per cache line the entry spans. An entry holds the key's hash (for a cheap check
//! before the key is compared), the key inline up to [`INLINE_KEY`] bytes, and the first
//! selector of each of its three lists; the rest of a list, a longer key and the glob index,
//! which real policies rarely need, are behind one pointer.

use super::trie::GlobIndex;
use super::{NONE, SelectorId};

/// Keys up to this long live in the entry itself.
pub(super) const INLINE_KEY: usize = 32;

/// The selector lists of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum List {
    /// `matchName`s and wildcard-free patterns whose name is the key.
    Exact,
    /// `*.key`: one label of any text, then the key.
    Star,
    /// `**.key`: one or more labels, then the key.
    Subdomains,
}

/// What does not fit the entry.
#[derive(Default)]
struct Extra {
    /// The key, when it is longer than [`INLINE_KEY`].
    key: Box<[u8]>,
    /// Each list's selectors after its first.
    rest: [Vec<SelectorId>; 3],
    /// `glob.key` selectors (a glob other than the lone `*`), indexed by their literal parts.
    globs: Option<GlobIndex>,
}

/// One key of the suffix table and its selectors, in 64 bytes.
#[repr(align(64))]
pub(super) struct SuffixEntry {
    /// The rest of the entry, if any of it is needed.
    extra: Option<Box<Extra>>,
    /// The low half of the key's hash.
    hash: u32,
    /// Selectors using this entry.
    pub(super) refs: u32,
    /// Each list's first selector, `NONE` for an empty list.
    first: [u32; 3],
    /// The key's length.
    len: u32,
    /// The key, when it fits.
    inline: [u8; INLINE_KEY],
}

impl SuffixEntry {
    /// An entry for `key`, whose hash is `hash`, with no selector.
    pub(super) fn new(key: &[u8], hash: u64) -> Self {
        let mut inline = [0; INLINE_KEY];
        let extra = match inline.get_mut(..key.len()) {
            Some(to) => {
                to.copy_from_slice(key);
                None
            }
            None => Some(Box::new(Extra {
                key: key.into(),
                ..Extra::default()
            })),
        };
        Self {
            extra,
            #[expect(clippy::cast_possible_truncation, reason = "the low half, on purpose")]
            hash: hash as u32,
            refs: 0,
            first: [NONE; 3],
            len: u32::try_from(key.len()).unwrap_or(u32::MAX),
            inline,
        }
    }

    /// The key.
    pub(super) fn key(&self) -> &[u8] {
        match (&self.extra, self.inline.get(..self.len as usize)) {
            (_, Some(key)) => key,
            (Some(extra), None) => &extra.key,
            (None, None) => &[],
        }
    }

    /// Whether this is the entry of `key`, whose hash is `hash`.
    #[inline]
    pub(super) fn is(&self, hash: u64, key: &[u8]) -> bool {
        #[expect(clippy::cast_possible_truncation, reason = "the low half, on purpose")]
        let low = hash as u32;
        self.hash == low && self.len as usize == key.len() && self.key() == key
    }

    /// Whether `list` holds a selector.
    #[inline]
    pub(super) fn has(&self, list: List) -> bool {
        self.first[list as usize] != NONE
    }

    /// Calls `f` for each selector of `list`.
    #[inline]
    pub(super) fn for_each(&self, list: List, f: &mut impl FnMut(SelectorId)) {
        let first = self.first[list as usize];
        if first == NONE {
            return;
        }
        f(SelectorId(first));
        if let Some(extra) = &self.extra {
            extra.rest[list as usize].iter().copied().for_each(f);
        }
    }

    /// Adds `id` to `list`.
    pub(super) fn push(&mut self, list: List, id: SelectorId) {
        let first = &mut self.first[list as usize];
        if *first == NONE {
            *first = id.0;
        } else {
            self.extra.get_or_insert_default().rest[list as usize].push(id);
        }
    }

    /// Takes `id` out of `list`.
    pub(super) fn remove(&mut self, list: List, id: SelectorId) {
        let rest = self
            .extra
            .as_mut()
            .map(|extra| &mut extra.rest[list as usize]);
        let first = &mut self.first[list as usize];
        if *first == id.0 {
            // The list's order does not matter: its last selector takes the first's place.
            *first = rest.and_then(Vec::pop).map_or(NONE, |id| id.0);
        } else if let Some(rest) = rest {
            rest.retain(|&x| x != id);
        }
    }

    /// The glob index, if the entry has `glob.key` selectors.
    #[inline]
    pub(super) fn globs(&self) -> Option<&GlobIndex> {
        self.extra.as_ref().and_then(|extra| extra.globs.as_ref())
    }

    /// The glob index, made if it is not there yet.
    pub(super) fn globs_mut(&mut self) -> &mut GlobIndex {
        self.extra
            .get_or_insert_default()
            .globs
            .get_or_insert_default()
    }

    /// Drops the glob index if it holds no glob any more.
    pub(super) fn prune_globs(&mut self) {
        if let Some(extra) = &mut self.extra
            && extra.globs.as_ref().is_some_and(GlobIndex::is_empty)
        {
            extra.globs = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_one_cache_line() {
        assert_eq!(size_of::<SuffixEntry>(), 64);
        assert_eq!(align_of::<SuffixEntry>(), 64);
    }

    #[test]
    fn keys_inline_and_aside_read_back_and_compare_by_hash_length_and_bytes() {
        for len in [0, 1, INLINE_KEY - 1, INLINE_KEY, INLINE_KEY + 1, 300] {
            let key: Vec<u8> = (0..len)
                .map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26])
                .collect();
            let entry = SuffixEntry::new(&key, 0x1234_5678_9abc_def0);
            assert_eq!(entry.key(), &key[..]);
            assert!(entry.is(0x1234_5678_9abc_def0, &key));
            assert!(
                entry.is(0xffff_ffff_9abc_def0, &key),
                "the low half decides"
            );
            assert!(!entry.is(0x1234_5678_9abc_def1, &key));
            let mut other = key.clone();
            other.push(b'x');
            assert!(!entry.is(0x1234_5678_9abc_def0, &other));
            if let Some(last) = other.get_mut(len.saturating_sub(1)).filter(|_| len > 0) {
                *last = b'.';
                assert!(!entry.is(0x1234_5678_9abc_def0, &other[..len]));
            }
        }
    }

    #[test]
    fn lists_keep_every_id_once_through_pushes_and_removals_in_any_order() {
        let mut entry = SuffixEntry::new(b"example.com.", 0);
        let ids = |entry: &SuffixEntry, list| {
            let mut out = Vec::new();
            entry.for_each(list, &mut |id| out.push(id.0));
            out.sort_unstable();
            out
        };
        for id in 1..=5 {
            entry.push(List::Star, SelectorId(id));
        }
        entry.push(List::Exact, SelectorId(9));
        assert_eq!(ids(&entry, List::Star), vec![1, 2, 3, 4, 5]);
        assert_eq!(ids(&entry, List::Exact), vec![9]);
        assert!(!entry.has(List::Subdomains));
        entry.remove(List::Star, SelectorId(1));
        entry.remove(List::Star, SelectorId(4));
        entry.remove(List::Star, SelectorId(7));
        assert_eq!(ids(&entry, List::Star), vec![2, 3, 5]);
        for id in [5, 2, 3] {
            entry.remove(List::Star, SelectorId(id));
        }
        assert!(!entry.has(List::Star));
        assert_eq!(ids(&entry, List::Star), Vec::<u32>::new());
        entry.push(List::Star, SelectorId(8));
        assert_eq!(ids(&entry, List::Star), vec![8]);
        assert_eq!(ids(&entry, List::Exact), vec![9]);
    }
}
