//! The differential property test: random policies, endpoints, DNS state and packets. The
//! policies are written as YAML, loaded, compiled into maps and judged by the reference
//! datapath; an independent interpreter judges the same packets straight from the generated
//! rules (no identities, no maps, no LPM structure). Verdicts and drop reasons must agree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use fqdnpath_datapath::conntrack::TcpFlags;
use fqdnpath_datapath::{Datapath, Packet, ReferenceDatapath, Verdict};
use fqdnpath_names::FqdnSelector;
use fqdnpath_names::{Fqdn, Timestamp};
use fqdnpath_policy::compile::{Compiler, Endpoint, EndpointId};
use fqdnpath_policy::load_str;
use fqdnpath_policy::policymap::{DropReason, PROTO_SCTP, PROTO_TCP, PROTO_UDP};
use proptest::prelude::*;

const APPS: &[&str] = &["a", "b", "c"];
const NAMESPACES: &[&str] = &["default", "other"];
const NAMES: &[&str] = &["a.com", "www.a.com", "x.org"];
const SELECTORS: &[(bool, &str)] = &[
    (false, "a.com"),
    (true, "*.a.com"),
    (false, "x.org"),
    (true, "**.com"),
];
const CIDRS: &[(u32, u8)] = &[
    (0xC000_0200, 24),
    (0xC000_0000, 16),
    (0xC633_6400, 24),
    (0, 0),
];
const PORTS: &[(u16, u16)] = &[(53, 0), (80, 0), (443, 0), (8000, 8003), (0, 0)];
const PROTOS: &[&str] = &["TCP", "UDP", "ANY"];

