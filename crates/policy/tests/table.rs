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

/// The key shapes of the per-packet tables: addresses in a row (learned IPs, a pod's flows to
/// one service's backends), one word fixed and the other counting. Each spreads like a random
/// hash (about 1.2 to 1.6 slots read per lookup in a table a quarter to half full, bounded at
/// 1.7 here); the one-multiply hash of 128-bit keys read 4.2 to 5.2 for three of them.
#[test]
fn structured_keys_spread_like_random_ones() {
    const BOUND: f64 = 1.7;
    fn spread<K: fqdnpath_policy::table::FlatKey>(keys: impl Iterator<Item = K>) -> f64 {
        let mut table = FlatTable::new();
        for k in keys {
            table.insert(k, ());
        }
        table.mean_probe_length()
    }
    // Conntrack's second word: a marker bit, the ports and TCP.
    fn flow(sport: u16) -> u128 {
        1 << 63 | u128::from(sport) << 24 | 443 << 8 | 6
    }
    for n in [1_000u64, 4_096, 100_000] {
        let shapes: [(&str, f64); 6] = [
            (
                "IPv4 in a row",
                spread((0..n).map(|i| 0x6400_0000 | u32::try_from(i).unwrap())),
            ),
            ("u64 in a row", spread((0..n).map(|i| i << 8))),
            (
                "IPv6 in a row",
                spread((0..n).map(|i| 0x2001_0db8_u128 << 96 | u128::from(i))),
            ),
            (
                "IPv6 /64s in a row",
                spread((0..n).map(|i| u128::from(i) << 64)),
            ),
            (
                "flows by destination",
                spread(
                    (0..n)
                        .map(|i| (0x0a00_0001_6400_0000_u128 | u128::from(i)) << 64 | flow(40_000)),
                ),
            ),
            (
                "flows by source port",
                spread((0..n).map(|i| {
                    // Past 64k ports, the next destination.
                    let (dst, port) = (
                        u128::from(i / 64_000),
                        u16::try_from(1024 + i % 64_000).unwrap(),
                    );
                    (0x0a00_0001_6400_0001_u128 + dst) << 64 | flow(port)
                })),
            ),
        ];
        for (shape, mean) in shapes {
            assert!(
                (1.0..=BOUND).contains(&mean),
                "{shape}, {n} keys: {mean:.3} slots per lookup"
            );
        }
    }
}
