//! SEMANTICS.md section 1: learning IPs from DNS responses, on real wire data.

mod common;

use std::net::IpAddr;

use fqdnpath_cache::hickory_proto::op::ResponseCode;
use fqdnpath_cache::hickory_proto::rr::rdata::{MX, TXT};
use fqdnpath_cache::hickory_proto::rr::{Name, RData, RecordType};
use fqdnpath_cache::observe::{name_text, observe_message};
use fqdnpath_cache::wire::ResponseBuilder;
use fqdnpath_cache::{
    DnsCache, EndpointCaches, EndpointId, FqdnConfig, ObserveError, Timestamp, observe,
};

use common::{ip, single_answer, wire};

/// When the tests' responses are learned and looked up.
const AT: Timestamp = Timestamp::from_secs(100);

fn learn(wire: &[u8]) -> EndpointCaches {
    let mut caches = EndpointCaches::new(FqdnConfig::default());
    let obs = observe(wire).unwrap();
    caches.observe(EndpointId(1), AT, &obs);
    caches
}

fn cache(caches: &EndpointCaches) -> DnsCache {
    caches
        .endpoint(EndpointId(1))
        .map(|e| e.cache.clone())
        .unwrap_or_default()
}

/// What endpoint 1 holds for `name` after learning `wire`.
fn learned(wire: &[u8], name: &str) -> Vec<IpAddr> {
    cache(&learn(wire)).lookup(name, AT)
}

/// The error of observing a response.
fn observe_err(builder: &ResponseBuilder) -> ObserveError {
    observe(&wire(builder)).unwrap_err()
}

#[test]
fn noerror_with_addresses_is_learned() {
    let wire = single_answer("github.com", RecordType::A, "github.com", "140.82.112.3");
    assert_eq!(learned(&wire, "github.com."), [ip("140.82.112.3")]);
}

#[test]
fn nxdomain_servfail_refused_and_empty_noerror_change_nothing() {
    for rcode in [
        ResponseCode::NXDomain,
        ResponseCode::ServFail,
        ResponseCode::Refused,
    ] {
        // Even with an address in the answer, a non-NOERROR response teaches nothing.
        let wire = wire(
            &ResponseBuilder::new(1, "github.com", RecordType::A)
                .rcode(rcode)
                .address("github.com", ip("140.82.112.3"), 60),
        );
        let obs = observe(&wire).unwrap();
        assert_eq!(obs.rcode, rcode);
        assert!(!obs.is_learnable());
        assert!(cache(&learn(&wire)).is_empty(), "{rcode:?}");
    }
    let nodata = wire(&ResponseBuilder::new(1, "github.com", RecordType::AAAA));
    assert!(cache(&learn(&nodata)).is_empty());
    let cname_only = wire(
        &ResponseBuilder::new(1, "www.github.com", RecordType::A).cname(
            "www.github.com",
            "github.com",
            300,
        ),
    );
    assert!(cache(&learn(&cname_only)).is_empty());
}

#[test]
fn name_is_the_question_name_lowercased_and_fully_qualified() {
    let wire = single_answer("GitHub.COM", RecordType::A, "GitHub.COM", "140.82.112.3");
    let obs = observe(&wire).unwrap();
    assert_eq!(obs.qname.as_str(), "github.com.");
    assert_eq!(obs.qtype, RecordType::A);
    assert_eq!(cache(&learn(&wire)).names()[0].as_str(), "github.com.");
}

#[test]
fn addresses_behind_cnames_belong_to_the_question_name() {
    let wire = wire(
        &ResponseBuilder::new(1, "www.github.com", RecordType::A)
            .cname("www.github.com", "lb.github.com", 300)
            .cname("lb.github.com", "github.com", 200)
            .address("github.com", ip("140.82.112.3"), 60)
            .address("github.com", ip("140.82.112.4"), 60),
    );
    let obs = observe(&wire).unwrap();
    assert_eq!(obs.cnames, ["lb.github.com.", "github.com."]);
    assert_eq!(
        learned(&wire, "www.github.com."),
        [ip("140.82.112.3"), ip("140.82.112.4")]
    );
}

#[test]
fn cname_target_is_not_cached() {
    let wire = wire(
        &ResponseBuilder::new(1, "www.github.com", RecordType::A)
            .cname("www.github.com", "github.com", 300)
            .address("github.com", ip("140.82.112.3"), 60),
    );
    let c = cache(&learn(&wire));
    assert!(c.lookup("github.com.", AT).is_empty());
    assert_eq!(c.names().len(), 1);
    assert_eq!(
        c.lookup_ip(ip("140.82.112.3"), AT)[0].as_str(),
        "www.github.com."
    );
}

#[test]
fn ttl_is_the_minimum_over_a_aaaa_and_cname_records() {
    let ttl = |builder: &ResponseBuilder| observe(&wire(builder)).unwrap().ttl;
    let addresses = |builder: ResponseBuilder| {
        builder
            .address("example.com", ip("192.0.2.1"), 300)
            .address("example.com", ip("2001:db8::1"), 120)
    };
    let behind_cname = ResponseBuilder::new(1, "www.example.com", RecordType::A).cname(
        "www.example.com",
        "example.com",
        30,
    );
    assert_eq!(ttl(&addresses(behind_cname)), 30);
    let direct = ResponseBuilder::new(1, "example.com", RecordType::A);
    assert_eq!(ttl(&addresses(direct)), 120);
}

#[test]
fn other_record_types_neither_teach_nor_lower_the_ttl() {
    let mx = RData::MX(MX::new(10, Name::from_ascii("mail.example.com.").unwrap()));
    let txt = RData::TXT(TXT::new(vec!["hello".into()]));
    let obs = observe(&wire(
        &ResponseBuilder::new(1, "example.com", RecordType::A)
            .record("example.com", 5, mx)
            .record("example.com", 1, txt)
            .address("example.com", ip("192.0.2.1"), 300),
    ))
    .unwrap();
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
    let wire = single_answer(
        "example.com",
        RecordType::A,
        "elsewhere.org",
        "198.51.100.7",
    );
    assert_eq!(learned(&wire, "example.com."), [ip("198.51.100.7")]);
}

#[test]
fn ipv4_mapped_aaaa_is_learned_as_ipv4() {
    let wire = single_answer(
        "example.com",
        RecordType::AAAA,
        "example.com",
        "::ffff:192.0.2.9",
    );
    assert_eq!(observe(&wire).unwrap().addresses, [ip("192.0.2.9")]);
}

#[test]
fn response_without_question_is_a_typed_error() {
    let err =
        observe_err(&ResponseBuilder::new(9, "example.com", RecordType::A).without_question());
    assert!(matches!(err, ObserveError::NoQuestion { id: 9 }));
}

#[test]
fn a_query_is_not_a_response() {
    let err = observe_err(&ResponseBuilder::new(4, "example.com", RecordType::A).as_query());
    assert!(matches!(err, ObserveError::NotAResponse { id: 4 }));
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
    let wire = wire(
        &ResponseBuilder::new(1, "www.github.com", RecordType::A)
            .cname("www.github.com", "github.com", 300)
            .address("github.com", ip("140.82.112.3"), 60)
            .address("github.com", ip("2001:db8::3"), 60)
            .edns(1232),
    );
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
