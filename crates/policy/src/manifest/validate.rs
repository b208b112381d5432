//! Cilium's validation of policies (`pkg/policy/api/rule_validation.go`) and of Local Redirect
//! Policies (`pkg/loadbalancer/redirectpolicy`), each failure with the key path it concerns.
//!
//! Where Cilium picks the first of several problems by Go map order, the order here is fixed:
//! the fields in the order the CRD lists them.

use std::net::IpAddr;

use fqdnpath_names::{FqdnSelector, SelectorError};

use super::types::{
    CidrRule, EgressRule, IngressRule, LabelSelector, LocalRedirectPolicy, LrpPort, NetworkPolicy,
    Operator, PortProtocol, PortRule, Rule,
};

/// A validation failure: (key path, reason).
pub(crate) type Failure = (String, String);

fn fail<T>(path: impl Into<String>, reason: impl Into<String>) -> Result<T, Failure> {
    Err((path.into(), reason.into()))
}

/// At most this many ports in one `toPorts` entry (Cilium's `maxPorts`).
const MAX_PORTS: usize = 40;

pub(crate) fn network_policy(policy: &NetworkPolicy) -> Result<(), Failure> {
    if policy.spec.is_none() && policy.specs.is_none() {
        return fail("spec", "a policy needs spec or specs (empty policy)");
    }
    if let Some(rule) = &policy.spec {
        self::rule("spec", rule)?;
    }
    for (i, rule) in policy.specs.iter().flatten().enumerate() {
        self::rule(&format!("specs[{i}]"), rule)?;
    }
    Ok(())
}

fn rule(path: &str, rule: &Rule) -> Result<(), Failure> {
    if rule.ingress.is_empty()
        && rule.ingress_deny.is_empty()
        && rule.egress.is_empty()
        && rule.egress_deny.is_empty()
    {
        return fail(
            path,
            "rule must have at least one of ingress, ingressDeny, egress, egressDeny",
        );
    }
    match (&rule.endpoint_selector, &rule.node_selector) {
        (None, None) => {
            return fail(
                path,
                "rule must have one of endpointSelector or nodeSelector",
            );
        }
        (Some(_), Some(_)) => {
            return fail(
                path,
                "rule cannot have both endpointSelector and nodeSelector",
            );
        }
        (Some(s), None) => label_selector(&format!("{path}.endpointSelector"), s)?,
        (None, Some(s)) => label_selector(&format!("{path}.nodeSelector"), s)?,
    }
    let host_policy = rule.node_selector.is_some();
    for (i, r) in rule.ingress.iter().enumerate() {
        ingress(&format!("{path}.ingress[{i}]"), r, false)?;
    }
    for (i, r) in rule.ingress_deny.iter().enumerate() {
        ingress(&format!("{path}.ingressDeny[{i}]"), r, true)?;
    }
    for (i, r) in rule.egress.iter().enumerate() {
        egress(&format!("{path}.egress[{i}]"), r, host_policy)?;
    }
    for (i, r) in rule.egress_deny.iter().enumerate() {
        egress_deny(&format!("{path}.egressDeny[{i}]"), r)?;
    }
    Ok(())
}

pub(crate) fn label_selector(path: &str, selector: &LabelSelector) -> Result<(), Failure> {
    for (i, req) in selector.match_expressions.iter().enumerate() {
        let at = format!("{path}.matchExpressions[{i}]");
        if req.key.is_empty() {
            return fail(format!("{at}.key"), "key must not be empty");
        }
        match req.operator {
            Operator::In | Operator::NotIn if req.values.is_empty() => {
                return fail(
                    format!("{at}.values"),
                    "values must be non-empty for the In and NotIn operators",
                );
            }
            Operator::Exists | Operator::DoesNotExist if !req.values.is_empty() => {
                return fail(
                    format!("{at}.values"),
                    "values must be empty for the Exists and DoesNotExist operators",
                );
            }
            _ => {}
        }
    }
    for key in selector.match_labels.keys() {
        if key.is_empty() {
            return fail(
                format!("{path}.matchLabels"),
                "label keys must not be empty",
            );
        }
    }
    Ok(())
}

