//! [`SelectorSet`]: every selector that matches a name, in one pass over the name.
//!
//! Cilium compiles one regular expression per selector and runs each of them on every new name,
//! so its cost grows with the number of selectors. Here the selectors live in three places:
//!
//! - `exact`: `matchName`s and wildcard-free patterns, keyed by the whole name (one hash lookup);
//! - `match_all`: the all-star patterns (`*`, `**.`), which match every name made of
//!   `[-a-zA-Z0-9_]` labels;
//! - a trie over reversed labels for the rest. An edge is a literal label (one hash lookup in a
//!   table shared by all nodes), the lone `*`, or a glob label (`api-*`, `*-prod`, `a*b`), which
//!   is found through an index by its literal prefix or suffix. A node also lists the `**.`
//!   patterns that end there and want one or more further labels.
//!
//! Matching walks the name's labels from the right, keeping the set of trie nodes reached. Each
//! step costs a hash lookup per reached node plus the glob candidates whose prefix or suffix the
//! label really has, so the cost depends on the name and on the selectors that match it, not on
//! how many selectors the set holds.
//!
//! The suffix table is here (its one-cache-line entry in `set/entry.rs`); the trie, and the glob
//! index its nodes share with the suffix entries, in `set/trie.rs`.

use foldhash::fast::FixedState;
use hashbrown::{HashMap, HashTable};

mod entry;
mod trie;

use crate::keyhash::{self, key_hash};
use crate::name::normalize;
use crate::selector::{Compiled, FqdnSelector, Glob, LabelPattern, is_label_byte, is_label_text};
use entry::{List, SuffixEntry};
use trie::Trie;

const NONE: u32 = u32::MAX;

/// The handle of a selector inside a [`SelectorSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SelectorId(u32);

impl SelectorId {
    /// The dense index of this id (ids are reused after removal).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

struct Slot {
    selector: FqdnSelector,
    refs: u32,
}

/// A set of FQDN selectors that answers "which of them match this name" in one pass.
///
/// Inserting an equal selector twice returns the same id and counts a reference; removing it
/// drops one reference. Matching returns every matching selector exactly once.
///
/// ```
/// use fqdnpath_names::{FqdnSelector, SelectorSet};
///
/// let mut set = SelectorSet::new();
/// let api = set.insert(FqdnSelector::match_name("api.example.com").unwrap());
/// let any = set.insert(FqdnSelector::match_pattern("*.example.com").unwrap());
/// let deep = set.insert(FqdnSelector::match_pattern("**.example.com").unwrap());
/// assert_eq!(set.matches("API.example.com"), vec![api, any, deep]);
/// assert_eq!(set.matches("a.b.example.com"), vec![deep]);
/// assert!(set.matches("example.com").is_empty());
/// ```
#[derive(Default)]
pub struct SelectorSet {
    slots: Vec<Option<Slot>>,
    free_slots: Vec<u32>,
    ids: HashMap<FqdnSelector, SelectorId, FixedState>,
    suffixes: SuffixTable,
    match_all: Vec<SelectorId>,
    trie: Trie,
}

impl SelectorSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a selector (or one more reference to an equal one) and returns its id.
    ///
    /// # Panics
    /// If more than `u32::MAX - 1` distinct selectors are inserted.
    pub fn insert(&mut self, selector: FqdnSelector) -> SelectorId {
        if let Some(&id) = self.ids.get(&selector) {
            if let Some(slot) = &mut self.slots[id.index()] {
                slot.refs += 1;
            }
            return id;
        }
        let id = if let Some(free) = self.free_slots.pop() {
            SelectorId(free)
        } else {
            let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 selectors");
            assert!(index != NONE, "fewer than 2^32 - 1 selectors");
            self.slots.push(None);
            SelectorId(index)
        };
        match Placement::of(&selector) {
            Placement::Table(kind, key, glob) => self.suffixes.insert(kind, key, glob, id),
            Placement::All => self.match_all.push(id),
            Placement::Trie(subdomains, labels) => self.trie.insert(subdomains, labels, id),
        }
        self.ids.insert(selector.clone(), id);
        self.slots[id.index()] = Some(Slot { selector, refs: 1 });
        id
    }

