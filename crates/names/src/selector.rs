//! `matchName` and `matchPattern`: validation, normal form, and matching one selector.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::name::{self, normalize};

/// The longest selector Cilium's CRD accepts (`+kubebuilder:validation:MaxLength=255`).
pub const MAX_SELECTOR_LEN: usize = 255;

/// Which field of an `FQDNSelector` a selector came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SelectorField {
    /// `matchName`: a literal name.
    #[serde(rename = "matchName")]
    MatchName,
    /// `matchPattern`: a name with `*` wildcards.
    #[serde(rename = "matchPattern")]
    MatchPattern,
}

impl fmt::Display for SelectorField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MatchName => "matchName",
            Self::MatchPattern => "matchPattern",
        })
    }
}

/// Why a selector was rejected. Every variant names the selector as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectorError {
    /// The selector is the empty string.
    #[error("{field} is empty")]
    Empty {
        /// The field that was empty.
        field: SelectorField,
    },
    /// The selector is longer than [`MAX_SELECTOR_LEN`] bytes.
    #[error("{field} {selector:?} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// The field of the selector.
        field: SelectorField,
        /// The selector as written.
        selector: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The selector holds a character outside `[-a-zA-Z0-9_.]` (plus `*` in a pattern).
    #[error(
        "{field} {selector:?} has the character {character:?} at byte {position}; only letters, digits, '-', '_', '.'{star} are allowed",
        star = if *field == SelectorField::MatchPattern { " and '*'" } else { "" }
    )]
    InvalidCharacter {
        /// The field of the selector.
        field: SelectorField,
        /// The selector as written.
        selector: String,
        /// The first offending character.
        character: char,
        /// Its byte offset in the selector.
        position: usize,
    },
    /// A dot with no label before it (`.a.com`, `a..com`, `.`): the CRD schema rejects it.
    #[error("{field} {selector:?} has an empty label before the dot at byte {position}")]
    EmptyLabel {
        /// The field of the selector.
        field: SelectorField,
        /// The selector as written.
        selector: String,
        /// The byte offset of the dot.
        position: usize,
    },
    /// An `FQDNSelector` in `toFQDNs` set both `matchName` and `matchPattern`.
    #[error(
        "only one of matchName ({match_name:?}) or matchPattern ({match_pattern:?}) may be set"
    )]
    BothSet {
        /// The `matchName` value.
        match_name: String,
        /// The `matchPattern` value.
        match_pattern: String,
    },
    /// An `FQDNSelector` in `toFQDNs` set neither field.
    #[error("one of matchName or matchPattern must be set")]
    NeitherSet,
}

/// How strictly selectors are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Validation {
    /// What the Kubernetes API server enforces with Cilium's CRD schema, plus the agent's own
    /// checks: at most 255 bytes, only `[-a-zA-Z0-9_.]` (and `*` in a pattern), and no empty
    /// label (`^([-a-zA-Z0-9_]+[.]?)+$`). Manifests are checked this way.
    #[default]
    Crd,
    /// Only the agent's checks (`FQDNSelector.sanitize`, `matchpattern.Validate`): the
    /// character set, and 255 bytes for a pattern. Empty labels pass. For policies that reach
    /// the agent without the API server (its REST API, restored state).
    Agent,
}

fn validate(field: SelectorField, text: &str, validation: Validation) -> Result<(), SelectorError> {
    if text.is_empty() {
        return Err(SelectorError::Empty { field });
    }
    let limited = validation == Validation::Crd || field == SelectorField::MatchPattern;
    if limited && text.len() > MAX_SELECTOR_LEN {
        return Err(SelectorError::TooLong {
            field,
            selector: text.to_owned(),
            len: text.len(),
            max: MAX_SELECTOR_LEN,
        });
    }
    let allow_star = field == SelectorField::MatchPattern;
    if let Some((position, character)) = text
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii() && is_selector_byte(c as u8, allow_star)))
    {
        return Err(SelectorError::InvalidCharacter {
            field,
            selector: text.to_owned(),
            character,
            position,
        });
    }
    if validation == Validation::Crd {
        // `^([-a-zA-Z0-9_*]+[.]?)+$`: a dot only after a non-empty label.
        let mut label_len = 0;
        for (position, b) in text.bytes().enumerate() {
            if b == b'.' {
                if label_len == 0 {
                    return Err(SelectorError::EmptyLabel {
                        field,
                        selector: text.to_owned(),
                        position,
                    });
                }
                label_len = 0;
            } else {
                label_len += 1;
            }
        }
    }
    Ok(())
}

