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

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::{HashMap, HashTable};
use smallvec::SmallVec;

mod entry;

use crate::keyhash::{self, key_hash};
use crate::name::normalize;
use crate::selector::{Compiled, FqdnSelector, Glob, LabelPattern, is_label_byte, is_label_text};
use entry::{List, SuffixEntry};

/// Fixed hashing seed: the structure must behave the same on every run (the keys are selectors,
/// which come from policy, not from the network).
const SEED: u64 = 0x6671_646e_7061_7468;

/// Labels longer than this are not indexed by prefix or suffix length (a `u64` bit mask).
const MAX_INDEXED_AFFIX: usize = 63;

const ROOT: u32 = 0;
const NONE: u32 = u32::MAX;

/// Selector ids, inline when there are one or two (the common case), so reading them costs no
/// extra memory access.
type Ids = SmallVec<[SelectorId; 2]>;

/// A label's text, inline up to 24 bytes, so comparing an edge's label usually touches only the
/// edge itself.
type LabelText = SmallVec<[u8; 24]>;

/// The trie nodes reached so far; a name rarely reaches more than a few at once.
type Frontier = SmallVec<[u32; 8]>;

/// Combines a label's hash with its parent node into the edge table's hash.
#[inline]
fn edge_hash(label_hash: u64, parent: u32) -> u64 {
    (label_hash ^ u64::from(parent).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(0xBF58_476D_1CE4_E5B9)
        .rotate_left(32)
}

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

struct Edge {
    /// The hash of `label` alone (the table's hash mixes in `parent`).
    label_hash: u64,
    parent: u32,
    child: u32,
    /// A glob edge (its label holds `*`): never matched as a literal.
    glob: bool,
    label: LabelText,
}

struct Node {
    /// Selectors whose path passes through or ends at this node.
    refs: u32,
    /// Patterns that end here.
    terminal: Ids,
    /// `**.` patterns that end here: they match when one or more further labels remain.
    subdomains: Ids,
    /// The child behind the lone `*` label.
    star: u32,
    globs: GlobIndex,
}

impl Node {
    fn new() -> Self {
        Self {
            refs: 0,
            terminal: Ids::new(),
            subdomains: Ids::new(),
            star: NONE,
            globs: GlobIndex::default(),
        }
    }
}

/// Globs (other than the lone `*`) indexed by literal prefix or suffix, each with a `u32` value:
/// a trie node's children, or the selectors of a suffix-table entry.
#[derive(Default)]
struct GlobIndex {
    globs: Vec<(Glob, u32)>,
    by_prefix: HashMap<Box<str>, Vec<u32>, FixedState>,
    /// Bit `n` is set when some indexed prefix is `n` bytes long.
    prefix_lens: u64,
    by_suffix: HashMap<Box<str>, Vec<u32>, FixedState>,
    suffix_lens: u64,
    /// Globs with neither prefix nor suffix to index (`*a*`), or too long ones.
    scan: Vec<u32>,
}

impl GlobIndex {
    fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    fn add(&mut self, glob: Glob, child: u32) {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "one node never has 2^32 globs"
        )]
        let at = self.globs.len() as u32;
        self.index(&glob, at);
        self.globs.push((glob, child));
    }

    fn index(&mut self, glob: &Glob, at: u32) {
        let (prefix, suffix) = (glob.prefix(), glob.suffix());
        if !prefix.is_empty() && prefix.len() <= MAX_INDEXED_AFFIX {
            self.by_prefix.entry(prefix.into()).or_default().push(at);
            self.prefix_lens |= 1 << prefix.len();
        } else if !suffix.is_empty() && suffix.len() <= MAX_INDEXED_AFFIX {
            self.by_suffix.entry(suffix.into()).or_default().push(at);
            self.suffix_lens |= 1 << suffix.len();
        } else {
            self.scan.push(at);
        }
    }

    fn remove(&mut self, child: u32) {
        self.globs.retain(|&(_, c)| c != child);
        let globs = std::mem::take(&mut self.globs);
        *self = Self::default();
        for (glob, child) in globs {
            self.add(glob, child);
        }
    }

    /// Calls `f` with the child of every glob that matches `label` (all label bytes).
    fn for_each_match(&self, label: &str, mut f: impl FnMut(u32)) {
        let mut check = |candidates: &[u32]| {
            for &at in candidates {
                let (glob, child) = &self.globs[at as usize];
                if glob.matches_label_text(label) {
                    f(*child);
                }
            }
        };
        let mut lens = self.prefix_lens;
        while lens != 0 {
            let n = lens.trailing_zeros() as usize;
            lens &= lens - 1;
            if n > label.len() {
                break;
            }
            if let Some(candidates) = self.by_prefix.get(&label[..n]) {
                check(candidates);
            }
        }
        let mut lens = self.suffix_lens;
        while lens != 0 {
            let n = lens.trailing_zeros() as usize;
            lens &= lens - 1;
            if n > label.len() {
                break;
            }
            if let Some(candidates) = self.by_suffix.get(&label[label.len() - n..]) {
                check(candidates);
            }
        }
        check(&self.scan);
    }
}

