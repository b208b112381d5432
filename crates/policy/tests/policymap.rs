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

/// Found by the `policymap` fuzz target (crash-cf607cd9): for a packet of protocol 0, the
/// probe of the any-port length builds the very key of the L3-only entry. The match type is
/// the key's (`L3_ONLY`), not the probe's (`L3_PROTO`).
#[test]
fn a_protocol_0_packet_on_an_l3_only_key_matches_l3_only() {
    use fqdnpath_policy::policymap::{MatchType, PolicyAction, PolicyMap, PolicyVerdict};
    let mut map = PolicyMap::new();
    let l3 = PolicyKey::l3(Identity(256));
    map.insert(l3, PolicyAction::Allow);
    // Another identity's any-port key puts the any-port length (8) in use.
    let tcp_any_port = PolicyKey {
        identity: Identity(300),
        proto: PROTO_TCP,
        port: 0,
        port_prefix_len: 0,
    };
    map.insert(tcp_any_port, PolicyAction::Allow);
    for (proto, match_type) in [(0, MatchType::L3Only), (PROTO_TCP, MatchType::L3Only)] {
        assert_eq!(
            map.lookup(Identity(256), proto, 203),
            PolicyVerdict::Allowed {
                key: l3,
                match_type
            },
            "protocol {proto}"
        );
    }
    assert_eq!(
        map.lookup(Identity(300), PROTO_TCP, 203),
        PolicyVerdict::Allowed {
            key: tcp_any_port,
            match_type: MatchType::L3Proto
        }
    );
}
