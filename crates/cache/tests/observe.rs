//! SEMANTICS.md section 1: learning IPs from DNS responses, on real wire data.

use std::net::IpAddr;

use fqdnpath_cache::hickory_proto::op::ResponseCode;
use fqdnpath_cache::hickory_proto::rr::rdata::{MX, TXT};
use fqdnpath_cache::hickory_proto::rr::{Name, RData, RecordType};
use fqdnpath_cache::observe::{name_text, observe_message};
use fqdnpath_cache::wire::ResponseBuilder;
use fqdnpath_cache::{
    DnsCache, EndpointCaches, EndpointId, FqdnConfig, ObserveError, Timestamp, observe,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn learn(wire: &[u8]) -> EndpointCaches {
    let mut caches = EndpointCaches::new(FqdnConfig::default());
    let obs = observe(wire).unwrap();
    caches.observe(EndpointId(1), Timestamp::from_secs(100), &obs);
    caches
}

fn cache(caches: &EndpointCaches) -> DnsCache {
    caches
        .endpoint(EndpointId(1))
        .map(|e| e.cache.clone())
        .unwrap_or_default()
}

#[test]
fn noerror_with_addresses_is_learned() {
    let wire = ResponseBuilder::new(1, "github.com", RecordType::A)
        .address("github.com", ip("140.82.112.3"), 60)
        .to_wire()
        .unwrap();
    let c = cache(&learn(&wire));
    assert_eq!(
        c.lookup("github.com.", Timestamp::from_secs(100)),
        [ip("140.82.112.3")]
    );
}

#[test]
fn nxdomain_servfail_refused_and_empty_noerror_change_nothing() {
    for rcode in [
        ResponseCode::NXDomain,
        ResponseCode::ServFail,
        ResponseCode::Refused,
    ] {
        // Even with an address in the answer, a non-NOERROR response teaches nothing.
        let wire = ResponseBuilder::new(1, "github.com", RecordType::A)
            .rcode(rcode)
            .address("github.com", ip("140.82.112.3"), 60)
            .to_wire()
            .unwrap();
        let obs = observe(&wire).unwrap();
        assert_eq!(obs.rcode, rcode);
        assert!(!obs.is_learnable());
        assert!(cache(&learn(&wire)).is_empty(), "{rcode:?}");
    }
    let nodata = ResponseBuilder::new(1, "github.com", RecordType::AAAA)
        .to_wire()
        .unwrap();
    assert!(cache(&learn(&nodata)).is_empty());
    let cname_only = ResponseBuilder::new(1, "www.github.com", RecordType::A)
        .cname("www.github.com", "github.com", 300)
        .to_wire()
        .unwrap();
    assert!(cache(&learn(&cname_only)).is_empty());
}

#[test]
fn name_is_the_question_name_lowercased_and_fully_qualified() {
    let wire = ResponseBuilder::new(1, "GitHub.COM", RecordType::A)
        .address("GitHub.COM", ip("140.82.112.3"), 60)
        .to_wire()
        .unwrap();
    let obs = observe(&wire).unwrap();
    assert_eq!(obs.qname.as_str(), "github.com.");
    assert_eq!(obs.qtype, RecordType::A);
    assert_eq!(cache(&learn(&wire)).names()[0].as_str(), "github.com.");
}

#[test]
fn addresses_behind_cnames_belong_to_the_question_name() {
    let wire = ResponseBuilder::new(1, "www.github.com", RecordType::A)
        .cname("www.github.com", "lb.github.com", 300)
        .cname("lb.github.com", "github.com", 200)
        .address("github.com", ip("140.82.112.3"), 60)
        .address("github.com", ip("140.82.112.4"), 60)
        .to_wire()
        .unwrap();
    let obs = observe(&wire).unwrap();
    assert_eq!(obs.cnames, ["lb.github.com.", "github.com."]);
    let c = cache(&learn(&wire));
    assert_eq!(
        c.lookup("www.github.com.", Timestamp::from_secs(100)),
        [ip("140.82.112.3"), ip("140.82.112.4")]
    );
}

#[test]
fn cname_target_is_not_cached() {
    let wire = ResponseBuilder::new(1, "www.github.com", RecordType::A)
        .cname("www.github.com", "github.com", 300)
        .address("github.com", ip("140.82.112.3"), 60)
        .to_wire()
        .unwrap();
    let c = cache(&learn(&wire));
    assert!(
        c.lookup("github.com.", Timestamp::from_secs(100))
            .is_empty()
    );
    assert_eq!(c.names().len(), 1);
    assert_eq!(
        c.lookup_ip(ip("140.82.112.3"), Timestamp::from_secs(100))[0].as_str(),
        "www.github.com."
    );
}

#[test]
fn ttl_is_the_minimum_over_a_aaaa_and_cname_records() {
    let wire = ResponseBuilder::new(1, "www.example.com", RecordType::A)
        .cname("www.example.com", "example.com", 30)
        .address("example.com", ip("192.0.2.1"), 300)
        .address("example.com", ip("2001:db8::1"), 120)
        .to_wire()
        .unwrap();
    assert_eq!(observe(&wire).unwrap().ttl, 30);
    let wire = ResponseBuilder::new(1, "example.com", RecordType::A)
        .address("example.com", ip("192.0.2.1"), 300)
        .address("example.com", ip("2001:db8::1"), 120)
        .to_wire()
        .unwrap();
    assert_eq!(observe(&wire).unwrap().ttl, 120);
}

#[test]
fn other_record_types_neither_teach_nor_lower_the_ttl() {
    let mx = RData::MX(MX::new(10, Name::from_ascii("mail.example.com.").unwrap()));
    let txt = RData::TXT(TXT::new(vec!["hello".into()]));
    let wire = ResponseBuilder::new(1, "example.com", RecordType::A)
        .record("example.com", 5, mx)
        .record("example.com", 1, txt)
        .address("example.com", ip("192.0.2.1"), 300)
        .to_wire()
        .unwrap();
    let obs = observe(&wire).unwrap();
    assert_eq!(obs.ttl, 300);
    assert_eq!(obs.addresses, [ip("192.0.2.1")]);
    assert_eq!(
        obs.answer_types,
        [RecordType::MX, RecordType::TXT, RecordType::A]
    );
}

#[test]
fn every_answer_address_counts_whatever_its_owner() {
    // Cilium checks no CNAME chain: an A record owned by another name still counts.
    let wire = ResponseBuilder::new(1, "example.com", RecordType::A)
        .address("elsewhere.org", ip("198.51.100.7"), 60)
        .to_wire()
        .unwrap();
    let c = cache(&learn(&wire));
    assert_eq!(
        c.lookup("example.com.", Timestamp::from_secs(100)),
        [ip("198.51.100.7")]
    );
}

#[test]
fn ipv4_mapped_aaaa_is_learned_as_ipv4() {
    let wire = ResponseBuilder::new(1, "example.com", RecordType::AAAA)
        .address("example.com", ip("::ffff:192.0.2.9"), 60)
        .to_wire()
        .unwrap();
    assert_eq!(observe(&wire).unwrap().addresses, [ip("192.0.2.9")]);
}

#[test]
fn response_without_question_is_a_typed_error() {
    let wire = ResponseBuilder::new(9, "example.com", RecordType::A)
        .without_question()
        .to_wire()
        .unwrap();
    assert!(matches!(
        observe(&wire),
        Err(ObserveError::NoQuestion { id: 9 })
    ));
}

#[test]
fn a_query_is_not_a_response() {
    let wire = ResponseBuilder::new(4, "example.com", RecordType::A)
        .as_query()
        .to_wire()
        .unwrap();
    assert!(matches!(
        observe(&wire),
        Err(ObserveError::NotAResponse { id: 4 })
    ));
}

#[test]
fn oversized_input_is_a_typed_error() {
    let big = vec![0u8; 65_536];
    let err = observe(&big).unwrap_err();
    assert!(matches!(
        err,
        ObserveError::TooLarge {
            len: 65_536,
            max: 65_535
        }
    ));
}

#[test]
fn every_truncation_of_a_response_is_an_error_never_a_panic() {
    let wire = ResponseBuilder::new(1, "www.github.com", RecordType::A)
        .cname("www.github.com", "github.com", 300)
        .address("github.com", ip("140.82.112.3"), 60)
        .address("github.com", ip("2001:db8::3"), 60)
        .edns(1232)
        .to_wire()
        .unwrap();
    assert!(observe(&wire).is_ok());
    for len in 0..wire.len() {
        let err = observe(&wire[..len]).expect_err("a truncated message must not parse");
        assert!(
            matches!(err, ObserveError::Malformed { .. }),
            "{len}: {err}"
        );
        assert!(err.to_string().contains("malformed DNS message"));
    }
}

#[test]
fn odd_label_bytes_are_written_as_ciliums_dns_library_does() {
    // A leading '-' stays as it is (hickory would escape it), a space is `\ `, a byte outside
    // the printable range is `\DDD` in decimal, upper case is lowered.
    let mut name = Name::from_labels(vec![&b"-Ab c"[..], &b"\xe9t"[..], &b"io"[..]]).unwrap();
    name.set_fqdn(true);
    assert_eq!(name_text(&name), "-Ab\\ c.\\233t.io.");
    let msg = ResponseBuilder::new(1, "x.io", RecordType::A)
        .address("x.io", ip("192.0.2.1"), 1)
        .to_message()
        .unwrap();
    let mut msg = msg;
    msg.queries[0].name = name;
    let obs = observe_message(&msg).unwrap();
    assert_eq!(obs.qname.as_str(), "-ab\\ c.\\233t.io.");
}