/// The trie over reversed labels.
struct Trie {
    nodes: Vec<Node>,
    free_nodes: Vec<u32>,
    edges: HashTable<Edge>,
    hasher: FixedState,
    /// How many `**.` patterns the trie holds (the walk skips their bookkeeping when none).
    subdomain_patterns: usize,
}

impl Default for Trie {
    fn default() -> Self {
        Self {
            nodes: vec![Node::new()],
            free_nodes: Vec::new(),
            edges: HashTable::new(),
            hasher: FixedState::with_seed(SEED),
            subdomain_patterns: 0,
        }
    }
}

impl Trie {
    fn label_hash(&self, label: &str) -> u64 {
        self.hasher.hash_one(label)
    }

    #[inline]
    fn find_edge_hashed(
        &self,
        parent: u32,
        label: &str,
        label_hash: u64,
        glob: bool,
    ) -> Option<u32> {
        self.edges
            .find(edge_hash(label_hash, parent), |e| {
                e.label_hash == label_hash
                    && e.parent == parent
                    && e.glob == glob
                    && *e.label == *label.as_bytes()
            })
            .map(|e| e.child)
    }

    fn find_edge(&self, parent: u32, label: &str, glob: bool) -> Option<u32> {
        self.find_edge_hashed(parent, label, self.label_hash(label), glob)
    }

    fn new_node(&mut self) -> u32 {
        if let Some(free) = self.free_nodes.pop() {
            self.nodes[free as usize] = Node::new();
            free
        } else {
            let id = u32::try_from(self.nodes.len()).expect("fewer than 2^32 trie nodes");
            self.nodes.push(Node::new());
            id
        }
    }

    fn child_or_insert(&mut self, parent: u32, label: &LabelPattern) -> u32 {
        let (text, glob) = label.edge();
        if let Some(child) = self.find_edge(parent, text, glob) {
            return child;
        }
        let child = self.new_node();
        let label_hash = self.label_hash(text);
        self.edges.insert_unique(
            edge_hash(label_hash, parent),
            Edge {
                label_hash,
                parent,
                child,
                glob,
                label: LabelText::from_slice(text.as_bytes()),
            },
            |e| edge_hash(e.label_hash, e.parent),
        );
        if let LabelPattern::Glob(g) = label {
            let node = &mut self.nodes[parent as usize];
            if g.is_star() {
                node.star = child;
            } else {
                node.globs.add(g.clone(), child);
            }
        }
        child
    }

