//! The checks of `toPorts`: the ports (numbers, names, protocols) and their L7 rules, and the
//! parsing of ports and protocols as Cilium's Go code parses them.

use fqdnpath_names::FqdnSelector;

use super::{Failure, fail, selector_failure};
use crate::manifest::types::{PortProtocol, PortRule};

/// At most this many ports in one `toPorts` entry (Cilium's `maxPorts`).
const MAX_PORTS: usize = 40;

/// Cilium's limit on the ports of one `toPorts` entry ([`MAX_PORTS`]).
pub(super) fn port_count(path: &str, ports: &[PortProtocol]) -> Result<(), Failure> {
    if ports.len() > MAX_PORTS {
        return fail(
            format!("{path}.ports"),
            format!("too many ports, the max is {MAX_PORTS}"),
        );
    }
    Ok(())
}

pub(super) fn port_rule(path: &str, rule: &PortRule, ingress: bool) -> Result<(), Failure> {
    let l7 = rule.rules.as_ref().filter(|r| !r.is_empty());
    let dns = l7
        .and_then(|r| r.dns.as_ref())
        .is_some_and(|d| !d.is_empty());
    if ingress && dns {
        return fail(
            format!("{path}.rules.dns"),
            "DNS rules are not allowed on ingress",
        );
    }
    if rule.server_names.iter().any(String::is_empty) {
        return fail(
            format!("{path}.serverNames"),
            "empty server name is not allowed",
        );
    }
    port_count(path, &rule.ports)?;
    let mut zero_port = false;
    for (k, port) in rule.ports.iter().enumerate() {
        let at = format!("{path}.ports[{k}]");
        let parsed = port_protocol(&at, port, dns)?;
        zero_port |= parsed == Some(0);
        if let (Some(p), Some(_)) = (parsed, l7)
            && port.end_port > i32::from(p)
        {
            return fail(
                format!("{at}.endPort"),
                if dns {
                    "DNS rules do not support port ranges"
                } else {
                    "L7 rules do not support port ranges"
                },
            );
        }
        if l7.is_some() && !dns && protocol(&port.protocol) != Some("TCP") {
            return fail(
                format!("{at}.protocol"),
                format!(
                    "L7 rules can only apply to TCP (not {}) except for DNS rules",
                    protocol(&port.protocol).unwrap_or("?")
                ),
            );
        }
    }
    let Some(l7) = l7 else {
        return Ok(());
    };
    if zero_port {
        return fail(
            format!("{path}.ports"),
            "L7 rules can not be used when a port is 0",
        );
    }
    let kinds = [l7.dns.is_some(), l7.http.is_some(), l7.kafka.is_some()]
        .iter()
        .filter(|k| **k)
        .count();
    if kinds > 1 {
        return fail(
            format!("{path}.rules"),
            "multiple L7 protocol rule types specified in single rule",
        );
    }
    if let Some(dns_rules) = &l7.dns {
        if rule.ports.is_empty() {
            return fail(
                format!("{path}.ports"),
                "port 53 must be specified for DNS rules",
            );
        }
        for (i, r) in dns_rules.iter().enumerate() {
            let at = format!("{path}.rules.dns[{i}]");
            if let Some(name) = r.match_name.as_deref().filter(|n| !n.is_empty()) {
                FqdnSelector::match_name(name).map_err(|e| selector_failure(&at, &e))?;
            }
            if let Some(pattern) = r.match_pattern.as_deref().filter(|p| !p.is_empty()) {
                FqdnSelector::match_pattern(pattern).map_err(|e| selector_failure(&at, &e))?;
            }
        }
    }
    Ok(())
}

/// The canonical protocol name for what a manifest wrote (`""` is `ANY`), if it is one.
pub(crate) fn protocol(written: &str) -> Option<&'static str> {
    const ALL: &[&str] = &[
        "TCP", "UDP", "SCTP", "ICMP", "ICMPV6", "VRRP", "IGMP", "ANY",
    ];
    if written.is_empty() {
        return Some("ANY");
    }
    ALL.iter()
        .copied()
        .find(|p| p.eq_ignore_ascii_case(written))
}

/// Checks one `ports` entry; returns its number, or `None` for a named port.
pub(super) fn port_protocol(
    path: &str,
    port: &PortProtocol,
    dns: bool,
) -> Result<Option<u16>, Failure> {
    let text = port.port.0.as_str();
    if text.is_empty() {
        return fail(format!("{path}.port"), "port must be specified");
    }
    if protocol(&port.protocol).is_none() {
        return fail(
            format!("{path}.protocol"),
            format!(
                "invalid protocol {:?}, must be {{ tcp | udp | sctp | icmp | icmpv6 | vrrp | igmp | any }}",
                port.protocol
            ),
        );
    }
    if is_svc_name(text) {
        return Ok(None);
    }
    let Some(number) = parse_go_uint(text).and_then(|n| u16::try_from(n).ok()) else {
        return fail(
            format!("{path}.port"),
            format!("unable to parse port {text:?}"),
        );
    };
    if dns && port.end_port > i32::from(number) {
        return fail(
            format!("{path}.endPort"),
            "DNS rules do not support port ranges",
        );
    }
    Ok(Some(number))
}

/// An IANA service name (RFC 6335 5.1): 1 to 15 of `[a-zA-Z0-9-]`, at least one letter, no
/// hyphen first, last or twice in a row. Such a port is a named port.
pub(crate) fn is_svc_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// Go's `strconv.ParseUint(s, 0, 64)`: decimal, or `0x`/`0o`/`0b`/leading-`0` prefixed, with
/// `_` between digits allowed only after a prefix.
pub(crate) fn parse_go_uint(s: &str) -> Option<u64> {
    let (digits, radix, prefixed) =
        if let Some(rest) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            (rest, 16, true)
        } else if let Some(rest) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
            (rest, 8, true)
        } else if let Some(rest) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
            (rest, 2, true)
        } else if s.len() > 1 && s.starts_with('0') {
            (&s[1..], 8, true)
        } else {
            (s, 10, false)
        };
    if digits.is_empty() || (!prefixed && digits.contains('_')) {
        return None;
    }
    if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    u64::from_str_radix(&clean, radix).ok()
}