#[derive(Clone, Debug)]
enum PeerGen {
    None,
    Endpoints {
        app: Option<usize>,
        namespace: Option<usize>,
    },
    Entity(&'static str),
    Cidr {
        cidr: usize,
        except: Option<usize>,
    },
    Fqdns(Vec<usize>),
}

#[derive(Clone, Debug)]
struct PortGen {
    port: usize,
    proto: usize,
    dns: bool,
}

#[derive(Clone, Debug)]
struct RuleGen {
    peer: PeerGen,
    ports: Vec<PortGen>,
}

#[derive(Clone, Debug)]
struct PolicyGen {
    namespace: usize,
    subject_app: Option<usize>,
    default_deny: bool,
    egress: Vec<RuleGen>,
    deny: Vec<RuleGen>,
}

fn peer() -> impl Strategy<Value = PeerGen> {
    prop_oneof![
        2 => Just(PeerGen::None),
        3 => (prop::option::of(0..APPS.len()), prop::option::of(0..NAMESPACES.len()))
            .prop_map(|(app, namespace)| PeerGen::Endpoints { app, namespace }),
        2 => prop::sample::select(&["world", "cluster", "all"][..]).prop_map(PeerGen::Entity),
        2 => (0..CIDRS.len(), prop::option::of(0..CIDRS.len()))
            .prop_map(|(cidr, except)| PeerGen::Cidr { cidr, except }),
        3 => prop::collection::vec(0..SELECTORS.len(), 1..3).prop_map(PeerGen::Fqdns),
    ]
}

fn rule(deny: bool) -> impl Strategy<Value = RuleGen> {
    (
        peer(),
        prop::collection::vec((0..PORTS.len(), 0..PROTOS.len(), any::<bool>()), 0..3),
    )
        .prop_map(move |(peer, ports)| {
            let peer = match peer {
                PeerGen::Fqdns(_) if deny => PeerGen::None,
                p => p,
            };
            let ports = ports
                .into_iter()
                .map(|(port, proto, dns)| PortGen {
                    port,
                    proto,
                    // DNS rules: egress only, on port 53 alone (no range, not port 0).
                    dns: dns && !deny && PORTS[port] == (53, 0),
                })
                .collect();
            RuleGen { peer, ports }
        })
}

fn policy() -> impl Strategy<Value = PolicyGen> {
    (
        0..NAMESPACES.len(),
        prop::option::of(0..APPS.len()),
        prop::bool::weighted(0.8),
        prop::collection::vec(rule(false), 1..3),
        prop::collection::vec(rule(true), 0..2),
    )
        .prop_map(
            |(namespace, subject_app, default_deny, egress, deny)| PolicyGen {
                namespace,
                subject_app,
                default_deny,
                egress,
                deny,
            },
        )
}

fn cidr_text(i: usize) -> String {
    let (addr, len) = CIDRS[i];
    format!("{}/{len}", Ipv4Addr::from(addr))
}

fn yaml(policies: &[PolicyGen]) -> String {
    let mut out = String::new();
    for (i, p) in policies.iter().enumerate() {
        write!(out, "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: p{i}, namespace: {}}}\nspec:\n", NAMESPACES[p.namespace]).unwrap();
        match p.subject_app {
            Some(app) => writeln!(
                out,
                "  endpointSelector: {{matchLabels: {{app: {}}}}}",
                APPS[app]
            )
            .unwrap(),
            None => out.push_str("  endpointSelector: {}\n"),
        }
        if !p.default_deny {
            out.push_str("  enableDefaultDeny: {egress: false}\n");
        }
        for (key, rules) in [("egress", &p.egress), ("egressDeny", &p.deny)] {
            if rules.is_empty() {
                continue;
            }
            writeln!(out, "  {key}:").unwrap();
            for r in rules {
                out.push_str("    - {");
                match &r.peer {
                    PeerGen::None => {}
                    PeerGen::Endpoints { app, namespace } => {
                        let mut labels = Vec::new();
                        if let Some(a) = app {
                            labels.push(format!("app: {}", APPS[*a]));
                        }
                        if let Some(n) = namespace {
                            labels.push(format!(
                                "k8s:io.kubernetes.pod.namespace: {}",
                                NAMESPACES[*n]
                            ));
                        }
                        write!(
                            out,
                            "toEndpoints: [{{matchLabels: {{{}}}}}], ",
                            labels.join(", ")
                        )
                        .unwrap();
                    }
                    PeerGen::Entity(e) => write!(out, "toEntities: [{e}], ").unwrap(),
                    PeerGen::Cidr { cidr, except } => {
                        let except = except
                            .filter(|e| contained(*e, *cidr) && e != cidr)
                            .map(|e| format!(", except: [{}]", cidr_text(e)))
                            .unwrap_or_default();
                        write!(out, "toCIDRSet: [{{cidr: {}{except}}}], ", cidr_text(*cidr))
                            .unwrap();
                    }
                    PeerGen::Fqdns(sels) => {
                        let items: Vec<String> = sels
                            .iter()
                            .map(|s| {
                                let (pattern, text) = SELECTORS[*s];
                                format!(
                                    "{{{}: \"{text}\"}}",
                                    if pattern { "matchPattern" } else { "matchName" }
                                )
                            })
                            .collect();
                        write!(out, "toFQDNs: [{}], ", items.join(", ")).unwrap();
                    }
                }
                if !r.ports.is_empty() {
                    out.push_str("toPorts: [");
                    for pg in &r.ports {
                        let (port, end) = PORTS[pg.port];
                        let end = if end > 0 {
                            format!(", endPort: {end}")
                        } else {
                            String::new()
                        };
                        write!(
                            out,
                            "{{ports: [{{port: \"{port}\", protocol: {}{end}}}]",
                            PROTOS[pg.proto]
                        )
                        .unwrap();
                        if pg.dns {
                            out.push_str(", rules: {dns: [{matchPattern: \"*.a.com\"}]}");
                        }
                        out.push_str("}, ");
                    }
                    out.push(']');
                }
                out.push_str("}\n");
            }
        }
    }
    out
}

fn contained(inner: usize, outer: usize) -> bool {
    let (ia, il) = CIDRS[inner];
    let (oa, ol) = CIDRS[outer];
    il >= ol && (ol == 0 || (ia >> (32 - u32::from(ol))) == (oa >> (32 - u32::from(ol))))
}

fn in_cidr(ip: u32, i: usize) -> bool {
    let (addr, len) = CIDRS[i];
    len == 0 || (ip >> (32 - u32::from(len))) == (addr >> (32 - u32::from(len)))
}

/// What a destination is, as the interpreter sees it.
#[derive(Clone, Debug, PartialEq)]
enum Dest {
    Pod {
        app: usize,
        namespace: usize,
    },
    /// An IP learned for these selector indices.
    Fqdn(BTreeSet<usize>, u32),
    /// Inside the CIDR with this index (the longest containing one used in a rule).
    Cidr(usize),
    World,
}

struct World {
    policies: Vec<PolicyGen>,
    pods: Vec<(usize, usize)>, // (app, namespace) per endpoint; IP 10.0.0.(i+1)
    fqdn: BTreeMap<u32, Vec<usize>>, // IP -> names
}

impl World {
    fn pod_ip(i: usize) -> u32 {
        0x0A00_0001 + u32::try_from(i).unwrap()
    }

