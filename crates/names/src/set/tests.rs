//! Unit tests of the set's inner tables: the empty suffix key, case, and `**.` on bad labels.

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
