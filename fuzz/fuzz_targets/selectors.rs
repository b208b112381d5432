//! Selector compilation and matching: the one-pass `SelectorSet` must return exactly the
//! selectors whose own matcher (held to Cilium's regex by the property tests) accepts the
//! name, before and after removals; invalid selectors are typed errors, never panics.
#![no_main]

use arbitrary::Arbitrary;
use fqdnpath_names::{FqdnSelector, SelectorSet, Validation};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    selectors: Vec<(bool, String)>,
    names: Vec<String>,
    remove: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut set = SelectorSet::new();
    let mut held = Vec::new();
    for (pattern, text) in input.selectors.iter().take(32) {
        let selector = if *pattern {
            FqdnSelector::match_pattern_with(text, Validation::Agent)
        } else {
            FqdnSelector::match_name_with(text, Validation::Agent)
        };
        if let Ok(s) = selector {
            held.push((set.insert(s.clone()), s));
        }
    }
    let check = |set: &SelectorSet, held: &[(fqdnpath_names::SelectorId, FqdnSelector)]| {
        for name in input.names.iter().take(8) {
            let mut want: Vec<_> = held
                .iter()
                .filter(|(_, s)| s.matches(name))
                .map(|(id, _)| *id)
                .collect();
            want.sort_unstable();
            want.dedup();
            assert_eq!(set.matches(name), want, "{name:?}");
        }
    };
    check(&set, &held);
    for r in input.remove.iter().take(8) {
        if held.is_empty() {
            break;
        }
        let (id, _) = held.remove(usize::from(*r) % held.len());
        set.remove(id);
    }
    check(&set, &held);
});
