//! DNS in the cluster: a pod's query walks the real path (the kube-dns service, translated by
//! a Local Redirect Policy first, judged by the node's egress policy, through the agent's DNS
//! proxy when the entry redirects), answered by the DNS server pods: the authoritative server
//! from the scenario's zone, and node-local caches that keep answers by TTL and forward their
//! misses upstream.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_agent::{QueryDecision, hold};
use fqdnpath_cache::hickory_proto::op::ResponseCode;
use fqdnpath_cache::hickory_proto::rr::RecordType;
use fqdnpath_cache::wire::ResponseBuilder;
use fqdnpath_cache::{Timestamp, observe};
use fqdnpath_datapath::Packet;
use fqdnpath_datapath::Verdict;
use fqdnpath_datapath::conntrack::TcpFlags;
use fqdnpath_policy::policymap::PROTO_UDP;

use super::expect::Observed;
use super::output::{self, Line};
use super::sync::Pending;
use super::{SimPod, Simulation};
use crate::scenario::{DnsMode, DnsRoleKind, QueryType, ZoneRecord};

/// The authoritative server's records, by normalized owner name.
pub(super) type Zone = BTreeMap<String, Vec<ZoneRecord>>;

/// A caching DNS server's answers: (name, type) -> (stored at, expiry, wire response).
pub(super) type CachedAnswers = BTreeMap<(String, u16), (Timestamp, Timestamp, Vec<u8>)>;

/// The zone of `records` (checked when the scenario was loaded).
pub(super) fn zone(records: &[ZoneRecord]) -> Zone {
    let mut zone = Zone::new();
    for r in records {
        zone.entry(fqdnpath_names::normalize(&r.name).into_owned())
            .or_default()
            .push(r.clone());
    }
    zone
}

impl QueryType {
    fn record_type(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
        }
    }
}

impl Simulation {
    /// `update-zone`: every name the records name loses its records, then gets those that
    /// are not `remove`.
    pub(super) fn update_zone(&mut self, records: &[ZoneRecord]) {
        let names: BTreeSet<String> = records
            .iter()
            .map(|r| fqdnpath_names::normalize(&r.name).into_owned())
            .collect();
        for name in &names {
            self.zone.remove(name);
        }
        for r in records.iter().filter(|r| !r.remove) {
            self.zone
                .entry(fqdnpath_names::normalize(&r.name).into_owned())
                .or_default()
                .push(r.clone());
        }
    }

    /// The kube-dns service every pod resolves through.
    fn resolver(&self) -> Option<(IpAddr, u16)> {
        self.services
            .iter()
            .find(|s| s.name == "kube-dns" && s.namespace == "kube-system")
            .map(|s| (s.cluster_ip, 53))
    }