    fn dest(&self, ip: u32) -> Dest {
        if let Some(i) = (0..self.pods.len()).find(|&i| Self::pod_ip(i) == ip) {
            let (app, namespace) = self.pods[i];
            return Dest::Pod { app, namespace };
        }
        if let Some(names) = self.fqdn.get(&ip) {
            // Only the selectors some policy uses label IPs.
            let used: BTreeSet<usize> = self
                .policies
                .iter()
                .flat_map(|p| p.egress.iter())
                .filter_map(|r| match &r.peer {
                    PeerGen::Fqdns(s) => Some(s.iter().copied()),
                    _ => None,
                })
                .flatten()
                .collect();
            let selected: BTreeSet<usize> = used
                .into_iter()
                .filter(|&s| {
                    let (pattern, text) = SELECTORS[s];
                    let sel = if pattern {
                        FqdnSelector::match_pattern(text)
                    } else {
                        FqdnSelector::match_name(text)
                    }
                    .unwrap();
                    names.iter().any(|n| sel.matches(NAMES[*n]))
                })
                .collect();
            if !selected.is_empty() {
                return Dest::Fqdn(selected, ip);
            }
        }
        // CIDR prefixes in use (allow or except), longest containing one; /0 is not inserted.
        let mut used = BTreeSet::new();
        for p in &self.policies {
            for r in p.egress.iter().chain(&p.deny) {
                if let PeerGen::Cidr { cidr, except } = &r.peer {
                    used.insert(*cidr);
                    if let Some(e) = except.filter(|e| contained(*e, *cidr) && e != cidr) {
                        used.insert(e);
                    }
                }
            }
        }
        used.into_iter()
            .filter(|&c| CIDRS[c].1 > 0 && in_cidr(ip, c))
            .max_by_key(|&c| CIDRS[c].1)
            .map_or(Dest::World, Dest::Cidr)
    }

    fn subject_selects(p: &PolicyGen, (app, namespace): (usize, usize)) -> bool {
        p.namespace == namespace && p.subject_app.is_none_or(|a| a == app)
    }

    /// Whether the rule's peer selects the destination (None: the peer is "any", identity 0).
    fn peer_selects(p: &PolicyGen, peer: &PeerGen, dest: &Dest) -> Option<bool> {
        Some(match (peer, dest) {
            (PeerGen::None | PeerGen::Entity("all"), _) => return None,
            (
                PeerGen::Endpoints { app, namespace },
                Dest::Pod {
                    app: da,
                    namespace: dn,
                },
            ) => app.is_none_or(|a| a == *da) && namespace.unwrap_or(p.namespace) == *dn,
            (PeerGen::Entity("cluster"), d) => matches!(d, Dest::Pod { .. }),
            (PeerGen::Entity(_), d) => !matches!(d, Dest::Pod { .. }),
            (PeerGen::Cidr { cidr, except }, Dest::Cidr(c)) => {
                let except = except.filter(|e| contained(*e, *cidr) && e != cidr);
                contained(*c, *cidr) && except.is_none_or(|e| !contained(*c, e))
            }
            // A /0 CIDR selects `world` (not pods).
            (PeerGen::Cidr { cidr, .. }, Dest::World) => CIDRS[*cidr].1 == 0,
            (PeerGen::Fqdns(sels), Dest::Fqdn(selected, _)) => {
                sels.iter().any(|s| selected.contains(s))
            }
            // A learned IP inside a CIDR the policies name is selected by it (and its except).
            (PeerGen::Cidr { cidr, except }, Dest::Fqdn(_, ip)) => {
                let except = except.filter(|e| contained(*e, *cidr) && e != cidr);
                in_cidr(*ip, *cidr) && except.is_none_or(|e| !in_cidr(*ip, e))
            }
            _ => false,
        })
    }

