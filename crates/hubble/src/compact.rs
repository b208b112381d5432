//! The compact text form of a flow: one line in the style of `hubble observe`, as
//! `fqdnpath run` prints it (the simulator's output is a user-facing contract; this is its
//! printer).
//!
//! A flow of the transport layer:
//!
//! ```text
//! Nov 29 16:00:00.000 default/app:40000 (ID:256) -> kube-system/coredns-0:53 (ID:257) policy-verdict:L3-L4 EGRESS ALLOWED (UDP) REDIRECTED (to-proxy)
//! Nov 29 16:00:00.000 default/app:40002 (ID:256) -> 192.0.2.80:443 (ID:2) policy-verdict:none EGRESS DENIED (TCP) DROPPED (Policy denied)
//! ```
//!
//! - the time in UTC with milliseconds (`N/A` without one);
//! - each end as `namespace/pod` when it is a pod, else its address (an IPv6 address without
//!   brackets), then `:port` for TCP, UDP and SCTP, then its identity `(ID:n)`;
//! - the verdict: `policy-verdict:<match> <DIRECTION> DENIED (<protocol>) DROPPED (<reason>)`,
//!   `to-endpoint FORWARDED (<protocol>)` for a reply or an ingress packet,
//!   `policy-verdict:<match> <DIRECTION> ALLOWED (<protocol>) FORWARDED`, or
//!   `... ALLOWED (<protocol>) REDIRECTED (to-proxy)`; another verdict is its name and the
//!   protocol. `<match>` is Cilium's name of `policy_match_type` (`none`, `L3-L4`, ...), the
//!   protocol `TCP`, `UDP`, ..., or `TCP Flags: SYN, ACK` when the flow has TCP flags, and the
//!   reason Cilium's text of `drop_reason_desc` (`Policy denied`, `Policy denied by
//!   denylist`).
//!
//! A DNS message seen by the proxy names the pod (the destination of a response, the source of
//! a request):
//!
//! ```text
//! Nov 29 16:00:00.000 default/app dns-response www.example.com. A NOERROR [192.0.2.80]
//! Nov 29 16:00:00.000 default/app dns-request www.example.com. A
//! ```
//!
//! Another L7 flow is printed as a transport flow whose verdict part is `<kind>-<type>
//! <VERDICT>` (`http-request FORWARDED`).

use std::fmt;

use crate::endpoint::Endpoint;
use crate::enums::{DropReason, L7FlowType, TrafficDirection, Verdict};
use crate::flow::Flow;
use crate::l7::{Dns, Layer7};
use crate::layers::Layer4;

/// A flow's compact text form, written by its [`fmt::Display`]: one line, without the line
/// break.
#[derive(Clone, Copy, Debug)]
pub struct Compact<'a> {
    flow: &'a Flow,
}

/// The compact text form of `flow` (see the [module](self) for the format):
/// `compact(&flow).to_string()`, or `writeln!(out, "{}", compact(&flow))`.
pub fn compact(flow: &Flow) -> Compact<'_> {
    Compact { flow }
}

impl fmt::Display for Compact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flow = self.flow;
        match &flow.time {
            Some(time) => write!(f, "{} ", time.stamp_milli())?,
            None => f.write_str("N/A ")?,
        }
        if let Some(l7) = &flow.l7
            && let Some(dns) = &l7.dns
        {
            return write_dns(f, flow, l7, dns);
        }
        let (source_port, destination_port) = flow.l4.as_ref().and_then(Layer4::ports).unzip();
        let (source_ip, destination_ip) = flow
            .ip
            .as_ref()
            .map_or(("", ""), |ip| (ip.source.as_str(), ip.destination.as_str()));
        write_end(f, flow.source.as_ref(), source_ip, source_port)?;
        f.write_str(" -> ")?;
        write_end(
            f,
            flow.destination.as_ref(),
            destination_ip,
            destination_port,
        )?;
        f.write_str(" ")?;
        match &flow.l7 {
            Some(l7) => write_l7(f, flow, l7),
            None => write_verdict(f, flow),
        }
    }
}

/// One end: `namespace/pod` or the address, the port, the identity.
fn write_end(
    f: &mut fmt::Formatter<'_>,
    endpoint: Option<&Endpoint>,
    ip: &str,
    port: Option<u32>,
) -> fmt::Result {
    write_host(f, endpoint, ip)?;
    if let Some(port) = port {
        write!(f, ":{port}")?;
    }
    let identity = endpoint.and_then(|e| e.identity).unwrap_or(0);
    write!(f, " (ID:{identity})")
}

/// `namespace/pod`, else the address, else `unknown`.
fn write_host(f: &mut fmt::Formatter<'_>, endpoint: Option<&Endpoint>, ip: &str) -> fmt::Result {
    match endpoint.filter(|e| !e.pod_name.is_empty()) {
        Some(e) if e.namespace.is_empty() => f.write_str(&e.pod_name),
        Some(e) => write!(f, "{}/{}", e.namespace, e.pod_name),
        None if ip.is_empty() => f.write_str("unknown"),
        None => f.write_str(ip),
    }
}