    /// `resolve`: `pod` asks for `name`; time then stands at the answer's release.
    pub(super) fn resolve(&mut self, pod: &SimPod, name: &str, kind: QueryType) -> Observed {
        let qtype = kind.record_type();
        let qname = fqdnpath_names::normalize(name).into_owned();
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut observed = Observed::default();
        if self.scenario.cluster.dns_mode == DnsMode::Localdns {
            // Answered on the node before any proxy: nothing is learned.
            let wire = self.authoritative(id, &qname, qtype);
            return self.deliver(pod, &qname, &wire, observed);
        }
        let Some((service_ip, port)) = self.resolver() else {
            observed.rcode = Some("TIMEOUT".into());
            return observed;
        };
        let sport = self.next_port;
        self.next_port = self.next_port.wrapping_add(1).max(40_000);
        let Some(t) = self.table.translate(
            pod.ip,
            &pod.node,
            service_ip,
            PROTO_UDP,
            port,
            u64::from(sport),
        ) else {
            observed.rcode = Some("TIMEOUT".into());
            return observed;
        };
        let packet = Packet {
            src: pod.ip,
            dst: t.ip,
            proto: PROTO_UDP,
            sport,
            dport: t.port,
            flags: TcpFlags::default(),
        };
        let event = self.egress(&pod.node, &packet);
        observed.verdict = Some(event.verdict);
        observed.identity = Some(event.dst_identity.0);
        observed.match_type = event.match_type;
        if event.verdict == Verdict::Dropped {
            observed.drop_reason = event.drop_reason.map(|r| r.desc().to_owned());
            observed.rcode = Some("TIMEOUT".into());
            return observed;
        }
        let wire = self.server_answer(t.ip, id, &qname, qtype, &mut Vec::new());
        let Some(dns) = event.dns.filter(|_| event.verdict == Verdict::Redirected) else {
            // Allowed without a DNS rule: the answer goes straight back, nothing is learned.
            return self.deliver(pod, &qname, &wire, observed);
        };
        let query = query_wire(id, &qname, qtype);
        let node = self
            .nodes
            .get_mut(&pod.node)
            .expect("the pod's node exists");
        match node.agent.on_query(&query, &dns) {
            Ok(QueryDecision::Reject { response, .. }) => {
                self.deliver(pod, &qname, &response, observed)
            }
            Ok(QueryDecision::Forward { .. }) => {
                let now = self.now;
                let latency = self.scenario.datapath.update_latency.0;
                let max_delay = self.scenario.agent.tofqdns_proxy_response_max_delay.0;
                if let Ok(learned) = node.agent.on_response(pod.endpoint, &wire, now) {
                    // Nothing new to program (Cilium returns early): no wait.
                    let programmed = if learned.deltas.is_empty() {
                        now
                    } else {
                        now + latency
                    };
                    if !learned.deltas.is_empty() {
                        node.pending
                            .push((programmed, Pending::Deltas(learned.deltas)));
                    }
                    let h = hold(now, programmed, max_delay);
                    observed.held = Some(h.release_at.saturating_duration_since(now));
                    self.advance_to(h.release_at);
                    self.deliver(pod, &qname, &wire, observed)
                } else {
                    // The proxy could not handle the answer: Cilium answers SERVFAIL.
                    let servfail = fqdnpath_agent::servfail(&query).unwrap_or_default();
                    self.deliver(pod, &qname, &servfail, observed)
                }
            }
            Err(_) => {
                observed.rcode = Some("SERVFAIL".into());
                observed
            }
        }
    }

    /// The pod receives `wire`: record the answer and its line.
    fn deliver(
        &mut self,
        pod: &SimPod,
        qname: &str,
        wire: &[u8],
        mut observed: Observed,
    ) -> Observed {
        match observe(wire) {
            Ok(o) => {
                let destination = self.peer(&pod.node, pod.ip, 0);
                let flow = output::dns_response(self.now, &pod.node, destination, qname, &o);
                let line = Line::new(self.now, flow, self.json_output);
                self.report.lines.push(line);
                self.answers
                    .insert((pod.key(), qname.to_owned()), o.addresses.clone());
                observed.rcode = Some(o.rcode_name());
                observed.ips = Some(o.addresses);
            }
            Err(_) => observed.rcode = Some("SERVFAIL".into()),
        }
        observed
    }

