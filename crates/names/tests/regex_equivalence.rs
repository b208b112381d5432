//! The selector set against Cilium's own semantics: each selector translated to an anchored
//! regular expression the way `matchpattern.ToAnchoredRegexp(matchpattern.Sanitize(p))` does,
//! then run on the name lower-cased and fully qualified, one regex per selector.

use fqdnpath_names::{FqdnSelector, SelectorId, SelectorSet, Validation};
use proptest::prelude::*;
use regex::Regex;

const LABEL_CHARS: &str = "[-a-zA-Z0-9_]";
/// `dnsWildcardREGroup`: one or more whole labels, each followed by a dot.
const SUBDOMAINS: &str = "([-a-zA-Z0-9_]+([.][-a-zA-Z0-9_]+){0,})[.]";
const ALL_STAR: &str = "(^([-a-zA-Z0-9_]+[.])+$)|(^[.]$)";

fn is_all_star(p: &str) -> bool {
    Regex::new(r"^[*]{1,}[.]?$").unwrap().is_match(p)
}

/// miekg/dns `Fqdn` + lower-case: a dot unless the name ends in an unescaped one.
fn fqdn(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let body = lower.strip_suffix('.');
    let escaped =
        body.is_some_and(|b| b.bytes().rev().take_while(|&c| c == b'\\').count() % 2 == 1);
    if body.is_some() && !escaped {
        lower
    } else {
        lower + "."
    }
}

/// `matchpattern.Sanitize` then `ToAnchoredRegexp`.
fn cilium_pattern_regex(pattern: &str) -> Regex {
    let sanitized = if is_all_star(pattern) {
        pattern.to_owned()
    } else {
        fqdn(pattern)
    };
    let p = sanitized.trim().to_lowercase();
    if is_all_star(&p) {
        return Regex::new(ALL_STAR).unwrap();
    }
    let escaped = p.replace('.', "[.]");
    let leading = Regex::new(r"^[*]{2,}\[\.\]").unwrap();
    let escaped = leading
        .replace(&escaped, SUBDOMAINS.replace('$', "$$"))
        .into_owned();
    let stars = Regex::new(r"[*]+").unwrap();
    let escaped = stars
        .replace_all(&escaped, format!("{LABEL_CHARS}*").as_str())
        .into_owned();
    Regex::new(&format!("^{escaped}$")).unwrap()
}

/// A `matchName` is a pattern without stars after `dns.FQDN`.
fn cilium_name_regex(name: &str) -> Regex {
    Regex::new(&format!("^{}$", fqdn(name).replace('.', "[.]"))).unwrap()
}

fn reference(selector: &(bool, String)) -> Regex {
    if selector.0 {
        cilium_pattern_regex(&selector.1)
    } else {
        cilium_name_regex(&selector.1)
    }
}

fn build(selector: &(bool, String)) -> Option<FqdnSelector> {
    if selector.0 {
        FqdnSelector::match_pattern_with(&selector.1, Validation::Agent).ok()
    } else {
        FqdnSelector::match_name_with(&selector.1, Validation::Agent).ok()
    }
}

/// Labels from a small alphabet so that names and patterns meet often; empty labels included.
fn label(chars: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(chars), 0..=max).prop_map(|v| v.concat())
}

const NAME_CHARS: &[&str] = &["a", "b", "B", "-", "_", "0", "ab", "a"];
const ODD_CHARS: &[&str] = &["a", "b", " ", "*", "\\", "é", "$"];
const PATTERN_CHARS: &[&str] = &["a", "b", "A", "-", "_", "0", "*", "*", "**", "ab"];

fn name() -> impl Strategy<Value = String> {
    let plain = prop::collection::vec(label(NAME_CHARS, 3), 0..=5);
    let odd = prop::collection::vec(label(ODD_CHARS, 2), 1..=3);
    (prop_oneof![4 => plain, 1 => odd], any::<bool>()).prop_map(|(labels, dot)| {
        let mut n = labels.join(".");
        if dot {
            n.push('.');
        }
        n
    })
}

