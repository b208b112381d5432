//! The zero-allocation observation path against hickory-proto's: on generated responses of
//! the common shapes the fast path must not decline (so it cannot pass by declining
//! everything) and must agree; on mutated responses, whenever it does not decline, it must
//! agree; and the public entry points give hickory-proto's result or error on every input.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use fqdnpath_cache::hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use fqdnpath_cache::hickory_proto::rr::rdata::opt::EdnsOption;
use fqdnpath_cache::hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA, TXT};
use fqdnpath_cache::hickory_proto::rr::{Name, RData, Record, RecordType};
use fqdnpath_cache::wire::ResponseBuilder;
use fqdnpath_cache::{
    CacheConfig, DnsCache, EndpointCaches, EndpointId, FastPath, FqdnConfig, ObservationBuf,
    Timestamp, UpdateOutcome, observe, observe_fast, observe_hickory, observe_into,
};
use proptest::prelude::*;

use common::{ip, single_answer, wire};

/// Checks one input: the fast path agrees with hickory-proto whenever it observes, and the
/// public entry points give exactly hickory-proto's result or error. Returns whether the fast
/// path observed.
fn agree(wire: &[u8]) -> bool {
    let reference = observe_hickory(wire);
    let mut buf = ObservationBuf::new();
    let fast = observe_fast(wire, &mut buf);
    if fast == FastPath::Observed {
        let fast_obs = buf.to_observation();
        match &reference {
            Ok(reference) => assert_eq!(&fast_obs, reference, "fast path disagrees"),
            Err(e) => panic!("fast path observed {fast_obs:?}, hickory-proto said {e:?}"),
        }
    }
    assert_eq!(format!("{:?}", observe(wire)), format!("{reference:?}"));
    let mut into = ObservationBuf::new();
    match (observe_into(wire, &mut into), &reference) {
        (Ok(()), Ok(reference)) => assert_eq!(&into.to_observation(), reference),
        (Err(got), Err(want)) => assert_eq!(format!("{got:?}"), format!("{want:?}")),
        (got, want) => panic!("observe_into gave {got:?}, hickory-proto {want:?}"),
    }
    fast == FastPath::Observed
}

fn name(labels: &[Vec<u8>]) -> Name {
    Name::from_labels(labels.iter().map(Vec::as_slice)).unwrap()
}

/// One generated answer record.
#[derive(Clone, Debug)]
enum Answer {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    /// An IPv4-mapped IPv6 address.
    Mapped(Ipv4Addr),
    /// A CNAME to a new name (which later records may own).
    Cname(Vec<Vec<u8>>),
}

/// A generated OPT record: payload size, version, DO bit, opaque options.
#[derive(Clone, Debug)]
struct EdnsShape {
    payload: u16,
    version: u8,
    dnssec_ok: bool,
    options: Vec<(u16, Vec<u8>)>,
}

/// A generated response of the common shape.
#[derive(Clone, Debug)]
struct Shape {
    id: u16,
    qname: Vec<Vec<u8>>,
    qtype: u16,
    rcode: u16,
    answers: Vec<(usize, u32, Answer)>,
    glue: Vec<Ipv4Addr>,
    edns: Option<EdnsShape>,
    authoritative: bool,
    recursion: bool,
}

impl Shape {
    fn message(&self) -> Message {
        let mut m = Message::response(self.id, OpCode::Query);
        m.metadata.authoritative = self.authoritative;
        m.metadata.recursion_desired = self.recursion;
        m.metadata.recursion_available = self.recursion;
        m.metadata.response_code = <ResponseCode as From<u16>>::from(self.rcode);
        m.add_query(Query::query(
            name(&self.qname),
            RecordType::from(self.qtype),
        ));
        // Owners: the question name, then each CNAME target in turn.
        let mut owners = vec![name(&self.qname)];
        for (owner, ttl, answer) in &self.answers {
            let owner_name = owners[owner % owners.len()].clone();
            let data = match answer {
                Answer::V4(ip) => RData::A(A(*ip)),
                Answer::V6(ip) => RData::AAAA(AAAA(*ip)),
                Answer::Mapped(ip) => RData::AAAA(AAAA(ip.to_ipv6_mapped())),
                Answer::Cname(target) => {
                    owners.push(name(target));
                    RData::CNAME(CNAME(name(target)))
                }
            };
            m.add_answer(Record::from_rdata(owner_name, *ttl, data));
        }
        for ip in &self.glue {
            m.add_additional(Record::from_rdata(
                owners[owners.len() - 1].clone(),
                3600,
                RData::A(A(*ip)),
            ));
        }
        if let Some(shape) = &self.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(shape.payload)
                .set_version(shape.version)
                .set_dnssec_ok(shape.dnssec_ok);
            for (code, data) in &shape.options {
                edns.options_mut()
                    .insert(EdnsOption::Unknown(*code, data.clone()));
            }
            m.set_edns(edns);
        }
        m
    }

    fn wire(&self) -> Vec<u8> {
        self.message().to_vec().unwrap()
    }
}