fn is_selector_byte(b: u8, allow_star: bool) -> bool {
    is_label_byte(b) || b == b'.' || (allow_star && b == b'*')
}

/// Whether `b` is one of the characters a `*` may stand for: `[-a-zA-Z0-9_]`.
#[inline]
pub(crate) fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether every byte of `label` is one a `*` may stand for.
#[inline]
pub(crate) fn is_label_text(label: &str) -> bool {
    label.bytes().all(is_label_byte)
}

/// One label of a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum LabelPattern {
    /// A label without `*`: equal text only.
    Literal(Box<str>),
    /// A label with at least one `*`.
    Glob(Glob),
}

impl LabelPattern {
    /// The label as a trie edge: its text, and whether it is a glob.
    pub(crate) fn edge(&self) -> (&str, bool) {
        match self {
            Self::Literal(text) => (text, false),
            Self::Glob(glob) => (&glob.text, true),
        }
    }
}

/// A label with `*` wildcards, each standing for zero or more of `[-a-zA-Z0-9_]`.
///
/// `parts` are the literal pieces between the stars, so `a*b*c` is `["a", "b", "c"]` and `*` is
/// `["", ""]`; there are always at least two.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Glob {
    pub(crate) text: Box<str>,
    pub(crate) parts: Box<[Box<str>]>,
}

impl Glob {
    fn new(text: &str) -> Self {
        Self {
            text: text.into(),
            parts: text.split('*').map(Box::from).collect(),
        }
    }

    /// The literal text before the first `*`.
    pub(crate) fn prefix(&self) -> &str {
        &self.parts[0]
    }

    /// The literal text after the last `*`.
    pub(crate) fn suffix(&self) -> &str {
        &self.parts[self.parts.len() - 1]
    }

    /// Whether `label` matches. The caller has checked that `label` is all label bytes (the
    /// literal parts are, and a `*` stands only for them, so other labels never match).
    pub(crate) fn matches_label_text(&self, label: &str) -> bool {
        let (prefix, suffix) = (self.prefix(), self.suffix());
        if label.len() < prefix.len() + suffix.len()
            || !label.starts_with(prefix)
            || !label.ends_with(suffix)
        {
            return false;
        }
        // Each middle part at its leftmost place: with `*` free to absorb anything between
        // parts, the leftmost place never loses a match a later one would have.
        let mut rest = &label[prefix.len()..label.len() - suffix.len()];
        for part in &self.parts[1..self.parts.len() - 1] {
            match rest.find(&**part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    }

    /// Whether this glob is the single `*`.
    pub(crate) fn is_star(&self) -> bool {
        &*self.text == "*"
    }
}

/// The compiled form of a `matchPattern`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Compiled {
    /// One or more `*`, then at most one `.`: every name made of `[-a-zA-Z0-9_]+` labels, and
    /// the root.
    MatchAll,
    /// Labels matched one to one, left to right. With `subdomains` (a leading `**.`, or more
    /// stars), one or more whole labels of `[-a-zA-Z0-9_]+` must come before them.
    Labels {
        subdomains: bool,
        labels: Box<[LabelPattern]>,
    },
}

impl Compiled {
    fn new(sanitized: &str) -> Self {
        if is_match_all(sanitized) {
            return Self::MatchAll;
        }
        let mut labels: Vec<&str> = name::labels(sanitized).collect();
        let subdomains =
            labels.len() > 1 && labels[0].len() >= 2 && labels[0].bytes().all(|b| b == b'*');
        if subdomains {
            labels.remove(0);
        }
        let labels = labels
            .into_iter()
            .map(|label| {
                if label.contains('*') {
                    LabelPattern::Glob(Glob::new(&collapse_stars(label)))
                } else {
                    LabelPattern::Literal(label.into())
                }
            })
            .collect();
        Self::Labels { subdomains, labels }
    }