    /// Drops one reference to the selector `id`; the selector leaves the set with its last
    /// reference. Returns whether it left.
    pub fn remove(&mut self, id: SelectorId) -> bool {
        let Some(slot) = self.slots.get_mut(id.index()).and_then(Option::as_mut) else {
            return false;
        };
        slot.refs -= 1;
        if slot.refs > 0 {
            return false;
        }
        let Some(slot) = self.slots[id.index()].take() else {
            return false;
        };
        self.ids.remove(&slot.selector);
        self.free_slots.push(id.0);
        match Placement::of(&slot.selector) {
            Placement::Table(kind, key, glob) => self.suffixes.remove(kind, key, glob, id),
            Placement::All => self.match_all.retain(|&x| x != id),
            Placement::Trie(subdomains, labels) => self.trie.remove(subdomains, labels, id),
        }
        true
    }

    /// The id of a selector equal to `selector`, if the set holds one.
    pub fn id_of(&self, selector: &FqdnSelector) -> Option<SelectorId> {
        self.ids.get(selector).copied()
    }

    /// The selector behind `id`.
    pub fn get(&self, id: SelectorId) -> Option<&FqdnSelector> {
        self.slots
            .get(id.index())
            .and_then(Option::as_ref)
            .map(|s| &s.selector)
    }

    /// How many distinct selectors the set holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the set holds no selector.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Every selector with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (SelectorId, &FqdnSelector)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.as_ref().map(|s| {
                #[expect(clippy::cast_possible_truncation, reason = "slots.len() < u32::MAX")]
                (SelectorId(i as u32), &s.selector)
            })
        })
    }

    /// Calls `f` once for every selector that matches `name` (normalised first), in no
    /// particular order.
    pub fn for_each_match(&self, name: &str, mut f: impl FnMut(SelectorId)) {
        let name = normalize(name);
        if !self.match_all.is_empty()
            && crate::name::labels(&name).all(|l| !l.is_empty() && is_label_text(l))
        {
            self.match_all.iter().copied().for_each(&mut f);
        }
        self.suffixes.walk(&name, &mut f);
        self.trie.walk(&name, f);
    }

    /// Clears `out` and fills it with the ids of every selector that matches `name`, ascending.
    pub fn matches_into(&self, name: &str, out: &mut Vec<SelectorId>) {
        out.clear();
        self.for_each_match(name, |id| out.push(id));
        out.sort_unstable();
    }

    /// The ids of every selector that matches `name`, ascending.
    pub fn matches(&self, name: &str) -> Vec<SelectorId> {
        let mut out = Vec::new();
        self.matches_into(name, &mut out);
        out
    }

    /// Whether any selector matches `name`.
    pub fn matches_any(&self, name: &str) -> bool {
        let mut any = false;
        self.for_each_match(name, |_| any = true);
        any
    }
}

impl std::fmt::Debug for SelectorSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Extend<FqdnSelector> for SelectorSet {
    fn extend<I: IntoIterator<Item = FqdnSelector>>(&mut self, iter: I) {
        for selector in iter {
            self.insert(selector);
        }
    }
}

impl FromIterator<FqdnSelector> for SelectorSet {
    fn from_iter<I: IntoIterator<Item = FqdnSelector>>(iter: I) -> Self {
        let mut set = Self::new();
        set.extend(iter);
        set
    }
}

/// Where a selector lives in the set.
enum Placement<'a> {
    /// In the suffix table under `key`.
    Table(TableKind, &'a str, Option<&'a Glob>),
    All,
    Trie(bool, &'a [LabelPattern]),
}