/// A label: mostly hostname characters (both cases), sometimes any byte at all.
fn label() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => "[a-zA-Z0-9_-]{1,12}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 1..8),
    ]
}

fn labels() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(label(), 1..5)
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => any::<u32>().prop_map(|n| Answer::V4(Ipv4Addr::from(n))),
        2 => any::<u128>().prop_map(|n| Answer::V6(Ipv6Addr::from(n))),
        1 => any::<u32>().prop_map(|n| Answer::Mapped(Ipv4Addr::from(n))),
        2 => labels().prop_map(Answer::Cname),
    ]
}

/// EDNS option codes hickory-proto keeps as opaque bytes (cookie, padding, keepalive, ...).
fn opaque_option() -> impl Strategy<Value = (u16, Vec<u8>)> {
    (
        prop::sample::select(vec![10u16, 11, 12, 15, 65001]),
        prop::collection::vec(any::<u8>(), 0..24),
    )
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        any::<u16>(),
        labels(),
        prop::sample::select(vec![1u16, 28, 5, 65, 255, 16, 0, 4242]),
        prop_oneof![4 => Just(0u16), 1 => 0u16..16, 1 => 0u16..4096],
        prop::collection::vec(
            (
                0usize..4,
                prop_oneof![Just(0u32), 0u32..100_000, any::<u32>()],
                answer(),
            ),
            0..8,
        ),
        prop::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), 0..3),
        prop::option::of(
            (
                any::<u16>(),
                any::<u8>(),
                any::<bool>(),
                prop::collection::vec(opaque_option(), 0..3),
            )
                .prop_map(|(payload, version, dnssec_ok, options)| EdnsShape {
                    payload,
                    version,
                    dnssec_ok,
                    options,
                }),
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(id, qname, qtype, rcode, answers, glue, edns, authoritative, recursion)| Shape {
                id,
                qname,
                qtype,
                // An extended code needs EDNS to carry its high bits.
                rcode: if edns.is_some() { rcode } else { rcode & 0xF },
                answers,
                glue,
                edns,
                authoritative,
                recursion,
            },
        )
}