    fn matches(&self, fqdn: &str) -> bool {
        let (subdomains, patterns) = match self {
            Self::MatchAll => return name::labels(fqdn).all(|l| !l.is_empty() && is_label_text(l)),
            Self::Labels { subdomains, labels } => (*subdomains, labels),
        };
        let mut name_labels = name::labels(fqdn).rev();
        for pattern in patterns.iter().rev() {
            let Some(label) = name_labels.next() else {
                return false;
            };
            let ok = match pattern {
                LabelPattern::Literal(text) => **text == *label,
                LabelPattern::Glob(glob) => is_label_text(label) && glob.matches_label_text(label),
            };
            if !ok {
                return false;
            }
        }
        if subdomains {
            let mut any = false;
            for label in name_labels {
                if label.is_empty() || !is_label_text(label) {
                    return false;
                }
                any = true;
            }
            any
        } else {
            name_labels.next().is_none()
        }
    }
}

/// Whether a pattern is one Cilium treats as "match every name": `^[*]+[.]?$`.
pub(crate) fn is_match_all(pattern: &str) -> bool {
    let stars = pattern.strip_suffix('.').unwrap_or(pattern);
    !stars.is_empty() && stars.bytes().all(|b| b == b'*')
}

/// Replaces every run of `*` by a single `*` (a run means the same as one star).
fn collapse_stars(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut prev_star = false;
    for c in label.chars() {
        if !(c == '*' && prev_star) {
            out.push(c);
        }
        prev_star = c == '*';
    }
    out
}

/// A `matchPattern`, validated and in normal form. Two patterns are equal when their normal
/// forms are.
#[derive(Clone)]
pub struct Pattern {
    source: Box<str>,
    compiled: Compiled,
}

impl Pattern {
    /// Validates (as the CRD does, [`Validation::Crd`]) and normalises a `matchPattern` value.
    pub fn new(pattern: &str) -> Result<Self, SelectorError> {
        Self::with_validation(pattern, Validation::Crd)
    }

    /// Validates and normalises a `matchPattern` value under the given [`Validation`].
    pub fn with_validation(pattern: &str, validation: Validation) -> Result<Self, SelectorError> {
        validate(SelectorField::MatchPattern, pattern, validation)?;
        let sanitized = sanitize_pattern(pattern);
        if sanitized.len() > MAX_SELECTOR_LEN {
            // Cilium validates the fully qualified form too (`Validate(Sanitize(p))`), so a
            // 255-byte pattern without its trailing dot is one byte too long.
            return Err(SelectorError::TooLong {
                field: SelectorField::MatchPattern,
                selector: pattern.to_owned(),
                len: sanitized.len(),
                max: MAX_SELECTOR_LEN,
            });
        }
        let compiled = Compiled::new(&sanitized);
        Ok(Self {
            source: sanitized.into(),
            compiled,
        })
    }

    /// The pattern in normal form: lower-case and fully qualified, except an all-star pattern
    /// (`*`, `**.`), which Cilium keeps as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern is all stars (`^[*]+[.]?$`). In `toFQDNs` it selects every name made
    /// of `[-a-zA-Z0-9_]` labels (and the root); in a DNS rule (`rules.dns`) Cilium's proxy lets
    /// it allow any query name at all.
    pub fn is_match_all(&self) -> bool {
        self.compiled == Compiled::MatchAll
    }

    /// Whether the pattern matches `name` (normalised first).
    pub fn matches(&self, name: &str) -> bool {
        self.compiled.matches(&normalize(name))
    }

    pub(crate) fn compiled(&self) -> &Compiled {
        &self.compiled
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl std::hash::Hash for Pattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.source.hash(state);
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.source, f)
    }
}

/// Cilium's `matchpattern.Sanitize`: lower-case, fully qualified, except all-star patterns.
fn sanitize_pattern(pattern: &str) -> String {
    if is_match_all(pattern) {
        return pattern.to_owned();
    }
    normalize(pattern).into_owned()
}