    /// The answer of the DNS server pod at `server` (a cache forwards its misses upstream).
    fn server_answer(
        &mut self,
        server: IpAddr,
        id: u16,
        qname: &str,
        qtype: RecordType,
        chain: &mut Vec<IpAddr>,
    ) -> Vec<u8> {
        let role = self
            .pods
            .iter()
            .find(|p| p.ip == server)
            .and_then(|p| p.dns.clone().map(|d| (d, p.node.clone())));
        match role {
            Some(((DnsRoleKind::Authoritative, _), _)) => self.authoritative(id, qname, qtype),
            Some(((DnsRoleKind::Cache, upstream), node)) => {
                if chain.contains(&server) {
                    // A forwarding loop (the upstream is redirected back to a cache).
                    return ResponseBuilder::new(id, qname, qtype)
                        .rcode(ResponseCode::ServFail)
                        .to_wire()
                        .unwrap_or_default();
                }
                chain.push(server);
                let key = (qname.to_owned(), u16::from(qtype));
                let now = self.now;
                if let Some((stored, expiry, wire)) =
                    self.dns_caches.get(&server).and_then(|c| c.get(&key))
                    && now < *expiry
                {
                    return cached_answer(wire, id, now.saturating_duration_since(*stored));
                }
                let upstream = upstream.and_then(|u| {
                    let (ns, name) = u.split_once('/')?;
                    self.services
                        .iter()
                        .find(|s| s.namespace == ns && s.name == name)
                        .map(|s| s.cluster_ip)
                });
                let target = upstream.and_then(|ip| {
                    self.table
                        .translate(server, &node, ip, PROTO_UDP, 53, u64::from(id))
                });
                let Some(target) = target else {
                    return ResponseBuilder::new(id, qname, qtype)
                        .rcode(ResponseCode::ServFail)
                        .to_wire()
                        .unwrap_or_default();
                };
                let wire = self.server_answer(target.ip, id, qname, qtype, chain);
                let ttl = observe(&wire)
                    .ok()
                    .filter(|o| o.ttl != u32::MAX)
                    .map_or(0, |o| o.ttl);
                self.dns_caches.entry(server).or_default().insert(
                    key,
                    (now, now + Duration::from_secs(u64::from(ttl)), wire.clone()),
                );
                wire
            }
            None => ResponseBuilder::new(id, qname, qtype)
                .rcode(ResponseCode::Refused)
                .to_wire()
                .unwrap_or_default(),
        }
    }

    /// The authoritative answer from the zone, following CNAMEs.
    fn authoritative(&self, id: u16, qname: &str, qtype: RecordType) -> Vec<u8> {
        let mut builder = ResponseBuilder::new(id, qname, qtype);
        let mut name = qname.to_owned();
        let mut found = false;
        for _ in 0..8 {
            let Some(records) = self.zone.get(&name) else {
                break;
            };
            found = true;
            if let Some(cname) = records.iter().find(|r| r.kind.as_deref() == Some("CNAME")) {
                let target =
                    fqdnpath_names::normalize(cname.value.as_deref().unwrap_or("")).into_owned();
                builder = builder.cname(&name, &target, cname.ttl.unwrap_or(0));
                name = target;
                continue;
            }
            for r in records {
                let want = if qtype == RecordType::AAAA {
                    "AAAA"
                } else {
                    "A"
                };
                if r.kind.as_deref() == Some(want)
                    && let Some(ip) = r.value.as_deref().and_then(|v| v.parse::<IpAddr>().ok())
                {
                    builder = builder.address(&name, ip, r.ttl.unwrap_or(0));
                }
            }
            break;
        }
        if !found {
            builder = builder.rcode(ResponseCode::NXDomain);
        }
        builder.to_wire().unwrap_or_default()
    }
}

/// A cached answer served again: the client's ID, and every TTL lowered by the time the
/// answer spent in the cache (as a caching resolver answers with the remaining TTL).
fn cached_answer(wire: &[u8], id: u16, age: Duration) -> Vec<u8> {
    let Ok(mut message) = fqdnpath_cache::hickory_proto::op::Message::from_vec(wire) else {
        return wire.to_vec();
    };
    message.metadata.id = id;
    let age = u32::try_from(age.as_secs()).unwrap_or(u32::MAX);
    for record in &mut message.answers {
        record.ttl = record.ttl.saturating_sub(age);
    }
    message.to_vec().unwrap_or_else(|_| wire.to_vec())
}

fn query_wire(id: u16, qname: &str, qtype: RecordType) -> Vec<u8> {
    ResponseBuilder::new(id, qname, qtype)
        .as_query()
        .to_wire()
        .unwrap_or_default()
}