/// A change to a response's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Set(at, b)),
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, 1 << bit)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        1 => any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn mutate(wire: &mut Vec<u8>, mutation: &Mutation) {
    if wire.is_empty() {
        return;
    }
    let len = wire.len();
    match *mutation {
        Mutation::Set(at, b) => wire[at % len] = b,
        Mutation::Flip(at, mask) => wire[at % len] ^= mask,
        Mutation::Truncate(at) => wire.truncate(at % len),
        Mutation::Insert(at, b) => wire.insert(at % (len + 1), b),
        Mutation::Remove(at) => {
            wire.remove(at % len);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Generated responses of the common shape: the fast path observes every one, exactly as
    /// hickory-proto does.
    #[test]
    fn fast_path_takes_and_agrees_on_common_shapes(shape in shape()) {
        let wire = shape.wire();
        prop_assert!(agree(&wire), "the fast path declined a common shape: {shape:?}");
    }

    /// Mutated responses: whatever the fast path observes, hickory-proto observes the same;
    /// the public entry points give hickory-proto's result or error.
    #[test]
    fn fast_path_agrees_on_mutated_responses(
        shape in shape(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut wire = shape.wire();
        for m in &mutations {
            mutate(&mut wire, m);
        }
        agree(&wire);
    }

    /// Arbitrary bytes behind a valid header (mostly declined, never wrong).
    #[test]
    fn fast_path_agrees_on_arbitrary_bodies(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut wire = vec![0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 1];
        wire.extend_from_slice(&body);
        agree(&wire);
    }

    /// The buffered ingest (fast path into reused buffers, then `update_into`) ends in the
    /// state the owned path (`observe`, then `observe` into the caches) reaches.
    #[test]
    fn buffered_ingest_matches_owned_ingest(shapes in prop::collection::vec(shape(), 1..6)) {
        let mut owned = EndpointCaches::new(FqdnConfig::default());
        let mut buffered = EndpointCaches::new(FqdnConfig::default());
        let mut buf = ObservationBuf::new();
        let mut outcome = UpdateOutcome::default();
        for (t, shape) in shapes.iter().enumerate() {
            let wire = shape.wire();
            let now = Timestamp::from_secs(t as u64);
            let want = owned.observe(EndpointId(1), now, &observe(&wire).unwrap());
            observe_into(&wire, &mut buf).unwrap();
            buffered.observe_into(EndpointId(1), now, &buf, &mut outcome);
            prop_assert_eq!(&outcome, &want);
        }
        prop_assert_eq!(owned, buffered);
    }
}

/// The benches' response: 1 CNAME + 4 A, with EDNS.
fn bench_shape() -> Vec<u8> {
    let mut b = ResponseBuilder::new(7, "svc1.example.com", RecordType::A)
        .cname("svc1.example.com", "lb1.edge.example.net", 300)
        .edns(1232);
    for k in 1..=4 {
        b = b.address("lb1.edge.example.net", ip(&format!("10.0.0.{k}")), 60);
    }
    wire(&b)
}

#[test]
fn cname_and_four_addresses_take_the_fast_path() {
    let wire = bench_shape();
    assert!(agree(&wire));
    let mut buf = ObservationBuf::new();
    observe_into(&wire, &mut buf).unwrap();
    assert_eq!(buf.qname(), "svc1.example.com.");
    assert_eq!(buf.cnames().collect::<Vec<_>>(), ["lb1.edge.example.net."]);
    assert_eq!(buf.addresses().len(), 4);
    assert_eq!(buf.ttl(), 60);
    assert!(buf.is_learnable());
}

#[test]
fn nxdomain_with_soa_is_left_to_hickory() {
    let mut m = Message::response(3, OpCode::Query);
    m.metadata.response_code = ResponseCode::NXDomain;
    m.add_query(Query::query(
        Name::from_ascii("nope.example.").unwrap(),
        RecordType::A,
    ));
    let zone = Name::from_ascii("example.").unwrap();
    m.add_authority(Record::from_rdata(
        zone.clone(),
        60,
        RData::SOA(SOA::new(zone.clone(), zone, 1, 2, 3, 4, 5)),
    ));
    let wire = m.to_vec().unwrap();
    assert!(!agree(&wire));
    assert_eq!(observe(&wire).unwrap().rcode, ResponseCode::NXDomain);
}

#[test]
fn other_answer_types_are_left_to_hickory() {
    let wire = wire(
        &ResponseBuilder::new(1, "a.example", RecordType::TXT).record(
            "a.example",
            60,
            RData::TXT(TXT::new(vec!["hi".into()])),
        ),
    );
    assert!(!agree(&wire));
    assert_eq!(observe(&wire).unwrap().answer_types, [RecordType::TXT]);
}

#[test]
fn queries_and_questionless_responses_get_hickorys_errors() {
    let question = || ResponseBuilder::new(1, "a.example", RecordType::A);
    assert!(!agree(&wire(&question().as_query())));
    assert!(!agree(&wire(&question().without_question())));
}

#[test]
fn empty_rdata_is_left_to_hickory_which_rejects_it() {
    // An A record with RDLENGTH 0 is an update prerequisite, an error in a QUERY response.
    let mut wire = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    wire.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
    wire.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x00");
    assert!(!agree(&wire));
    assert!(observe(&wire).is_err());
}

#[test]
fn a_second_opt_record_is_left_to_hickory_which_rejects_it() {
    let mut wire = bench_shape();
    let opt = wire[wire.len() - 11..].to_vec();
    wire.extend_from_slice(&opt);
    wire[11] += 1;
    assert!(!agree(&wire));
    assert!(observe(&wire).is_err());
}

#[test]
fn nsid_and_client_subnet_options_are_left_to_hickory() {
    for code in [3u16, 8] {
        let mut m = Message::response(1, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("a.example.").unwrap(),
            RecordType::A,
        ));
        m.add_answer(Record::from_rdata(
            Name::from_ascii("a.example.").unwrap(),
            5,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
        ));
        let mut edns = Edns::new();
        edns.options_mut()
            .insert(EdnsOption::Unknown(code, vec![1, 0, 24, 0, 192, 0, 2]));
        m.set_edns(edns);
        let wire = m.to_vec().unwrap();
        assert!(!agree(&wire), "option {code}");
    }
}

#[test]
fn truncated_flag_is_left_to_hickory() {
    let mut wire = bench_shape();
    wire[2] |= 0x02;
    assert!(!agree(&wire));
}

#[test]
fn bytes_after_the_last_record_are_ignored_by_both() {
    let mut wire = bench_shape();
    wire.extend_from_slice(b"trailing garbage");
    assert!(agree(&wire));
}

#[test]
fn extended_rcode_comes_from_edns_on_both_paths() {
    let mut wire = bench_shape();
    // The OPT record's TTL starts 6 bytes after its root owner and type.
    let ttl_at = wire.len() - 11 + 5;
    wire[ttl_at] = 1;
    assert!(agree(&wire));
    assert_eq!(
        observe(&wire).unwrap().rcode,
        <ResponseCode as From<u16>>::from(16)
    );
}

#[test]
fn escaped_and_upper_case_names_match_hickory() {
    let labels: Vec<Vec<u8>> = vec![
        b"We.ird".to_vec(),
        vec![0, 0xff, b' ', b'\\', b'"'],
        b"EXAMPLE".to_vec(),
    ];
    let shape = Shape {
        id: 9,
        qname: labels.clone(),
        qtype: 1,
        rcode: 0,
        answers: vec![
            (0, 30, Answer::Cname(labels)),
            (1, 20, Answer::V4(Ipv4Addr::new(192, 0, 2, 7))),
        ],
        glue: vec![],
        edns: None,
        authoritative: false,
        recursion: true,
    };
    let wire = shape.wire();
    assert!(agree(&wire));
    let obs = observe(&wire).unwrap();
    assert_eq!(
        obs.qname.as_str(),
        "we\\.ird.\\000\\255\\ \\\\\\\".example."
    );
    assert_eq!(obs.cnames, ["We\\.ird.\\000\\255\\ \\\\\\\".EXAMPLE."]);
}

#[test]
fn mapped_aaaa_counts_as_ipv4_on_both_paths() {
    let wire = single_answer(
        "a.example",
        RecordType::AAAA,
        "a.example",
        "::ffff:192.0.2.1",
    );
    assert!(agree(&wire));
    assert_eq!(observe(&wire).unwrap().addresses, [ip("192.0.2.1")]);
}

#[test]
fn compression_loops_and_forward_pointers_are_declined() {
    let wire = bench_shape();
    // The first answer's owner is a pointer (0xc00c) at offset 12 + qname + 4.
    let at = 12 + "svc1.example.com".len() + 2 + 4;
    assert_eq!(wire[at], 0xc0);
    for target in [at, at + 1, at + 2, 0xff] {
        let mut bad = wire.clone();
        bad[at + 1] = u8::try_from(target).unwrap();
        assert!(!agree(&bad), "pointer to {target}");
    }
}

#[test]
fn update_into_equals_update() {
    let mut a = DnsCache::new(CacheConfig::default());
    let mut b = DnsCache::new(CacheConfig::default());
    let mut outcome = UpdateOutcome::default();
    let ips = [ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.1")];
    for (t, name) in [
        (1, "A.example"),
        (2, "a.example."),
        (3, "b.example"),
        (0, "a.example"),
    ] {
        let now = Timestamp::from_secs(t);
        let want = a.update(now, &fqdnpath_cache::Fqdn::new(name), &ips, 30);
        b.update_into(now, name, &ips, 30, &mut outcome);
        assert_eq!(outcome, want, "{name} at {t}");
    }
    b.update_into(Timestamp::from_secs(9), "c.example", &[], 30, &mut outcome);
    assert!(!outcome.changed());
    assert_eq!(a, b);
    assert_eq!(b.names_of(ip("192.0.2.1")).len(), 2);
}

#[test]
fn cache_observe_into_learns_only_learnable_responses() {
    let mut a = DnsCache::new(CacheConfig::default());
    let mut b = DnsCache::new(CacheConfig::default());
    let mut buf = ObservationBuf::new();
    let mut outcome = UpdateOutcome::default();
    let nxdomain = wire(
        &ResponseBuilder::new(2, "a.example", RecordType::A)
            .rcode(ResponseCode::NXDomain)
            .address("a.example", ip("192.0.2.9"), 60),
    );
    for (t, wire) in [bench_shape(), nxdomain].iter().enumerate() {
        let now = Timestamp::from_secs(t as u64);
        let obs = observe(wire).unwrap();
        let want = if obs.is_learnable() {
            a.update(now, &obs.qname, &obs.addresses, obs.ttl)
        } else {
            UpdateOutcome::default()
        };
        observe_into(wire, &mut buf).unwrap();
        b.observe_into(now, &buf, &mut outcome);
        assert_eq!(outcome, want);
    }
    assert_eq!(a, b);
    assert_eq!(b.len(), 4);
}

#[test]
fn a_declined_buffer_is_empty_and_teaches_nothing() {
    let mut wire = bench_shape();
    wire[2] |= 0x02;
    let mut buf = ObservationBuf::new();
    assert_eq!(observe_fast(&wire, &mut buf), FastPath::Declined);
    assert!(!buf.is_learnable());
    assert_eq!(buf.qname(), "");
    let mut cache = DnsCache::default();
    let mut outcome = UpdateOutcome::default();
    cache.observe_into(Timestamp::ZERO, &buf, &mut outcome);
    assert!(cache.is_empty());
}
