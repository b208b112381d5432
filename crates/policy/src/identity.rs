//! Security identities: numbers for label sets, numbered as Cilium numbers them.
//!
//! - Reserved identities have fixed numbers: `host` 1, `world` 2, `unmanaged` 3, `health` 4,
//!   `init` 5, `remote-node` 6, `kube-apiserver` 7, `ingress` 8, `world-ipv4` 9,
//!   `world-ipv6` 10 (0 is "unknown", and in a policy key it means "any identity").
//! - Endpoint (pod) identities are cluster-global, allocated from 256 up.
//! - Identities of IPs outside the cluster (`cidr:` and `fqdn:` labels) are node-local, in the
//!   local scope: `1 << 24 | n`, from `n = 1`.
//!
//! One identity per distinct label set: since Cilium 1.16 every IP learned for the same set of
//! `fqdn:` selectors shares one identity, instead of one identity per IP.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::labels::{Label, Labels, SOURCE_CIDR, SOURCE_FQDN, SOURCE_RESERVED};

/// A numeric security identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Identity(pub u32);

/// Declares the reserved identities: a constant of [`Identity`] each, and [`RESERVED`], the
/// table of their names.
macro_rules! reserved_identities {
    ($( $(#[doc = $doc:literal])* $constant:ident = $number:literal => $name:literal, )+) => {
        impl Identity {
            $(
                #[doc = concat!("`reserved:", $name, "`.")]
                $(#[doc = $doc])*
                pub const $constant: Self = Self($number);
            )+
        }

        /// The reserved identities and their names.
        pub const RESERVED: &[(Identity, &str)] = &[$((Identity::$constant, $name)),+];
    };
}

reserved_identities! {
    HOST = 1 => "host",
    /// Everything outside the cluster not otherwise known (an ipcache miss).
    WORLD = 2 => "world",
    UNMANAGED = 3 => "unmanaged",
    HEALTH = 4 => "health",
    INIT = 5 => "init",
    REMOTE_NODE = 6 => "remote-node",
    KUBE_APISERVER = 7 => "kube-apiserver",
    INGRESS = 8 => "ingress",
    WORLD_IPV4 = 9 => "world-ipv4",
    WORLD_IPV6 = 10 => "world-ipv6",
}

impl Identity {
    /// 0: unknown; in a policy-map key, "any identity".
    pub const ANY: Self = Self(0);
    /// The first cluster-global identity allocated to endpoints.
    pub const MIN_GLOBAL: Self = Self(256);
    /// The scope bit of node-local identities (CIDR and FQDN).
    pub const LOCAL_SCOPE: u32 = 1 << 24;

    /// Whether this is one of the reserved identities (1 to 255).
    pub fn is_reserved(self) -> bool {
        (1..256).contains(&self.0)
    }

    /// Whether this is a node-local identity (CIDR or FQDN).
    pub fn is_local(self) -> bool {
        self.0 & 0xFF00_0000 == Self::LOCAL_SCOPE
    }

    /// The reserved name of a reserved identity (`host`, `world`, ...).
    pub fn reserved_name(self) -> Option<&'static str> {
        RESERVED.iter().find(|(id, _)| *id == self).map(|(_, n)| *n)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The labels of a reserved identity (`reserved:<name>`).
pub fn reserved_labels(identity: Identity) -> Option<Labels> {
    identity.reserved_name().map(|name| {
        [Label::new(SOURCE_RESERVED, name, "")]
            .into_iter()
            .collect()
    })
}

/// The reserved identity whose labels `labels` are (exactly `reserved:<name>`), if any. Cheaper
/// than comparing with each [`reserved_labels`] set: it builds none.
pub fn reserved_identity(labels: &Labels) -> Option<Identity> {
    let mut all = labels.iter();
    let (Some(label), None) = (all.next(), all.next()) else {
        return None;
    };
    if label.source != SOURCE_RESERVED || !label.value.is_empty() {
        return None;
    }
    RESERVED
        .iter()
        .find(|(_, name)| *name == label.key)
        .map(|(id, _)| *id)
}

/// The labels of IPs learned for names matched by `selectors` (each `matchName`/`matchPattern`
/// value in normal form): one `fqdn:<selector>` label each, plus `reserved:world`.
pub fn fqdn_labels<'a>(selectors: impl IntoIterator<Item = &'a str>) -> Labels {
    let mut labels: Labels = selectors
        .into_iter()
        .map(|s| Label::new(SOURCE_FQDN, s, ""))
        .collect();
    labels.insert(Label::new(SOURCE_RESERVED, "world", ""));
    labels
}

/// Why an identity could not be allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Every identity of the scope is in use.
    #[error("no free {scope} identity is left")]
    Exhausted {
        /// `global` or `local`.
        scope: &'static str,
    },
}

#[derive(Clone, Debug)]
struct Allocated {
    identity: Identity,
    refs: u32,
}

/// Hands out one identity per distinct label set, with reference counts.
///
/// Label sets of reserved identities get the reserved number; sets made only of `cidr:`,
/// `fqdn:` and `reserved:world` labels get local identities; all others global ones. A
/// released number is reused only after every higher number has been handed out once, so
/// numbers stay stable in short runs (and outputs deterministic).
#[derive(Clone, Debug, Default)]
pub struct IdentityAllocator {
    by_labels: HashMap<Labels, Allocated>,
    by_identity: BTreeMap<Identity, Labels>,
    global: Numbers,
    local: Numbers,
}

/// The highest global identity number (16 bits in Cilium's cluster-ID layout).
const MAX_GLOBAL: u32 = 0xFFFF;
/// The highest local identity number (24 bits).
const MAX_LOCAL: u32 = 0x00FF_FFFF;

/// The numbers of one scope: handed out in order up to the scope's highest, then the
/// released ones.
#[derive(Clone, Debug, Default)]
struct Numbers {
    /// The next number never handed out.
    next: u32,
    /// The released numbers; the last is reused first.
    free: Vec<u32>,
}

impl Numbers {
    /// Takes the next number, at most `max`; `scope` names the scope when none is left.
    fn take(&mut self, max: u32, scope: &'static str) -> Result<u32, IdentityError> {
        if self.next <= max {
            self.next += 1;
            Ok(self.next - 1)
        } else {
            self.free.pop().ok_or(IdentityError::Exhausted { scope })
        }
    }
}

impl IdentityAllocator {
    /// An allocator with no identity handed out.
    pub fn new() -> Self {
        Self {
            global: Numbers {
                next: Identity::MIN_GLOBAL.0,
                free: Vec::new(),
            },
            local: Numbers {
                next: 1,
                free: Vec::new(),
            },
            ..Self::default()
        }
    }

    /// Whether `labels` get a node-local identity.
    pub fn is_local_set(labels: &Labels) -> bool {
        !labels.is_empty()
            && labels.iter().all(|l| {
                l.source == SOURCE_CIDR
                    || l.source == SOURCE_FQDN
                    || (l.source == SOURCE_RESERVED && l.key == "world")
            })
            && labels.iter().any(|l| l.source != SOURCE_RESERVED)
    }

    /// The identity of `labels`, allocated if new; each call takes one reference.
    pub fn allocate(&mut self, labels: &Labels) -> Result<Identity, IdentityError> {
        if let Some(reserved) = reserved_identity(labels) {
            return Ok(reserved);
        }
        if let Some(a) = self.by_labels.get_mut(labels) {
            a.refs += 1;
            return Ok(a.identity);
        }
        let identity = if Self::is_local_set(labels) {
            Identity(Identity::LOCAL_SCOPE | self.local.take(MAX_LOCAL, "local")?)
        } else {
            Identity(self.global.take(MAX_GLOBAL, "global")?)
        };
        self.by_labels
            .insert(labels.clone(), Allocated { identity, refs: 1 });
        self.by_identity.insert(identity, labels.clone());
        Ok(identity)
    }

    /// Drops one reference; the identity is freed with its last. Returns whether it was freed.
    pub fn release(&mut self, identity: Identity) -> bool {
        let Some(labels) = self.by_identity.get(&identity) else {
            return false;
        };
        let Some(a) = self.by_labels.get_mut(labels) else {
            return false;
        };
        a.refs -= 1;
        if a.refs > 0 {
            return false;
        }
        let labels = labels.clone();
        self.by_labels.remove(&labels);
        self.by_identity.remove(&identity);
        if identity.is_local() {
            self.local.free.insert(0, identity.0 & MAX_LOCAL);
        } else {
            self.global.free.insert(0, identity.0);
        }
        true
    }

    /// The identity already allocated to `labels` (or reserved for them), if any.
    pub fn lookup(&self, labels: &Labels) -> Option<Identity> {
        reserved_identity(labels).or_else(|| self.by_labels.get(labels).map(|a| a.identity))
    }

    /// The labels of `identity` (reserved ones included).
    pub fn labels(&self, identity: Identity) -> Option<Labels> {
        reserved_labels(identity).or_else(|| self.by_identity.get(&identity).cloned())
    }

    /// Every allocated (non-reserved) identity with its labels, in identity order.
    pub fn iter(&self) -> impl Iterator<Item = (Identity, &Labels)> {
        self.by_identity.iter().map(|(id, l)| (*id, l))
    }
}
