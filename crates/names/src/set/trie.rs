//! The trie over reversed labels, for the patterns the suffix table cannot key (a wildcard in a
//! label after the first, or `**.` before a wildcard label), and the glob index its nodes and
//! the suffix table's entries use to find the globs a label matches.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::{HashMap, HashTable};
use smallvec::SmallVec;

use super::{NONE, SelectorId};
use crate::selector::{Glob, LabelPattern, is_label_text};

/// Fixed hashing seed: the structure must behave the same on every run (the keys are selectors,
/// which come from policy, not from the network).
const SEED: u64 = 0x6671_646e_7061_7468;

/// Labels longer than this are not indexed by prefix or suffix length (a `u64` bit mask).
const MAX_INDEXED_AFFIX: usize = 63;

const ROOT: u32 = 0;

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
pub(super) struct GlobIndex {
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
    pub(super) fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    pub(super) fn add(&mut self, glob: Glob, child: u32) {
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

    pub(super) fn remove(&mut self, child: u32) {
        self.globs.retain(|&(_, c)| c != child);
        let globs = std::mem::take(&mut self.globs);
        *self = Self::default();
        for (glob, child) in globs {
            self.add(glob, child);
        }
    }

    /// Calls `f` with the child of every glob that matches `label` (all label bytes).
    pub(super) fn for_each_match(&self, label: &str, mut f: impl FnMut(u32)) {
        let mut check = |candidates: &[u32]| {
            for &at in candidates {
                let (glob, child) = &self.globs[at as usize];
                if glob.matches_label_text(label) {
                    f(*child);
                }
            }
        };
        for n in lengths_up_to(self.prefix_lens, label.len()) {
            if let Some(candidates) = self.by_prefix.get(&label[..n]) {
                check(candidates);
            }
        }
        for n in lengths_up_to(self.suffix_lens, label.len()) {
            if let Some(candidates) = self.by_suffix.get(&label[label.len() - n..]) {
                check(candidates);
            }
        }
        check(&self.scan);
    }
}

/// The lengths in `lens` (bit `n` set: length `n`), shortest first, up to `max`: the
/// iteration ends at the first longer one.
#[inline]
fn lengths_up_to(mut lens: u64, max: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if lens == 0 {
            return None;
        }
        let n = lens.trailing_zeros() as usize;
        lens &= lens - 1;
        (n <= max).then_some(n)
    })
}

/// The trie over reversed labels.
pub(super) struct Trie {
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

    pub(super) fn insert(&mut self, subdomains: bool, labels: &[LabelPattern], id: SelectorId) {
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

    pub(super) fn remove(&mut self, subdomains: bool, labels: &[LabelPattern], id: SelectorId) {
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
    pub(super) fn walk(&self, fqdn: &str, mut f: impl FnMut(SelectorId)) {
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
