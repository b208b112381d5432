//! The LPM table against a naive scan.

use fqdnpath_datapath::lpm::{Address, LpmError, LpmTable};
use proptest::prelude::*;

#[test]
fn longest_prefix_wins_and_removal_falls_back() {
    let mut t: LpmTable<u32, &str> = LpmTable::new(10);
    t.insert(0x0A00_0000, 8, "10/8").unwrap();
    t.insert(0x0A01_0000, 16, "10.1/16").unwrap();
    t.insert(0x0A01_0203, 32, "host").unwrap();
    assert_eq!(t.lookup(0x0A01_0203), Some((32, &"host")));
    assert_eq!(t.lookup(0x0A01_0204), Some((16, &"10.1/16")));
    assert_eq!(t.lookup(0x0A02_0000), Some((8, &"10/8")));
    assert_eq!(t.lookup(0x0B00_0000), None);
    assert_eq!(t.remove(0x0A01_0000, 16), Some("10.1/16"));
    assert_eq!(t.lookup(0x0A01_0204), Some((8, &"10/8")));
    t.insert(0, 0, "default").unwrap();
    assert_eq!(t.lookup(0x0B00_0000), Some((0, &"default")));
}

#[test]
fn a_full_table_refuses_new_prefixes_but_takes_updates() {
    let mut t: LpmTable<u128, u32> = LpmTable::new(1);
    t.insert(1, 128, 1).unwrap();
    assert_eq!(t.insert(2, 128, 2), Err(LpmError::Full { max_entries: 1 }));
    assert_eq!(t.insert(1, 128, 3), Ok(Some(1)));
    assert_eq!(
        t.insert(1, 129, 3),
        Err(LpmError::BadLength {
            len: 129,
            bits: 128
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn lookups_equal_a_naive_scan(
        prefixes in prop::collection::vec((any::<u32>(), 0u8..=32), 0..60),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        probes in prop::collection::vec(any::<u32>(), 1..40),
    ) {
        let mut table = LpmTable::new(usize::MAX);
        let mut naive: Vec<(u32, u8, usize)> = Vec::new();
        for (i, (addr, len)) in prefixes.iter().enumerate() {
            table.insert(*addr, *len, i).unwrap();
            let masked = addr.mask(*len);
            naive.retain(|(a, l, _)| !(*a == masked && l == len));
            naive.push((masked, *len, i));
        }
        for r in removals {
            if naive.is_empty() { break; }
            let (a, l, v) = naive.remove(r.index(naive.len()));
            prop_assert_eq!(table.remove(a, l), Some(v));
        }
        prop_assert_eq!(table.len(), naive.len());
        // Probe random addresses and the prefixes themselves.
        let all = probes.iter().copied().chain(naive.iter().map(|(a, _, _)| *a));
        for probe in all {
            let want = naive.iter().filter(|(a, l, _)| probe.mask(*l) == *a).max_by_key(|(_, l, _)| *l).map(|(_, l, v)| (*l, *v));
            prop_assert_eq!(table.lookup(probe).map(|(l, v)| (l, *v)), want);
        }
    }
}
