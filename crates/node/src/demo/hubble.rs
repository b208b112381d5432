//! The demo's Hubble flows: the kernel's flow events and the client's DNS answers turned into
//! [`fqdnpath_hubble::Flow`]s on the wall clock, which the crate's compact printer writes as
//! the simulator prints its flows (`fqdnpath run`), so that both read the same.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use fqdnpath_cache::{Observation, Timestamp};
use fqdnpath_datapath::{FlowEvent, PROTO_TCP, PROTO_UDP, Verdict};
use fqdnpath_hubble::{
    CiliumEventType, Dns, DropReason, Endpoint, Flow, FlowType, Icmp, Ip, L7FlowType, Layer4,
    Layer7, Sctp, TcpFlags, Time, TrafficDirection,
};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::DropReason as PolicyDropReason;

use crate::clock::now;

/// SCTP's IP protocol number.
const PROTO_SCTP: u8 = 132;
/// ICMP's IP protocol number.
const PROTO_ICMP: u8 = 1;
/// `ICMPv6`'s IP protocol number.
const PROTO_ICMPV6: u8 = 58;

/// Turns monotonic timestamps ([`now`], the clock of the eBPF program's flow events) into
/// wall-clock time (UTC), as Hubble stamps its flows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WallClock {
    /// Wall-clock nanoseconds since the Unix epoch minus monotonic nanoseconds.
    offset: i128,
}

impl WallClock {
    /// The offset between the two clocks, read now.
    pub(crate) fn new() -> Self {
        let mono = i128::from(now().as_nanos());
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0));
        Self {
            offset: wall - mono,
        }
    }

    /// The wall-clock time of the monotonic timestamp `t` (the Unix epoch if out of range).
    pub(crate) fn time(self, t: Timestamp) -> Time {
        let at = jiff::Timestamp::from_nanosecond(i128::from(t.as_nanos()) + self.offset)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        Time::from_timestamp(at)
    }
}

/// Who is behind an address: the demo's pods, each by its namespace and name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    /// (address, namespace, name).
    pods: Vec<(IpAddr, String, String)>,
}

impl Names {
    /// Names `ip` as `pod` (`namespace/name`).
    pub(crate) fn add(&mut self, ip: IpAddr, pod: &str) {
        let (namespace, name) = pod.split_once('/').unwrap_or(("", pod));
        self.pods.push((ip, namespace.to_owned(), name.to_owned()));
    }

    /// The pod at `ip` (`namespace/name`), or the address itself.
    pub(crate) fn describe(&self, ip: IpAddr) -> String {
        match self.pod(ip) {
            Some((namespace, name)) => format!("{namespace}/{name}"),
            None => ip.to_string(),
        }
    }

    fn pod(&self, ip: IpAddr) -> Option<(&str, &str)> {
        self.pods
            .iter()
            .find(|(a, _, _)| *a == ip)
            .map(|(_, namespace, name)| (namespace.as_str(), name.as_str()))
    }

    /// The end of a flow at `ip`: its pod if it is one, and its identity when known.
    fn endpoint(&self, ip: IpAddr, identity: Option<Identity>) -> Endpoint {
        let (namespace, pod_name) = self.pod(ip).unwrap_or_default();
        Endpoint {
            identity: identity.map(|i| i.0),
            namespace: namespace.to_owned(),
            pod_name: pod_name.to_owned(),
            ..Endpoint::default()
        }
    }
}

/// The TCP flags as Hubble lists them. The event keeps SYN, FIN and RST; ACK is on every
/// segment of a connection but its opening SYN (and a bare RST), so it is set from that.
fn tcp_flags(event: &FlowEvent) -> TcpFlags {
    let f = event.packet.flags;
    let opening = f.syn && !event.is_reply;
    TcpFlags {
        syn: f.syn,
        ack: !opening && !f.rst,
        fin: f.fin,
        rst: f.rst,
        ..TcpFlags::default()
    }
}

