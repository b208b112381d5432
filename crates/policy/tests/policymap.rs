//! Policy keys built by hand: the fields are public, so shapes the compiler never makes must
//! not panic.

use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{PROTO_TCP, PolicyKey};

#[test]
fn a_port_prefix_longer_than_the_port_counts_as_the_whole_port() {
    let key = PolicyKey {
        identity: Identity(256),
        proto: PROTO_TCP,
        port: 443,
        port_prefix_len: 250,
    };
    assert_eq!(key.lpm_prefix_len(), 24);
    assert!(key.covers(PROTO_TCP, 443));
    assert!(!key.covers(PROTO_TCP, 444));
    let exact = PolicyKey {
        port_prefix_len: 16,
        ..key
    };
    assert!(exact.covers_key(&key));
}

#[test]
fn codes_round_trip_as_cilium_numbers_them() {
    use fqdnpath_policy::policymap::{DropReason, MatchType};
    for m in MatchType::ALL {
        assert_eq!(MatchType::from_code(m.code()), Some(m));
    }
    assert_eq!(MatchType::from_code(2), Some(MatchType::L3L4));
    assert_eq!(MatchType::from_code(0), None);
    assert_eq!(MatchType::from_code(7), None);
    for r in DropReason::ALL {
        assert_eq!(DropReason::from_code(r.code()), Some(r));
    }
    assert_eq!(DropReason::from_code(181), Some(DropReason::PolicyDeny));
    assert_eq!(DropReason::from_code(0), None);
}
