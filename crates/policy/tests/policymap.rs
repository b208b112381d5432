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
