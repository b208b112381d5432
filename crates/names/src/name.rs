//! DNS names in the form Cilium compares them: ASCII lower-case, fully qualified.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Returns `name` in the form Cilium compares names: ASCII lower-case, with a trailing dot.
///
/// This is `strings.ToLower(dns.FQDN(name))`: a dot is appended unless the name already ends
/// with an unescaped dot, so the empty name becomes the root `.` and `a\.` (an escaped dot)
/// becomes `a\..`. Borrows when the name is already normal, so the hot path does not allocate.
pub fn normalize(name: &str) -> Cow<'_, str> {
    let lower_ok = !crate::swar::any_upper(name.as_bytes());
    let fqdn_ok = is_fqdn(name);
    if lower_ok && fqdn_ok {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 1);
    out.push_str(name);
    out.make_ascii_lowercase();
    if !fqdn_ok {
        out.push('.');
    }
    Cow::Owned(out)
}

/// Whether `name` ends with a dot that is not escaped by a backslash (miekg/dns `IsFqdn`).
pub fn is_fqdn(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some((&b'.', rest)) = bytes.split_last() else {
        return false;
    };
    let backslashes = rest.iter().rev().take_while(|&&b| b == b'\\').count();
    backslashes % 2 == 0
}

/// The labels of a normalised name, left to right, without the root.
///
/// `www.cilium.io.` has the labels `www`, `cilium`, `io`; the root `.` has none; `a..b.` has an
/// empty label in the middle. Escaped dots are not special: matching works on the text form, as
/// Cilium's regular expressions do, and no selector character can match a backslash.
pub fn labels(fqdn: &str) -> impl DoubleEndedIterator<Item = &str> + Clone {
    let body = fqdn.strip_suffix('.').unwrap_or(fqdn);
    let body = if body.is_empty() { None } else { Some(body) };
    body.into_iter().flat_map(|b| b.split('.'))
}

/// A normalised DNS name (lower-case, trailing dot), cheap to clone.
///
/// Used as the key of the FQDN cache and in observations. Two spellings that Cilium considers
/// the same name (`GitHub.com` and `github.com.`) give equal `Fqdn`s.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fqdn(Arc<str>);

impl Fqdn {
    /// Normalises `name` (see [`normalize`]) into an `Fqdn`.
    pub fn new(name: &str) -> Self {
        Self(Arc::from(normalize(name).as_ref()))
    }

    /// Normalises an owned name in place (see [`normalize`]) into an `Fqdn`.
    pub fn from_string(mut name: String) -> Self {
        name.make_ascii_lowercase();
        if !is_fqdn(&name) {
            name.push('.');
        }
        Self(Arc::from(name))
    }

    /// The root name `.`.
    pub fn root() -> Self {
        Self(Arc::from("."))
    }

    /// The name as text, with its trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's labels, left to right, without the root (see [`labels`]).
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &str> + Clone {
        labels(&self.0)
    }

    /// Whether this is the root name `.`.
    pub fn is_root(&self) -> bool {
        &*self.0 == "."
    }
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Borrow<str> for Fqdn {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Fqdn {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Fqdn {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl Serialize for Fqdn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Fqdn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Ok(Self::new(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercased_and_fully_qualified() {
        assert_eq!(normalize("GitHub.COM"), "github.com.");
        assert_eq!(normalize("github.com."), "github.com.");
        assert!(matches!(normalize("github.com."), Cow::Borrowed(_)));
        assert_eq!(Fqdn::new("a.com"), Fqdn::new("A.com."));
    }

    #[test]
    fn empty_name_is_the_root() {
        assert_eq!(normalize(""), ".");
        assert!(Fqdn::new("").is_root());
        assert_eq!(labels(".").count(), 0);
    }

    #[test]
    fn escaped_trailing_dot_is_not_a_root_dot() {
        assert!(!is_fqdn("a\\."));
        assert!(is_fqdn("a\\\\."));
        assert_eq!(normalize("a\\."), "a\\..");
    }

    #[test]
    fn labels_keep_empty_labels() {
        assert_eq!(
            labels("www.cilium.io.").collect::<Vec<_>>(),
            ["www", "cilium", "io"]
        );
        assert_eq!(labels("a..b.").collect::<Vec<_>>(), ["a", "", "b"]);
        assert_eq!(labels(".a.").collect::<Vec<_>>(), ["", "a"]);
        assert_eq!(labels("a..").collect::<Vec<_>>(), ["a", ""]);
    }
}
