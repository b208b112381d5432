//! The agent's DNS proxy decisions, learning, GC and restart (SEMANTICS.md sections 2 and 4).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_agent::{Agent, AgentConfig, QueryDecision, RejectCode, dns_allows, hold};
use fqdnpath_cache::hickory_proto::op::{Message, Query, ResponseCode};
use fqdnpath_cache::hickory_proto::rr::{Name, RecordType};
use fqdnpath_cache::wire::ResponseBuilder;
use fqdnpath_cache::{EndpointId, Timestamp};
use fqdnpath_policy::compile::{Delta, Endpoint, Prefix};
use fqdnpath_policy::load_str;
use fqdnpath_policy::policymap::{DnsAllow, FqdnSelectorKey};

const POLICY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
    - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s:k8s-app: kube-dns}}]
      toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*.github.com"}, {matchName: github.com}]}}]
    - toFQDNs: [{matchName: github.com}]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn agent(config: AgentConfig) -> Agent {
    let policies: Vec<_> = load_str("p.yaml", POLICY).unwrap().network_policies();
    let endpoints = vec![Endpoint {
        id: EndpointId(1),
        namespace: "default".into(),
        name: "client".into(),
        labels: BTreeMap::from([("app".to_owned(), "client".to_owned())]),
        ips: vec![ip("10.0.1.10")],
    }];
    Agent::new(config, &policies, &endpoints).unwrap()
}

fn rules() -> DnsAllow {
    DnsAllow::Selectors(BTreeSet::from([
        FqdnSelectorKey {
            pattern: true,
            value: "*.github.com.".into(),
        },
        FqdnSelectorKey {
            pattern: false,
            value: "github.com.".into(),
        },
    ]))
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

/// A response to `github.com` A: `140.82.112.3` for `ttl` seconds.
fn github_answer(ttl: u32) -> Vec<u8> {
    ResponseBuilder::new(1, "github.com", RecordType::A)
        .address("github.com", ip("140.82.112.3"), ttl)
        .to_wire()
        .unwrap()
}

fn t(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

#[test]
fn allowed_queries_are_forwarded() {
    let a = agent(AgentConfig::default());
    assert_eq!(
        a.on_query(&query(7, "API.GitHub.com."), &rules()).unwrap(),
        QueryDecision::Forward {
            qname: "api.github.com.".into()
        }
    );
    assert!(dns_allows(&DnsAllow::All, "anything.example."));
}

#[test]
fn denied_queries_are_refused_with_the_query_id_and_case() {
    let a = agent(AgentConfig::default());
    let QueryDecision::Reject {
        response,
        rcode,
        qname,
    } = a
        .on_query(&query(4242, "Evil.Example.org."), &rules())
        .unwrap()
    else {
        panic!("forwarded")
    };
    assert_eq!(
        (rcode, qname.as_str()),
        (ResponseCode::Refused, "evil.example.org.")
    );
    let m = Message::from_vec(&response).unwrap();
    assert_eq!(m.metadata.id, 4242);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());
    assert_eq!(m.queries[0].name.to_ascii(), "Evil.Example.org.");
}

#[test]
fn name_error_reject_code_answers_nxdomain() {
    let a = agent(AgentConfig {
        reject_code: RejectCode::NameError,
        ..AgentConfig::default()
    });
    let QueryDecision::Reject { rcode, .. } = a.on_query(&query(1, "x.org."), &rules()).unwrap()
    else {
        panic!()
    };
    assert_eq!(rcode, ResponseCode::NXDomain);
}

#[test]
fn malformed_queries_are_typed_errors() {
    let a = agent(AgentConfig::default());
    assert!(a.on_query(&[1, 2, 3], &rules()).is_err());
    assert!(a.on_query(&query(1, "a.com.")[..20], &rules()).is_err());
}

#[test]
fn responses_are_learned_into_map_changes() {
    let mut a = agent(AgentConfig::default());
    let wire = github_answer(30);
    let learned = a.on_response(EndpointId(1), &wire, t(0)).unwrap();
    assert_eq!(learned.observation.addresses, [ip("140.82.112.3")]);
    assert!(learned.deltas.iter().any(|d| matches!(d, Delta::IpcacheUpsert { prefix, .. } if *prefix == Prefix::host(ip("140.82.112.3")))));
    // The same answer again changes nothing.
    assert!(
        a.on_response(EndpointId(1), &wire, t(1))
            .unwrap()
            .deltas
            .is_empty()
    );
}

#[test]
fn entries_leave_the_maps_only_when_their_zombie_dies() {
    let mut a = agent(AgentConfig::default());
    let wire = github_answer(30);
    a.on_response(EndpointId(1), &wire, t(0)).unwrap();
    // GC after expiry: the pair becomes a zombie, the IP keeps its identity.
    let (_, deltas) = a.dns_gc(t(60)).unwrap();
    assert!(deltas.is_empty());
    a.ct_gc(t(70), &[]);
    a.ct_gc(t(130), &[]);
    let (_, deltas) = a.dns_gc(t(180)).unwrap();
    assert_eq!(
        deltas
            .iter()
            .filter(|d| matches!(d, Delta::IpcacheDelete { .. }))
            .count(),
        1
    );
}

#[test]
fn a_restart_restores_the_maps_of_learned_ips() {
    let mut a = agent(AgentConfig::default());
    let wire = github_answer(300);
    a.on_response(EndpointId(1), &wire, t(0)).unwrap();
    let snapshot = a.snapshot();
    let mut fresh = agent(AgentConfig::default());
    let deltas = fresh.restart(&snapshot).unwrap();
    assert!(
        deltas
            .iter()
            .any(|d| matches!(d, Delta::IpcacheUpsert { .. }))
    );
    assert_eq!(fresh.caches(), a.caches());
}

#[test]
fn responses_are_held_until_programmed_at_most_the_max_delay() {
    let max = Duration::from_millis(100);
    let h = hold(t(10), t(10) + Duration::from_millis(5), max);
    assert_eq!(
        (h.release_at, h.timed_out),
        (t(10) + Duration::from_millis(5), false)
    );
    let h = hold(t(10), t(10) + Duration::from_millis(250), max);
    assert_eq!((h.release_at, h.timed_out), (t(10) + max, true));
    let h = hold(t(10), t(10) + max, max);
    assert!(!h.timed_out);
}