    /// Every entry that covers the packet: (identity-specific, lpm length, action: 0 allow,
    /// 1 redirect, 2 deny).
    fn candidates(&self, from: usize, ip: u32, proto: u8, port: u16) -> Vec<(bool, u8, u8)> {
        let src = self.pods[from];
        let dest = self.dest(ip);
        let selecting: Vec<&PolicyGen> = self
            .policies
            .iter()
            .filter(|p| Self::subject_selects(p, src))
            .collect();
        let egress_policies: Vec<&&PolicyGen> = selecting
            .iter()
            .filter(|p| !p.egress.is_empty() || !p.deny.is_empty())
            .collect();
        let default_deny = egress_policies.iter().any(|p| p.default_deny);
        // Candidate entries: (identity-specific, lpm length, action 0 allow / 1 redirect / 2 deny).
        let mut cands: Vec<(bool, u8, u8)> = Vec::new();
        if !default_deny {
            cands.push((false, 0, 0));
        }
        for p in &selecting {
            for (rules, deny) in [(&p.egress, false), (&p.deny, true)] {
                for r in rules {
                    let empty = matches!(r.peer, PeerGen::None) && r.ports.is_empty();
                    if empty {
                        continue;
                    }
                    let specific = match Self::peer_selects(p, &r.peer, &dest) {
                        None => false,
                        Some(true) => true,
                        Some(false) => continue,
                    };
                    if r.ports.is_empty() {
                        cands.push((specific, 0, if deny { 2 } else { 0 }));
                    }
                    for pg in &r.ports {
                        let (start, end) = PORTS[pg.port];
                        let protos: &[u8] = match PROTOS[pg.proto] {
                            "TCP" => &[PROTO_TCP],
                            "UDP" => &[PROTO_UDP],
                            _ => &[PROTO_TCP, PROTO_UDP, PROTO_SCTP],
                        };
                        let action = if deny { 2 } else { u8::from(pg.dns) };
                        if start == 0 {
                            if PROTOS[pg.proto] == "ANY" {
                                cands.push((specific, 0, action));
                            } else if protos.contains(&proto) {
                                cands.push((specific, 8, action));
                            }
                            continue;
                        }
                        if !protos.contains(&proto) {
                            continue;
                        }
                        let end = end.max(start);
                        // The aligned block of the range that holds `port`.
                        for (block, len) in
                            fqdnpath_policy::policymap::port_range_prefixes(start, end)
                        {
                            let size = 1u32 << (16 - len);
                            if u32::from(port) >= u32::from(block)
                                && u32::from(port) < u32::from(block) + size
                            {
                                cands.push((specific, 8 + len, action));
                            }
                        }
                    }
                }
            }
        }
        cands
    }