/// The shapes of selector the suffix table holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TableKind {
    /// No wildcard: the key is the whole name.
    Exact,
    /// A wildcard first label (`*` or a glob such as `api-*`) before a literal rest: the key is
    /// the rest.
    Leading,
    /// `**.` before a literal rest: the key is the rest.
    Subdomains,
}

impl<'a> Placement<'a> {
    fn of(selector: &'a FqdnSelector) -> Self {
        let pattern = match selector {
            FqdnSelector::MatchName(name) => {
                return Self::Table(TableKind::Exact, name.as_str(), None);
            }
            FqdnSelector::MatchPattern(pattern) => pattern,
        };
        let (subdomains, labels) = match pattern.compiled() {
            Compiled::MatchAll => return Self::All,
            Compiled::Labels { subdomains, labels } => (*subdomains, &**labels),
        };
        let literal = |l: &[LabelPattern]| l.iter().all(|l| matches!(l, LabelPattern::Literal(_)));
        let text = pattern.as_str();
        // The text after the first label's dot (the pattern is fully qualified).
        let rest = || &text[text.find('.').map_or(text.len(), |dot| dot + 1)..];
        match (subdomains, labels) {
            (false, all) if literal(all) => Self::Table(TableKind::Exact, text, None),
            (false, [LabelPattern::Glob(glob), tail @ ..]) if literal(tail) => {
                Self::Table(TableKind::Leading, rest(), Some(glob))
            }
            (true, all) if literal(all) => Self::Table(TableKind::Subdomains, rest(), None),
            _ => Self::Trie(subdomains, labels),
        }
    }
}

/// The selectors keyed by a name or a name's suffix: exact names, `*.rest`, `glob.rest` and
/// `**.rest` with a literal rest, which is nearly every selector in real policies.
///
/// Matching a name probes the table once per suffix of the name (after each dot, right to
/// left, then the whole name), each suffix's hash folded from the one before
/// (`crate::keyhash`). No probe waits on another's result, so the processor overlaps their
/// memory accesses; an entry is one cache line (`entry`), so a large set costs about one memory
/// latency per name, not one per label.
#[derive(Default)]
struct SuffixTable {
    entries: HashTable<SuffixEntry>,
    /// Whether any entry has leading or subdomain selectors (else only the whole name is probed).
    wildcards: usize,
    /// Whether the empty key has an entry (a pattern such as `a*.`): otherwise the empty suffix
    /// after a name's final dot is not probed.
    empty_key: bool,
}

impl SuffixTable {
    fn insert(&mut self, kind: TableKind, key: &str, glob: Option<&Glob>, id: SelectorId) {
        let hash = key_hash(key.as_bytes());
        let key = key.as_bytes();
        let entry = match self.entries.find_mut(hash, |e| e.is(hash, key)) {
            Some(entry) => entry,
            None => self
                .entries
                .insert_unique(hash, SuffixEntry::new(key, hash), |e| key_hash(e.key()))
                .into_mut(),
        };
        entry.refs += 1;
        self.empty_key |= key.is_empty();
        match (kind, glob) {
            (TableKind::Exact, _) => entry.push(List::Exact, id),
            (TableKind::Leading, Some(glob)) if !glob.is_star() => {
                entry.globs_mut().add(glob.clone(), id.0);
            }
            (TableKind::Leading, _) => entry.push(List::Star, id),
            (TableKind::Subdomains, _) => entry.push(List::Subdomains, id),
        }
        if kind != TableKind::Exact {
            self.wildcards += 1;
        }
    }

