//! What a policy-map entry does: allow, deny, or redirect to the DNS proxy with the names it
//! lets through; and how two actions on one key merge.

use std::collections::BTreeSet;

use fqdnpath_names::FqdnSelector;

/// Which names the DNS proxy lets through on a redirected key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DnsAllow {
    /// Every name (a rule with no `rules.dns`, or an all-star pattern, covers the key).
    All,
    /// Names matching any of these (`matchName` / `matchPattern` of `rules.dns`).
    Selectors(BTreeSet<FqdnSelectorKey>),
}

impl DnsAllow {
    /// The union of two allowances.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        match (self, other) {
            (Self::All, _) | (_, Self::All) => Self::All,
            (Self::Selectors(mut a), Self::Selectors(b)) => {
                a.extend(b);
                Self::Selectors(a)
            }
        }
    }
}

/// A DNS-rule selector in a form that orders and hashes: (`matchName`?, normal form).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FqdnSelectorKey {
    /// True for `matchPattern`.
    pub pattern: bool,
    /// The normal form.
    pub value: String,
}

impl From<&FqdnSelector> for FqdnSelectorKey {
    fn from(s: &FqdnSelector) -> Self {
        Self {
            pattern: matches!(s, FqdnSelector::MatchPattern(_)),
            value: s.value().to_owned(),
        }
    }
}

/// What a key does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    /// Forward.
    Allow,
    /// Forward through the DNS proxy, which enforces the names.
    RedirectDns(DnsAllow),
    /// Drop (`POLICY_DENY`).
    Deny,
}

impl PolicyAction {
    /// Cilium's precedence: deny highest, then a proxy redirect, then a plain allow.
    #[inline]
    pub fn precedence(&self) -> u32 {
        match self {
            Self::Deny => u32::MAX,
            Self::RedirectDns(_) => 2,
            Self::Allow => 1,
        }
    }

    /// Merges two actions on the same key: deny wins; a redirect absorbs a plain allow (the
    /// proxy then lets every name through, as an L4-only rule on the port allows all DNS).
    #[must_use]
    pub fn merge(self, other: Self) -> Self {
        match (self, other) {
            (Self::Deny, _) | (_, Self::Deny) => Self::Deny,
            (Self::RedirectDns(a), Self::RedirectDns(b)) => Self::RedirectDns(a.union(b)),
            (Self::RedirectDns(_), Self::Allow) | (Self::Allow, Self::RedirectDns(_)) => {
                Self::RedirectDns(DnsAllow::All)
            }
            (Self::Allow, Self::Allow) => Self::Allow,
        }
    }
}