    /// (verdict, drop reason) for a packet from endpoint `from` to `ip`.
    fn judge(&self, from: usize, ip: u32, proto: u8, port: u16) -> (Verdict, Option<DropReason>) {
        let cands = self.candidates(from, ip, proto, port);
        // Entries on the same key merge: deny wins, a redirect absorbs an allow.
        let best = |specific: bool| -> Option<(u8, u8)> {
            let len = cands
                .iter()
                .filter(|c| c.0 == specific)
                .map(|c| c.1)
                .max()?;
            let action = cands
                .iter()
                .filter(|c| c.0 == specific && c.1 == len)
                .map(|c| c.2)
                .max()?;
            Some((len, action))
        };
        let prec = |a: u8| match a {
            2 => u32::MAX,
            1 => 2,
            _ => 1,
        };
        // Deny wins whatever the specificity (Cilium's map computation makes it so).
        if cands.iter().any(|c| c.2 == 2) {
            return (Verdict::Dropped, Some(DropReason::PolicyDeny));
        }
        let (l3, l4) = (best(true), best(false));
        let chosen = match (l3, l4) {
            (Some((_, 2)), _) => Some(2),
            (Some((la, aa)), Some((lb, ab))) => Some(
                if prec(ab) > prec(aa) || (prec(ab) == prec(aa) && lb > la) {
                    ab
                } else {
                    aa
                },
            ),
            (Some((_, a)), None) | (None, Some((_, a))) => Some(a),
            (None, None) => None,
        };
        match chosen {
            None => (Verdict::Dropped, Some(DropReason::PolicyDenied)),
            Some(2) => (Verdict::Dropped, Some(DropReason::PolicyDeny)),
            Some(1) => (Verdict::Redirected, None),
            Some(_) => (Verdict::Forwarded, None),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compiled_maps_judge_like_the_rules(
        policies in prop::collection::vec(policy(), 1..4),
        pods in prop::collection::vec((0..APPS.len(), 0..NAMESPACES.len()), 1..4),
        fqdn in prop::collection::btree_map(0u32..6, prop::collection::vec(0..NAMES.len(), 1..3), 0..4),
        packets in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, 0u32..8, prop::sample::select(&[PROTO_TCP, PROTO_UDP][..]), prop::sample::select(&[53u16, 80, 443, 8001, 8004, 9999][..])), 1..24),
    ) {
        let fqdn: BTreeMap<u32, Vec<usize>> = fqdn.into_iter().map(|(k, v)| (0xC000_0200 + k, v)).collect();
        let world = World { policies: policies.clone(), pods: pods.clone(), fqdn: fqdn.clone() };
        let text = yaml(&policies);
        let loaded = load_str("gen.yaml", &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let manifests = loaded.network_policies();
        let endpoints: Vec<Endpoint> = pods.iter().enumerate().map(|(i, (app, ns))| Endpoint {
            id: EndpointId(u16::try_from(i + 1).unwrap()),
            namespace: NAMESPACES[*ns].into(),
            name: format!("pod-{i}"),
            labels: BTreeMap::from([("app".to_owned(), APPS[*app].to_owned())]),
            ips: vec![IpAddr::V4(World::pod_ip(i).into())],
        }).collect();
        let mut compiler = Compiler::new(&manifests, &endpoints).unwrap();
        let mut dp = ReferenceDatapath::default();
        dp.program(&compiler, &|_| true).unwrap();
        // The DNS state arrives afterwards, as deltas, as it does at run time.
        for (ip, names) in &fqdn {
            let names: BTreeSet<Fqdn> = names.iter().map(|n| Fqdn::new(NAMES[*n])).collect();
            dp.apply(&compiler.update_ip(IpAddr::V4((*ip).into()), names).unwrap()).unwrap();
        }
        let destinations = |k: u32| -> u32 {
            match k {
                0..=2 => World::pod_ip(k as usize),
                3 | 4 => 0xC000_0200 + (k - 3),     // learned or CIDR 192.0.2.0/24
                5 => 0xC000_0900,                   // 192.0.9.0: in /16 only
                6 => 0xC633_6401,                   // 198.51.100.1
                _ => 0x0808_0808,                   // world
            }
        };
        for (n, (from, _, dst, proto, port)) in packets.into_iter().enumerate() {
            let from = from.index(pods.len());
            let ip = destinations(dst);
            let packet = Packet {
                src: IpAddr::V4(World::pod_ip(from).into()),
                dst: IpAddr::V4(ip.into()),
                proto,
                sport: 30000 + u16::try_from(n).unwrap(),
                dport: port,
                flags: TcpFlags::default(),
            };
            let event = dp.egress(&packet, Timestamp::from_secs(1));
            let want = world.judge(from, ip, proto, port);
            prop_assert_eq!((event.verdict, event.drop_reason), want,
                "packet {:?} dest {:?}\npolicies:\n{}", packet, world.dest(ip), text);
        }
    }
}
