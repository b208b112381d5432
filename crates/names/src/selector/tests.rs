//! Unit tests of one selector's validation, normal form, matching and serde form.

use super::*;

fn pattern(p: &str) -> FqdnSelector {
    FqdnSelector::match_pattern(p).unwrap()
}

#[test]
fn match_name_is_case_insensitive_and_fqdn() {
    let s = FqdnSelector::match_name("API.Example.com").unwrap();
    assert_eq!(s.value(), "api.example.com.");
    assert!(s.matches("api.example.com"));
    assert!(s.matches("api.EXAMPLE.com."));
    assert!(!s.matches("www.api.example.com"));
}

/// Asserts that the pattern `p` matches every name of `matching` and none of `others`.
fn assert_matches(p: &str, matching: &[&str], others: &[&str]) {
    let s = pattern(p);
    for name in matching {
        assert!(s.matches(name), "{p} should match {name}");
    }
    for name in others {
        assert!(!s.matches(name), "{p} should not match {name}");
    }
}

#[test]
fn star_matches_within_one_label_only() {
    assert_matches(
        "*.cilium.io",
        &["sub.cilium.io"],
        &["cilium.io", "a.b.cilium.io"],
    );
}

#[test]
fn star_may_match_nothing() {
    assert_matches(
        "*cilium.io",
        &["cilium.io", "awesomecilium.io"],
        &["www.cilium.io"],
    );
    assert_matches("sub*.cilium.io", &["sub.cilium.io"], &[]);
}

#[test]
fn star_stands_only_for_label_characters() {
    assert_matches(
        "*.cilium.io",
        &["a-b_0.cilium.io"],
        &["a b.cilium.io", "a\\.b.cilium.io"],
    );
}

#[test]
fn all_star_patterns_match_every_plain_name_and_the_root() {
    for p in ["*", "**", "*.", "**.", "***"] {
        // Cilium's all-star regex wants `[-a-zA-Z0-9_]+` labels.
        assert_matches(p, &["cilium.io", "a.b.c.d", "."], &["a b.io", "a..io"]);
    }
}

#[test]
fn leading_double_star_is_one_or_more_labels() {
    assert_matches(
        "**.cilium.io",
        &["a.cilium.io", "a.b.cilium.io"],
        &["cilium.io", "a..cilium.io"],
    );
    assert_matches("***.cilium.io", &["a.b.cilium.io"], &[]);
}

#[test]
fn double_star_elsewhere_is_a_single_star() {
    // `*` may stand for nothing, so the empty middle label matches too (as in Cilium).
    assert_matches("x.**.io", &["x.y.io", "x..io"], &["x.y.z.io"]);
    assert_matches("a**b.io", &["axxb.io"], &[]);
    assert_matches("**b.io", &["b.io"], &["a.b.io"]);
}

#[test]
fn invalid_character_names_the_selector_and_character() {
    let err = FqdnSelector::match_pattern("api.exa$mple.com").unwrap_err();
    assert_eq!(
        err,
        SelectorError::InvalidCharacter {
            field: SelectorField::MatchPattern,
            selector: "api.exa$mple.com".into(),
            character: '$',
            position: 7,
        }
    );
    let err = FqdnSelector::match_name("*.example.com").unwrap_err();
    assert_eq!(bad_character(&err), Some(('*', 0)));
    assert!(err.to_string().contains("*.example.com"));
    let err = FqdnSelector::match_name("bücher.de").unwrap_err();
    assert_eq!(bad_character(&err), Some(('ü', 1)));
}

/// The character and position an [`SelectorError::InvalidCharacter`] names.
fn bad_character(err: &SelectorError) -> Option<(char, usize)> {
    match err {
        SelectorError::InvalidCharacter {
            character,
            position,
            ..
        } => Some((*character, *position)),
        _ => None,
    }
}

#[test]
fn selectors_longer_than_255_bytes_are_rejected() {
    let long = format!("{}.com", "a".repeat(252));
    assert_eq!(long.len(), 256);
    assert!(matches!(
        FqdnSelector::match_name(&long),
        Err(SelectorError::TooLong {
            len: 256,
            max: 255,
            ..
        })
    ));
    let ok = "a".repeat(255);
    assert!(FqdnSelector::match_name(&ok).is_ok());
    // The pattern is checked in its fully qualified form too, as Cilium does.
    assert!(matches!(
        FqdnSelector::match_pattern(&ok),
        Err(SelectorError::TooLong { len: 256, .. })
    ));
    assert!(FqdnSelector::match_pattern(&format!("{}.", "a".repeat(254))).is_ok());
    // matchName has no length check in the agent itself, only in the CRD.
    assert!(FqdnSelector::match_name_with(&long, Validation::Agent).is_ok());
}

#[test]
fn empty_labels_are_rejected_by_the_crd_but_not_the_agent() {
    for bad in [".a.com", "a..com", ".", "*..com"] {
        let err = FqdnSelector::match_pattern(bad).unwrap_err();
        assert!(
            matches!(err, SelectorError::EmptyLabel { .. }),
            "{bad}: {err}"
        );
        assert!(FqdnSelector::match_pattern_with(bad, Validation::Agent).is_ok());
    }
    assert!(FqdnSelector::match_name("a.com.").is_ok());
}

#[test]
fn to_fqdns_sets_exactly_one_field() {
    assert!(matches!(
        FqdnSelector::from_fields(Some("a.com"), Some("*.a.com")),
        Err(SelectorError::BothSet { .. })
    ));
    assert_eq!(
        FqdnSelector::from_fields(None, Some("")),
        Err(SelectorError::NeitherSet)
    );
    assert_eq!(
        FqdnSelector::from_fields(Some("a.com"), Some("")).unwrap(),
        FqdnSelector::match_name("a.com").unwrap()
    );
}

#[test]
fn all_star_patterns_keep_their_written_form() {
    assert_eq!(pattern("*").value(), "*");
    assert_eq!(pattern("**.").value(), "**.");
    assert_eq!(pattern("*.Cilium.IO").value(), "*.cilium.io.");
}

#[test]
fn selectors_round_trip_through_json() {
    let s = pattern("*.cilium.io");
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, r#"{"matchPattern":"*.cilium.io."}"#);
    let back: FqdnSelector = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    let err = serde_json::from_str::<FqdnSelector>(r#"{"matchName":"a","matchPattern":"b"}"#)
        .unwrap_err();
    assert!(err.to_string().contains("only one of"));
}