/// The transport header of the event's packet.
fn layer4(event: &FlowEvent) -> Option<Layer4> {
    let p = &event.packet;
    match p.proto {
        PROTO_TCP => {
            let mut l4 = Layer4::tcp(p.sport, p.dport);
            if let Some(tcp) = &mut l4.tcp {
                tcp.flags = Some(tcp_flags(event));
            }
            Some(l4)
        }
        PROTO_UDP => Some(Layer4::udp(p.sport, p.dport)),
        PROTO_SCTP => Some(Layer4 {
            sctp: Some(Sctp {
                source_port: Some(p.sport.into()),
                destination_port: Some(p.dport.into()),
            }),
            ..Layer4::default()
        }),
        PROTO_ICMP => Some(Layer4 {
            icmpv4: Some(Icmp::default()),
            ..Layer4::default()
        }),
        PROTO_ICMPV6 => Some(Layer4 {
            icmpv6: Some(Icmp::default()),
            ..Layer4::default()
        }),
        _ => None,
    }
}

/// One of the kernel's flow events as Hubble's flow, at `time`, its ends named by `names`.
pub(crate) fn flow(event: &FlowEvent, time: Time, names: &Names) -> Flow {
    let p = &event.packet;
    let verdict = fqdnpath_hubble::Verdict::from_name(event.verdict.name());
    // A drop is a drop notification, whose sub-type is the reason; the rest are policy
    // verdicts, as the simulator writes them.
    let reason = event.drop_reason.map(PolicyDropReason::code);
    let event_type = if event.verdict == Verdict::Dropped {
        CiliumEventType {
            event_type: Some(CiliumEventType::DROP),
            sub_type: reason.map(i32::from),
        }
    } else {
        CiliumEventType::of(CiliumEventType::POLICY_VERDICT)
    };
    Flow {
        time: Some(time),
        verdict,
        drop_reason: reason.map(u32::from),
        ip: Some(Ip::new(p.src, p.dst)),
        l4: layer4(event),
        source: Some(names.endpoint(p.src, Some(event.src_identity))),
        destination: Some(names.endpoint(p.dst, Some(event.dst_identity))),
        flow_type: FlowType::L3L4,
        event_type: Some(event_type),
        traffic_direction: if event.egress {
            TrafficDirection::Egress
        } else {
            TrafficDirection::Ingress
        },
        policy_match_type: Some(event.match_type.map_or(0, |m| u32::from(m.code()))),
        drop_reason_desc: reason.map_or(DropReason::DropReasonUnknown, |code| {
            DropReason::from_number(i32::from(code))
        }),
        is_reply: Some(event.is_reply),
        ..Flow::default()
    }
}

/// The DNS answer `answer` from `server` as the client at `client` got it, at `time`: an L7
/// flow, as the proxy's access log gives Hubble one.
pub(crate) fn dns_response(
    answer: &Observation,
    server: IpAddr,
    client: IpAddr,
    time: Time,
    names: &Names,
) -> Flow {
    Flow {
        time: Some(time),
        verdict: fqdnpath_hubble::Verdict::Forwarded,
        ip: Some(Ip::new(server, client)),
        source: Some(names.endpoint(server, None)),
        destination: Some(names.endpoint(client, None)),
        flow_type: FlowType::L7,
        event_type: Some(CiliumEventType::of(CiliumEventType::ACCESS_LOG)),
        traffic_direction: TrafficDirection::Egress,
        is_reply: Some(true),
        l7: Some(Layer7 {
            l7_type: L7FlowType::Response,
            dns: Some(Dns::response(
                answer.qname.as_str(),
                &answer.addresses,
                answer.ttl,
                &answer.cnames,
                u16::from(answer.rcode),
                answer.qtype.to_string(),
            )),
            ..Layer7::default()
        }),
        ..Flow::default()
    }
}

#[cfg(test)]
mod tests;