fn write_verdict(f: &mut fmt::Formatter<'_>, flow: &Flow) -> fmt::Result {
    let proto = Protocol(flow.l4.as_ref());
    let label = match_label(flow.policy_match_type);
    let direction = &flow.traffic_direction;
    match &flow.verdict {
        Verdict::Dropped => {
            write!(
                f,
                "policy-verdict:{label} {direction} DENIED ({proto}) DROPPED ("
            )?;
            write_drop_reason(f, flow)?;
            f.write_str(")")
        }
        Verdict::Forwarded
            if flow.is_reply == Some(true) || *direction == TrafficDirection::Ingress =>
        {
            write!(f, "to-endpoint FORWARDED ({proto})")
        }
        Verdict::Forwarded => write!(
            f,
            "policy-verdict:{label} {direction} ALLOWED ({proto}) FORWARDED"
        ),
        Verdict::Redirected => write!(
            f,
            "policy-verdict:{label} {direction} ALLOWED ({proto}) REDIRECTED (to-proxy)"
        ),
        other => write!(f, "{other} ({proto})"),
    }
}

/// The verdict part of an L7 flow other than DNS: `http-request FORWARDED`.
fn write_l7(f: &mut fmt::Formatter<'_>, flow: &Flow, l7: &Layer7) -> fmt::Result {
    let kind = if l7.http.is_some() {
        "http"
    } else if l7.kafka.is_some() {
        "kafka"
    } else {
        "l7"
    };
    let l7_type = match &l7.l7_type {
        L7FlowType::Request => "request",
        L7FlowType::Response => "response",
        L7FlowType::Sample => "sample",
        _ => "unknown",
    };
    write!(f, "{kind}-{l7_type} {}", flow.verdict)
}

/// `<pod> dns-response <query> <qtypes> <rcode> [<ips>]`, or `<pod> dns-request <query>
/// <qtypes>`.
fn write_dns(f: &mut fmt::Formatter<'_>, flow: &Flow, l7: &Layer7, dns: &Dns) -> fmt::Result {
    let response = match l7.l7_type {
        L7FlowType::Response => true,
        L7FlowType::Request => false,
        _ => flow.is_reply == Some(true),
    };
    let ip = flow.ip.as_ref();
    if response {
        let ip = ip.map_or("", |i| i.destination.as_str());
        write_host(f, flow.destination.as_ref(), ip)?;
    } else {
        let ip = ip.map_or("", |i| i.source.as_str());
        write_host(f, flow.source.as_ref(), ip)?;
    }
    let qtypes = Joined(dns.qtypes.as_deref().unwrap_or_default(), ",");
    if response {
        let ips = Joined(dns.ips.as_deref().unwrap_or_default(), ",");
        write!(
            f,
            " dns-response {} {qtypes} {} [{ips}]",
            dns.query,
            dns.rcode_name()
        )
    } else {
        write!(f, " dns-request {} {qtypes}", dns.query)
    }
}

/// Cilium's text of a drop reason (`pkg/monitor/api/drop.go`) for the reasons fqdnpath's
/// datapath gives; the proto name for the others. No reason at all reads as a policy drop.
fn write_drop_reason(f: &mut fmt::Formatter<'_>, flow: &Flow) -> fmt::Result {
    let reason = match (&flow.drop_reason_desc, flow.drop_reason) {
        (DropReason::DropReasonUnknown, Some(code)) => {
            DropReason::from_number(i32::try_from(code).unwrap_or(i32::MAX))
        }
        (reason, _) => reason.clone(),
    };
    let text = match reason {
        DropReason::DropReasonUnknown | DropReason::PolicyDenied => "Policy denied",
        DropReason::PolicyDeny => "Policy denied by denylist",
        DropReason::InvalidSourceIp => "Invalid source ip",
        DropReason::InvalidPacketDropped => "Invalid packet",
        DropReason::CtTruncatedOrInvalidHeader => "CT: Truncated or invalid header",
        DropReason::UnsupportedL3Protocol => "Unsupported L3 protocol",
        DropReason::CtMapInsertionFailed => "CT: Map insertion failed",
        DropReason::InvalidIpv6ExtensionHeader => "Invalid IPv6 extension header",
        DropReason::IpFragmentationNotSupported => "IP fragmentation not supported",
        other => return write!(f, "{other}"),
    };
    f.write_str(text)
}

/// How `hubble observe` names a `policy_match_type`.
fn match_label(match_type: Option<u32>) -> &'static str {
    match match_type.unwrap_or(0) {
        0 => "none",
        1 => "L3-Only",
        2 => "L3-L4",
        3 => "L4-Only",
        4 => "all",
        5 => "L3-Proto",
        6 => "Proto-Only",
        _ => "unknown",
    }
}

/// The protocol part: `TCP`, `TCP Flags: SYN, ACK`, `UDP`, ...
struct Protocol<'a>(Option<&'a Layer4>);

impl fmt::Display for Protocol<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(l4) = self.0 else {
            return f.write_str("unknown protocol");
        };
        if let Some(tcp) = &l4.tcp {
            let Some(flags) = &tcp.flags else {
                return f.write_str("TCP");
            };
            f.write_str("TCP Flags: ")?;
            for (i, name) in flags.names().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(name)?;
            }
            return Ok(());
        }
        let name = if l4.udp.is_some() {
            "UDP"
        } else if l4.sctp.is_some() {
            "SCTP"
        } else if l4.icmpv4.is_some() {
            "ICMPv4"
        } else if l4.icmpv6.is_some() {
            "ICMPv6"
        } else if l4.vrrp.is_some() {
            "VRRP"
        } else if l4.igmp.is_some() {
            "IGMP"
        } else {
            "unknown protocol"
        };
        f.write_str(name)
    }
}

/// Strings joined by a separator, written without a temporary string.
struct Joined<'a>(&'a [String], &'static str);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(self.1)?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