    fn insert(&mut self, subdomains: bool, labels: &[LabelPattern], id: SelectorId) {
        let mut node = ROOT;
        self.nodes[ROOT as usize].refs += 1;
        for label in labels.iter().rev() {
            node = self.child_or_insert(node, label);
            self.nodes[node as usize].refs += 1;
        }
        let node = &mut self.nodes[node as usize];
        if subdomains {
            node.subdomains.push(id);
            self.subdomain_patterns += 1;
        } else {
            node.terminal.push(id);
        }
    }

    fn remove(&mut self, subdomains: bool, labels: &[LabelPattern], id: SelectorId) {
        // The path exists: the selector was inserted along it.
        let mut path = Vec::with_capacity(labels.len() + 1);
        path.push(ROOT);
        for label in labels.iter().rev() {
            let (text, glob) = label.edge();
            match self.find_edge(*path.last().unwrap_or(&ROOT), text, glob) {
                Some(child) => path.push(child),
                None => return,
            }
        }
        let end = &mut self.nodes[*path.last().unwrap_or(&ROOT) as usize];
        if subdomains {
            end.subdomains.retain(|x| *x != id);
            self.subdomain_patterns -= 1;
        } else {
            end.terminal.retain(|x| *x != id);
        }
        for &node in &path {
            self.nodes[node as usize].refs -= 1;
        }
        // Unlink the nodes no selector uses any more, deepest first.
        for (depth, label) in labels.iter().rev().enumerate().rev() {
            let (parent, child) = (path[depth], path[depth + 1]);
            if self.nodes[child as usize].refs > 0 {
                break;
            }
            let (text, glob) = label.edge();
            let hash = edge_hash(self.label_hash(text), parent);
            if let Ok(entry) = self.edges.find_entry(hash, |e| {
                e.parent == parent && e.glob == glob && *e.label == *text.as_bytes()
            }) {
                entry.remove();
            }
            if let LabelPattern::Glob(g) = label {
                let parent_node = &mut self.nodes[parent as usize];
                if g.is_star() {
                    parent_node.star = NONE;
                } else {
                    parent_node.globs.remove(child);
                }
            }
            self.nodes[child as usize] = Node::new();
            self.free_nodes.push(child);
        }
    }