/// The L3 peer fields of an egress rule with how many entries each has, in CRD order.
fn egress_l3(rule: &EgressRule) -> [(&'static str, usize); 8] {
    [
        ("toEndpoints", rule.to_endpoints.len()),
        ("toCIDR", rule.to_cidr.len()),
        ("toCIDRSet", rule.to_cidr_set.len()),
        ("toEntities", rule.to_entities.len()),
        ("toServices", rule.to_services.len()),
        ("toFQDNs", rule.to_fqdns.len()),
        ("toGroups", rule.to_groups.len()),
        ("toNodes", rule.to_nodes.len()),
    ]
}

/// Cilium: two kinds of L3 peer in one rule are "not supported yet".
fn single_l3(path: &str, members: &[(&'static str, usize)]) -> Result<(), Failure> {
    let mut set = members.iter().filter(|(_, n)| *n > 0);
    if let (Some((a, _)), Some((b, _))) = (set.next(), set.next()) {
        return fail(
            path,
            format!("combining {a} and {b} is not supported yet (use separate rules)"),
        );
    }
    Ok(())
}

fn peers(
    path: &str,
    endpoints: (&str, &[LabelSelector]),
    cidrs: (&str, &[String]),
    cidr_sets: (&str, &[CidrRule]),
    entities: (&str, &[String]),
) -> Result<(), Failure> {
    for (i, s) in endpoints.1.iter().enumerate() {
        label_selector(&format!("{path}.{}[{i}]", endpoints.0), s)?;
    }
    for (i, c) in cidrs.1.iter().enumerate() {
        cidr(&format!("{path}.{}[{i}]", cidrs.0), c)?;
    }
    for (i, c) in cidr_sets.1.iter().enumerate() {
        cidr_rule(&format!("{path}.{}[{i}]", cidr_sets.0), c)?;
    }
    for (i, e) in entities.1.iter().enumerate() {
        if crate::labels::entity_selectors(e).is_none() {
            return fail(
                format!("{path}.{}[{i}]", entities.0),
                format!("unsupported entity: {e}"),
            );
        }
    }
    Ok(())
}

/// The peer checks `egress` and `egressDeny` share: one kind of L3 peer, and each valid.
fn egress_peers(path: &str, rule: &EgressRule) -> Result<(), Failure> {
    single_l3(path, &egress_l3(rule))?;
    peers(
        path,
        ("toEndpoints", &rule.to_endpoints),
        ("toCIDR", &rule.to_cidr),
        ("toCIDRSet", &rule.to_cidr_set),
        ("toEntities", &rule.to_entities),
    )
}

fn egress(path: &str, rule: &EgressRule, host_policy: bool) -> Result<(), Failure> {
    egress_peers(path, rule)?;
    for (i, p) in rule.to_ports.iter().enumerate() {
        let at = format!("{path}.toPorts[{i}]");
        if let Some(rules) = &p.rules {
            if rules.kafka.is_some() || rules.l7proto.is_some() || rules.l7.is_some() {
                return fail(
                    format!("{at}.rules"),
                    "this L7 protocol is not supported on egress yet",
                );
            }
            if rules.http.is_some() && host_policy {
                return fail(
                    format!("{at}.rules.http"),
                    "L7 protocol HTTP is not supported on host egress yet",
                );
            }
        }
    }
    if !rule.icmps.is_empty() && !rule.to_ports.is_empty() {
        return fail(
            format!("{path}.icmps"),
            "the ICMPs block may only be present without ToPorts. Define a separate rule to use ToPorts",
        );
    }
    for (i, p) in rule.to_ports.iter().enumerate() {
        port_rule(&format!("{path}.toPorts[{i}]"), p, false)?;
    }
    for (i, f) in rule.to_fqdns.iter().enumerate() {
        let at = format!("{path}.toFQDNs[{i}]");
        f.selector().map_err(|e| selector_failure(&at, &e))?;
    }
    Ok(())
}

fn egress_deny(path: &str, rule: &EgressRule) -> Result<(), Failure> {
    if !rule.to_fqdns.is_empty() {
        return fail(
            format!("{path}.toFQDNs"),
            "toFQDNs is not allowed in egressDeny (Cilium's EgressDenyRule has no such field)",
        );
    }
    egress_peers(path, rule)?;
    if !rule.icmps.is_empty() && !rule.to_ports.is_empty() {
        return fail(
            format!("{path}.icmps"),
            "the ICMPs block may only be present without ToPorts. Define a separate rule to use ToPorts",
        );
    }
    for (i, p) in rule.to_ports.iter().enumerate() {
        let at = format!("{path}.toPorts[{i}]");
        if p.rules.is_some() {
            return fail(
                format!("{at}.rules"),
                "L7 rules are not allowed in egressDeny (Cilium's PortDenyRule has no rules)",
            );
        }
        if p.ports.len() > MAX_PORTS {
            return fail(
                format!("{at}.ports"),
                format!("too many ports, the max is {MAX_PORTS}"),
            );
        }
        for (k, port) in p.ports.iter().enumerate() {
            port_protocol(&format!("{at}.ports[{k}]"), port, false)?;
        }
    }
    Ok(())
}

fn ingress(path: &str, rule: &IngressRule, deny: bool) -> Result<(), Failure> {
    single_l3(
        path,
        &[
            ("fromEndpoints", rule.from_endpoints.len()),
            ("fromCIDR", rule.from_cidr.len()),
            ("fromCIDRSet", rule.from_cidr_set.len()),
            ("fromEntities", rule.from_entities.len()),
            ("fromNodes", rule.from_nodes.len()),
            ("fromGroups", rule.from_groups.len()),
        ],
    )?;
    peers(
        path,
        ("fromEndpoints", &rule.from_endpoints),
        ("fromCIDR", &rule.from_cidr),
        ("fromCIDRSet", &rule.from_cidr_set),
        ("fromEntities", &rule.from_entities),
    )?;
    for (i, p) in rule.to_ports.iter().enumerate() {
        let at = format!("{path}.toPorts[{i}]");
        if deny && p.rules.is_some() {
            return fail(
                format!("{at}.rules"),
                "L7 rules are not allowed in ingressDeny",
            );
        }
        port_rule(&at, p, true)?;
    }
    Ok(())
}

fn port_rule(path: &str, rule: &PortRule, ingress: bool) -> Result<(), Failure> {
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
    if rule.ports.len() > MAX_PORTS {
        return fail(
            format!("{path}.ports"),
            format!("too many ports, the max is {MAX_PORTS}"),
        );
    }
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

fn selector_failure(path: &str, error: &SelectorError) -> Failure {
    let field = match error {
        SelectorError::Empty { field }
        | SelectorError::TooLong { field, .. }
        | SelectorError::InvalidCharacter { field, .. }
        | SelectorError::EmptyLabel { field, .. } => format!(".{field}"),
        _ => String::new(),
    };
    (format!("{path}{field}"), error.to_string())
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
fn port_protocol(path: &str, port: &PortProtocol, dns: bool) -> Result<Option<u16>, Failure> {
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

/// An IP prefix `addr/len` (the address need not be the network address, as in Go).
pub(crate) fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if len.is_empty()
        || len.len() > 3
        || !len.bytes().all(|b| b.is_ascii_digit())
        || (len.len() > 1 && len.starts_with('0'))
    {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

/// Whether `prefix` contains `addr` (same family).
pub(crate) fn contains(prefix: (IpAddr, u8), addr: IpAddr) -> bool {
    match (prefix.0, addr) {
        (IpAddr::V4(p), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix.1)).unwrap_or(0);
            u32::from(p) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(p), IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.1))
                .unwrap_or(0);
            u128::from(p) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// A `toCIDR` entry: a prefix or a plain address.
fn cidr(path: &str, text: &str) -> Result<(), Failure> {
    if text.is_empty() {
        return fail(path, "IP must be specified");
    }
    if parse_prefix(text).is_some() || text.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    fail(path, format!("unable to parse CIDR {text:?}"))
}

fn cidr_rule(path: &str, rule: &CidrRule) -> Result<(), Failure> {
    let set = [
        rule.cidr.as_deref().is_some_and(|c| !c.is_empty()),
        rule.cidr_group_ref
            .as_deref()
            .is_some_and(|c| !c.is_empty()),
        rule.cidr_group_selector.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if set == 0 {
        return fail(
            path,
            "one of cidr, cidrGroupRef, or cidrGroupSelector is required",
        );
    }
    if set > 1 {
        return fail(
            path,
            "more than one of cidr, cidrGroupRef, or cidrGroupSelector may not be set",
        );
    }
    let Some(text) = rule.cidr.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(());
    };
    let Some(prefix) = parse_prefix(text) else {
        return fail(
            format!("{path}.cidr"),
            format!("unable to parse CIDRRule {text:?}"),
        );
    };
    for (i, except) in rule.except.iter().enumerate() {
        let Some(e) = parse_prefix(except) else {
            return fail(
                format!("{path}.except[{i}]"),
                format!("unable to parse {except:?} as a prefix"),
            );
        };
        if prefix.1 > e.1 || !contains(prefix, e.0) {
            return fail(
                format!("{path}.except[{i}]"),
                format!("allow CIDR prefix {text} does not contain exclude CIDR prefix {except}"),
            );
        }
    }
    Ok(())
}

pub(crate) fn local_redirect_policy(policy: &LocalRedirectPolicy) -> Result<(), Failure> {
    let spec = &policy.spec;
    let frontend = &spec.redirect_frontend;
    let (kind, ports, named) = match (&frontend.address_matcher, &frontend.service_matcher) {
        (None, None) => {
            return fail(
                "spec.redirectFrontend",
                "both address and service matchers can not be empty",
            );
        }
        (Some(_), Some(_)) => {
            return fail(
                "spec.redirectFrontend",
                "both address and service matchers can not be specified",
            );
        }
        (Some(address), None) => {
            if address.ip.parse::<IpAddr>().is_err() {
                return fail(
                    "spec.redirectFrontend.addressMatcher.ip",
                    format!("invalid address matcher IP {:?}", address.ip),
                );
            }
            if address.to_ports.is_empty() {
                return fail(
                    "spec.redirectFrontend.addressMatcher.toPorts",
                    "an address matcher needs at least one port",
                );
            }
            (
                "addressMatcher",
                &address.to_ports,
                address.to_ports.len() > 1,
            )
        }
        (None, Some(service)) => {
            if service.service_name.is_empty() {
                return fail(
                    "spec.redirectFrontend.serviceMatcher.serviceName",
                    "kubernetes service name can not be empty",
                );
            }
            let namespace = policy.metadata.namespace.as_deref().unwrap_or("default");
            if service.namespace != namespace {
                return fail(
                    "spec.redirectFrontend.serviceMatcher.namespace",
                    format!(
                        "kubernetes service namespace {:?} does not match the CiliumLocalRedirectPolicy namespace {namespace:?}",
                        service.namespace
                    ),
                );
            }
            (
                "serviceMatcher",
                &service.to_ports,
                service.to_ports.len() > 1,
            )
        }
    };
    let mut frontend_protocols = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("spec.redirectFrontend.{kind}.toPorts[{i}]");
        frontend_protocols.push(lrp_port(&at, port, named)?);
    }
    let backend = &spec.redirect_backend;
    label_selector(
        "spec.redirectBackend.localEndpointSelector",
        &backend.local_endpoint_selector,
    )?;
    if backend.to_ports.is_empty() {
        return fail(
            "spec.redirectBackend.toPorts",
            "backend ports must be specified",
        );
    }
    let named = named || backend.to_ports.len() > 1;
    let mut backend_protocols = Vec::new();
    for (i, port) in backend.to_ports.iter().enumerate() {
        let at = format!("spec.redirectBackend.toPorts[{i}]");
        backend_protocols.push(lrp_port(&at, port, named)?);
    }
    if frontend_protocols.len() == 1 && backend_protocols[0] != frontend_protocols[0] {
        return fail(
            "spec.redirectBackend.toPorts[0].protocol",
            "backend protocol must match with frontend protocol",
        );
    }
    Ok(())
}

/// Checks one LRP port (`SanitizePortInfo`); returns its protocol.
fn lrp_port(path: &str, port: &LrpPort, named: bool) -> Result<&'static str, Failure> {
    let text = port.port.0.as_str();
    if text.is_empty() {
        return fail(format!("{path}.port"), "port must be specified");
    }
    match parse_go_uint(text).and_then(|n| u16::try_from(n).ok()) {
        None => {
            return fail(
                format!("{path}.port"),
                format!("unable to parse port {text:?}"),
            );
        }
        Some(0) => return fail(format!("{path}.port"), "port cannot be 0"),
        Some(_) => {}
    }
    let name = port.name.as_deref().unwrap_or("");
    if named {
        if name.is_empty() {
            return fail(
                format!("{path}.name"),
                format!("port {text} must have a valid IANA_SVC_NAME, as there are multiple ports"),
            );
        }
        if !is_svc_name(name) {
            return fail(
                format!("{path}.name"),
                format!("port name {name} isn't a valid IANA_SVC_NAME"),
            );
        }
    }
    match protocol(&port.protocol) {
        Some(p @ ("TCP" | "UDP" | "SCTP")) => Ok(p),
        _ => fail(
            format!("{path}.protocol"),
            format!(
                "invalid protocol {:?}: must be TCP, UDP or SCTP",
                port.protocol
            ),
        ),
    }
}