/// One entry of a `toFQDNs` list or of a `rules.dns` list: a `matchName` or a `matchPattern`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum FqdnSelector {
    /// `matchName`: the name, normalised (lower-case, trailing dot).
    MatchName(name::Fqdn),
    /// `matchPattern`: the pattern, normalised.
    MatchPattern(Pattern),
}

impl FqdnSelector {
    /// A `matchName` selector, validated as the CRD does ([`Validation::Crd`]).
    pub fn match_name(name: &str) -> Result<Self, SelectorError> {
        Self::match_name_with(name, Validation::Crd)
    }

    /// A `matchName` selector under the given [`Validation`].
    pub fn match_name_with(name: &str, validation: Validation) -> Result<Self, SelectorError> {
        validate(SelectorField::MatchName, name, validation)?;
        Ok(Self::MatchName(name::Fqdn::new(name)))
    }

    /// A `matchPattern` selector, validated as the CRD does ([`Validation::Crd`]).
    pub fn match_pattern(pattern: &str) -> Result<Self, SelectorError> {
        Pattern::new(pattern).map(Self::MatchPattern)
    }

    /// A `matchPattern` selector under the given [`Validation`].
    pub fn match_pattern_with(
        pattern: &str,
        validation: Validation,
    ) -> Result<Self, SelectorError> {
        Pattern::with_validation(pattern, validation).map(Self::MatchPattern)
    }

    /// The selector of a `toFQDNs` entry, which sets exactly one of the two fields. An empty
    /// string counts as unset, as in Cilium.
    pub fn from_fields(
        match_name: Option<&str>,
        match_pattern: Option<&str>,
    ) -> Result<Self, SelectorError> {
        let match_name = match_name.filter(|s| !s.is_empty());
        let match_pattern = match_pattern.filter(|s| !s.is_empty());
        match (match_name, match_pattern) {
            (Some(n), Some(p)) => Err(SelectorError::BothSet {
                match_name: n.to_owned(),
                match_pattern: p.to_owned(),
            }),
            (Some(n), None) => Self::match_name(n),
            (None, Some(p)) => Self::match_pattern(p),
            (None, None) => Err(SelectorError::NeitherSet),
        }
    }

    /// Which field this selector sets.
    pub fn field(&self) -> SelectorField {
        match self {
            Self::MatchName(_) => SelectorField::MatchName,
            Self::MatchPattern(_) => SelectorField::MatchPattern,
        }
    }

    /// The selector's value in normal form.
    pub fn value(&self) -> &str {
        match self {
            Self::MatchName(n) => n.as_str(),
            Self::MatchPattern(p) => p.as_str(),
        }
    }

    /// Whether the selector matches `name` (normalised first). This checks one selector; to
    /// match a name against many, use a [`SelectorSet`](crate::SelectorSet).
    pub fn matches(&self, name: &str) -> bool {
        let name = normalize(name);
        match self {
            Self::MatchName(n) => n.as_str() == name,
            Self::MatchPattern(p) => p.compiled.matches(&name),
        }
    }
}

impl fmt::Display for FqdnSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field(), self.value())
    }
}

impl fmt::Debug for FqdnSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The YAML/JSON shape of a selector: `{matchName: ...}` or `{matchPattern: ...}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectorFields {
    #[serde(rename = "matchName", default, skip_serializing_if = "Option::is_none")]
    match_name: Option<String>,
    #[serde(
        rename = "matchPattern",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    match_pattern: Option<String>,
}

impl Serialize for FqdnSelector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (match_name, match_pattern) = match self {
            Self::MatchName(n) => (Some(n.as_str().to_owned()), None),
            Self::MatchPattern(p) => (None, Some(p.as_str().to_owned())),
        };
        SelectorFields {
            match_name,
            match_pattern,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FqdnSelector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = SelectorFields::deserialize(deserializer)?;
        Self::from_fields(
            fields.match_name.as_deref(),
            fields.match_pattern.as_deref(),
        )
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