    fn remove(&mut self, kind: TableKind, key: &str, glob: Option<&Glob>, id: SelectorId) {
        let hash = key_hash(key.as_bytes());
        let Ok(mut slot) = self
            .entries
            .find_entry(hash, |e| e.is(hash, key.as_bytes()))
        else {
            return;
        };
        let entry = slot.get_mut();
        match (kind, glob) {
            (TableKind::Exact, _) => entry.remove(List::Exact, id),
            (TableKind::Leading, Some(glob)) if !glob.is_star() => {
                entry.globs_mut().remove(id.0);
                entry.prune_globs();
            }
            (TableKind::Leading, _) => entry.remove(List::Star, id),
            (TableKind::Subdomains, _) => entry.remove(List::Subdomains, id),
        }
        entry.refs -= 1;
        if entry.refs == 0 {
            slot.remove();
            if key.is_empty() {
                self.empty_key = false;
            }
        }
        if kind != TableKind::Exact {
            self.wildcards -= 1;
        }
    }

    /// The entry of `key`, whose [`key_hash`] is `hash`.
    #[inline]
    fn get(&self, hash: u64, key: &[u8]) -> Option<&SuffixEntry> {
        self.entries.find(hash, |e| e.is(hash, key))
    }

    /// Calls `f` for every selector of the table that matches the normalised name `fqdn`.
    ///
    /// The suffixes are probed right to left, each with the hash [`keyhash::label_before`]
    /// builds from the one before. What a wildcard wants of the labels left of its key is
    /// checked only when an entry holding such a selector is found.
    fn walk(&self, fqdn: &str, f: &mut impl FnMut(SelectorId)) {
        if self.entries.is_empty() {
            return;
        }
        let bytes = fqdn.as_bytes();
        if self.wildcards == 0 {
            if let Some(entry) = self.get(key_hash(bytes), bytes) {
                entry.for_each(List::Exact, f);
            }
            return;
        }
        if bytes.is_empty() {
            return;
        }
        if self.empty_key
            && let Some(entry) = self.get(keyhash::EMPTY, b"")
        {
            Self::wildcards_at(fqdn, bytes.len(), entry, f);
        }
        // Label by label from the right; `hash` is the hash of `bytes[at..]`.
        let mut end = keyhash::last_label_end(bytes);
        let mut hash = keyhash::EMPTY;
        loop {
            let (at, next) = keyhash::label_before(bytes, end, hash);
            hash = next;
            if at == 0 {
                if let Some(entry) = self.get(hash, bytes) {
                    entry.for_each(List::Exact, f);
                }
                return;
            }
            if let Some(entry) = self.get(hash, &bytes[at..]) {
                Self::wildcards_at(fqdn, at, entry, f);
            }
            end = at - 1;
        }
    }

    /// Calls `f` for the wildcard selectors of `entry`, the entry of the suffix of `fqdn` that
    /// starts at `at`, after a dot, that match `fqdn`: `*.` and `glob.` when one label is left
    /// of the key, `**.` when one or more are.
    #[inline]
    fn wildcards_at(fqdn: &str, at: usize, entry: &SuffixEntry, f: &mut impl FnMut(SelectorId)) {
        let left = &fqdn[..at - 1];
        let globs = entry.globs();
        if (entry.has(List::Star) || globs.is_some()) && !left.contains('.') && is_label_text(left)
        {
            entry.for_each(List::Star, f);
            if let Some(globs) = globs {
                globs.for_each_match(left, |id| f(SelectorId(id)));
            }
        }
        if entry.has(List::Subdomains) && nonempty_label_text(&fqdn.as_bytes()[..at]) {
            entry.for_each(List::Subdomains, f);
        }
    }
}

/// Whether `run` is one or more labels of `[-a-zA-Z0-9_]+`, each followed by its dot.
///
/// A byte loop on purpose: written as `name::labels` with `is_label_text` on each label, the
/// same check measured about 320 instructions per call in `selectors/selector_set/1000`
/// (callgrind), on the path of every name that reaches a `**.` entry.
fn nonempty_label_text(run: &[u8]) -> bool {
    let mut label = 0_usize;
    for &b in run {
        if b == b'.' {
            if label == 0 {
                return false;
            }
            label = 0;
        } else if is_label_byte(b) {
            label += 1;
        } else {
            return false;
        }
    }
    label == 0 && !run.is_empty()
}

#[cfg(test)]
mod tests;