    /// Calls `f` for every pattern in the trie that matches the normalised name `fqdn`.
    fn walk(&self, fqdn: &str, mut f: impl FnMut(SelectorId)) {
        if self.nodes[ROOT as usize].refs == 0 {
            return;
        }
        let body = fqdn.strip_suffix('.').unwrap_or(fqdn);
        let mut remaining = if body.is_empty() {
            0
        } else {
            body.bytes().filter(|&b| b == b'.').count() + 1
        };
        // `**.` wants every label left of where it stands to be one of `[-a-zA-Z0-9_]+`:
        // count how many leading labels are.
        let valid_leading = if self.subdomain_patterns > 0 && remaining > 0 {
            body.split('.')
                .take_while(|l| !l.is_empty() && is_label_text(l))
                .count()
        } else {
            0
        };
        let mut current = Frontier::new();
        let mut next = Frontier::new();
        current.push(ROOT);
        if remaining > 0 {
            for label in body.rsplit('.') {
                if remaining <= valid_leading {
                    for &node in &current {
                        self.nodes[node as usize]
                            .subdomains
                            .iter()
                            .copied()
                            .for_each(&mut f);
                    }
                }
                let wild = is_label_text(label);
                let label_hash = self.label_hash(label);
                next.clear();
                for &node in &current {
                    if let Some(child) = self.find_edge_hashed(node, label, label_hash, false) {
                        next.push(child);
                    }
                    if wild {
                        let n = &self.nodes[node as usize];
                        if n.star != NONE {
                            next.push(n.star);
                        }
                        if !n.globs.is_empty() {
                            n.globs.for_each_match(label, |child| next.push(child));
                        }
                    }
                }
                std::mem::swap(&mut current, &mut next);
                if current.is_empty() {
                    return;
                }
                remaining -= 1;
            }
        }
        for &node in &current {
            self.nodes[node as usize]
                .terminal
                .iter()
                .copied()
                .for_each(&mut f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> FqdnSelector {
        FqdnSelector::match_pattern(p).unwrap()
    }

    /// A one-label glob has the empty key (the text after its dot), which the walk probes only
    /// while such an entry exists.
    #[test]
    fn a_single_label_glob_lives_under_the_empty_key_until_removed() {
        let mut set = SelectorSet::new();
        let deep = set.insert(pattern("**.example.com"));
        let glob = set.insert(pattern("a*."));
        assert_eq!(set.matches("ab."), vec![glob]);
        assert_eq!(set.matches("x.example.com"), vec![deep]);
        assert!(set.matches("ba.").is_empty());
        assert!(set.remove(glob));
        assert!(!set.suffixes.empty_key);
        assert!(set.matches("ab.").is_empty());
        let glob = set.insert(pattern("a*"));
        assert_eq!(set.matches("AB"), vec![glob]);
    }

    /// Long labels, upper case on either side of a hit and in a glob's label all match as the
    /// lower-cased name does, which each selector's own matcher decides.
    #[test]
    fn names_in_any_case_match_as_their_lower_case() {
        let texts = [
            "svc-0123456789.example.com",
            "*.example.com",
            "*.svc-0123456789.example.com",
            "**.example.com",
            "api-*.example.com",
            "*-prod.example.com",
            "a.b.longerthaneightbytes.example.com",
        ];
        let selectors: Vec<FqdnSelector> = texts
            .iter()
            .map(|t| {
                if t.contains('*') {
                    pattern(t)
                } else {
                    FqdnSelector::match_name(t).unwrap()
                }
            })
            .collect();
        let set: SelectorSet = selectors.iter().cloned().collect();
        assert!(set.match_all.is_empty());
        for name in [
            "SVC-0123456789.example.com.",
            "svc-0123456789.EXAMPLE.com.",
            "x.SVC-0123456789.example.com.",
            "API-eu.example.com.",
            "api-EU.Example.Com.",
            "db-PROD.example.com.",
            "A.b.LongerThanEightBytes.example.COM.",
            "a.B.longerthaneightbytes.example.com.",
            "Q.W.E.example.com.",
            "x.y.EXAMPLE.COM.",
        ] {
            let expected: Vec<SelectorId> = selectors
                .iter()
                .filter(|s| s.matches(name))
                .map(|s| set.id_of(s).unwrap())
                .collect();
            assert!(!expected.is_empty(), "{name}");
            let mut expected = expected;
            expected.sort_unstable();
            assert_eq!(set.matches(name), expected, "{name}");
            assert_eq!(set.matches(&name.to_ascii_lowercase()), expected, "{name}");
        }
    }

    /// `**.` wants every label left of its key to be non-empty label text; the walk checks that
    /// on each hit, right to left, and must fail every longer prefix after one bad label.
    #[test]
    fn subdomain_patterns_see_bad_labels_anywhere_to_their_left() {
        let set: SelectorSet = ["**.b.c", "**.c", "*.c"].into_iter().map(pattern).collect();
        let ids = |name: &str| {
            set.matches(name)
                .iter()
                .map(|id| id.index())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("a.b.c"), vec![0, 1]);
        assert_eq!(ids("x.a.b.c"), vec![0, 1]);
        assert_eq!(ids("b.c"), vec![1, 2]);
        assert_eq!(ids("a b.b.c"), Vec::<usize>::new());
        assert_eq!(ids(".b.c"), Vec::<usize>::new());
        assert_eq!(ids("a..b.c"), Vec::<usize>::new());
        assert_eq!(ids("a$.x.b.c"), Vec::<usize>::new());
        assert_eq!(ids("$.c"), Vec::<usize>::new());
        assert_eq!(ids(".c"), vec![2]);
    }
}
