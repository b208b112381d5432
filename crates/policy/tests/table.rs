//! The flat hash table against the standard library's map: any sequence of inserts, removals,
//! entries and retains leaves both with the same contents, and every key probes as it should.

use std::collections::HashMap;

use fqdnpath_policy::table::{Entry, FlatTable};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert(u32, u32),
    Remove(u32),
    Entry(u32, u32),
    Retain(u32),
    Clear,
}

/// Keys from a small range collide and cluster (long runs, wrap-around at the end of the
/// slots, backward shifts over several entries); wide keys spread.
fn op(keys: impl Strategy<Value = u32> + Clone) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (keys.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => keys.clone().prop_map(Op::Remove),
        2 => (keys, any::<u32>()).prop_map(|(k, v)| Op::Entry(k, v)),
        1 => (1u32..8).prop_map(Op::Retain),
        1 => Just(Op::Clear),
    ]
}

fn check(ops: &[Op], probes: &[u32]) -> Result<(), TestCaseError> {
    let mut table: FlatTable<u32, u32> = FlatTable::new();
    let mut model: HashMap<u32, u32> = HashMap::new();
    for op in ops {
        match *op {
            Op::Insert(k, v) => prop_assert_eq!(table.insert(k, v), model.insert(k, v)),
            Op::Remove(k) => prop_assert_eq!(table.remove(k), model.remove(&k)),
            Op::Entry(k, v) => match table.entry(k) {
                Entry::Occupied(old) => {
                    prop_assert_eq!(Some(&*old), model.get(&k));
                    *old = v;
                    model.insert(k, v);
                }
                Entry::Vacant(slot) => {
                    prop_assert!(!model.contains_key(&k));
                    prop_assert_eq!(*slot.insert(v), v);
                    model.insert(k, v);
                }
            },
            Op::Retain(m) => {
                table.retain(|k, _| k % m != 0);
                model.retain(|k, _| k % m != 0);
            }
            Op::Clear => {
                table.clear();
                model.clear();
            }
        }
        prop_assert_eq!(table.len(), model.len());
    }
    for k in probes.iter().chain(model.keys()) {
        prop_assert_eq!(table.get(*k), model.get(k));
    }
    let mut listed: Vec<(u32, u32)> = table.iter().map(|(k, v)| (*k, *v)).collect();
    let mut expected: Vec<(u32, u32)> = model.into_iter().collect();
    listed.sort_unstable();
    expected.sort_unstable();
    prop_assert_eq!(listed, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn equals_a_hash_map_on_clustered_keys(
        ops in prop::collection::vec(op(0u32..40), 0..200),
        probes in prop::collection::vec(0u32..40, 0..20),
    ) {
        check(&ops, &probes)?;
    }

    #[test]
    fn equals_a_hash_map_on_spread_keys(
        ops in prop::collection::vec(op(any::<u32>()), 0..200),
        probes in prop::collection::vec(any::<u32>(), 0..20),
    ) {
        check(&ops, &probes)?;
    }
}

#[test]
fn grows_past_many_keys_and_shrinks_back_to_empty() {
    let mut table = FlatTable::new();
    for k in 0..10_000u32 {
        assert_eq!(table.insert(k.wrapping_mul(2_654_435_761), k), None);
    }
    assert_eq!(table.len(), 10_000);
    for k in 0..10_000u32 {
        assert_eq!(table.get(k.wrapping_mul(2_654_435_761)), Some(&k));
    }
    for k in 0..10_000u32 {
        assert_eq!(table.remove(k.wrapping_mul(2_654_435_761)), Some(k));
    }
    assert!(table.is_empty());
    assert_eq!(table.iter().count(), 0);
}

#[test]
fn equality_ignores_layout() {
    let mut a = FlatTable::new();
    let mut b = FlatTable::new();
    for k in 0..100u32 {
        a.insert(k, k * 2);
    }
    for k in (0..100u32).rev() {
        b.insert(k, k * 2);
    }
    assert_eq!(a, b);
    b.insert(7, 0);
    assert_ne!(a, b);
}