fn selector() -> impl Strategy<Value = (bool, String)> {
    let labels = prop::collection::vec(label(PATTERN_CHARS, 3), 1..=4);
    let prefix = prop_oneof![4 => Just(""), 1 => Just("**."), 1 => Just("***."), 1 => Just("*.")];
    let all_star = prop::sample::select(&["*", "**", "*.", "**.", "***"][..]);
    let pattern = prop_oneof![
        8 => (prefix, labels, any::<bool>()).prop_map(|(pre, l, dot)| {
            let mut p = format!("{pre}{}", l.join("."));
            if dot { p.push('.'); }
            p
        }),
        1 => all_star.prop_map(str::to_owned),
    ];
    let name = prop::collection::vec(label(NAME_CHARS, 3), 1..=4).prop_map(|l| l.join("."));
    prop_oneof![3 => pattern.prop_map(|p| (true, p)), 1 => name.prop_map(|n| (false, n))]
}

fn expected(regexes: &[Regex], ids: &[Option<SelectorId>], name: &str) -> Vec<SelectorId> {
    let normal = fqdn(name);
    let mut out: Vec<SelectorId> = regexes
        .iter()
        .zip(ids)
        .filter_map(|(re, id)| id.filter(|_| re.is_match(&normal)))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// One selector: `FqdnSelector::matches` is Cilium's regex.
    #[test]
    fn one_selector_matches_like_ciliums_regex(sel in selector(), name in name()) {
        if let Some(s) = build(&sel) {
            prop_assert_eq!(s.matches(&name), reference(&sel).is_match(&fqdn(&name)),
                "selector {:?} name {:?} regex {}", sel, name, reference(&sel));
        }
    }

    /// A set: every matching selector, exactly once, for every name; then again after removals.
    #[test]
    fn selector_set_matches_like_one_regex_per_selector(
        selectors in prop::collection::vec(selector(), 1..24),
        names in prop::collection::vec(name(), 1..16),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let regexes: Vec<Regex> = selectors.iter().map(reference).collect();
        let mut set = SelectorSet::new();
        let mut ids: Vec<Option<SelectorId>> = selectors.iter().map(|s| build(s).map(|b| set.insert(b))).collect();
        for name in &names {
            prop_assert_eq!(set.matches(name), expected(&regexes, &ids, name), "name {:?} set {:?}", name, set);
        }
        for r in removals {
            let i = r.index(selectors.len());
            if let Some(id) = ids[i].take() {
                // Each position holds one reference: an equal selector elsewhere keeps it.
                let left = set.remove(id);
                prop_assert_eq!(left, !ids.contains(&Some(id)));
            }
        }
        for name in &names {
            prop_assert_eq!(set.matches(name), expected(&regexes, &ids, name), "after removals, name {:?}", name);
        }
    }
}

/// A label of `len` copies of `c` (long labels reach the glob index's unindexed path).
fn long_label() -> impl Strategy<Value = String> {
    (prop::sample::select(&["a", "b", "-"][..]), 0usize..90).prop_map(|(c, len)| c.repeat(len))
}

/// Long names and patterns: labels up to 90 bytes (DNS allows 63 on the wire, but a name's
/// text form may hold anything), names up to a few hundred bytes.
fn long_pair() -> impl Strategy<Value = ((bool, String), String)> {
    let labels = || prop::collection::vec(long_label(), 1..5);
    let star = prop::sample::select(&["", "*", "*a", "a*", "**."][..]);
    (star, labels(), labels(), any::<bool>()).prop_map(|(star, p, n, share)| {
        // Half the time the name reuses the pattern's labels, so long literals really meet.
        let name = if share {
            format!("{}.{}", n[0], p.join("."))
        } else {
            n.join(".")
        };
        let pattern = match star {
            "**." => format!("**.{}", p.join(".")),
            "" => p.join("."),
            s => format!("{}{}", s, p.join(".")),
        };
        ((true, pattern), name)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn long_names_and_labels_match_like_ciliums_regex(pairs in prop::collection::vec(long_pair(), 1..8)) {
        let mut set = SelectorSet::new();
        let selectors: Vec<(bool, String)> = pairs.iter().map(|(s, _)| s.clone()).collect();
        let regexes: Vec<Regex> = selectors.iter().map(reference).collect();
        let ids: Vec<Option<SelectorId>> = selectors.iter().map(|s| build(s).map(|b| set.insert(b))).collect();
        for (_, name) in &pairs {
            prop_assert_eq!(set.matches(name), expected(&regexes, &ids, name), "name {:?}", name);
        }
    }
}
