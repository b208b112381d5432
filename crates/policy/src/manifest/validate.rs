//! Cilium's validation of policies (`pkg/policy/api/rule_validation.go`) and of Local Redirect
//! Policies (`pkg/loadbalancer/redirectpolicy`), each failure with the key path it concerns.
//!
//! Where Cilium picks the first of several problems by Go map order, the order here is fixed:
//! the fields in the order the CRD lists them.
//!
//! The rules and their peers are checked here; ports and their L7 rules in `validate/ports.rs`,
//! CIDRs in `validate/cidr.rs`, Local Redirect Policies in `validate/lrp.rs`.

use fqdnpath_names::SelectorError;

use super::types::{
    CidrRule, EgressRule, IngressRule, LabelSelector, NetworkPolicy, Operator, Rule,
};

mod cidr;
mod lrp;
mod ports;

pub(crate) use cidr::{contains, parse_prefix};
pub(crate) use lrp::local_redirect_policy;
pub(crate) use ports::{parse_go_uint, protocol};

use cidr::{cidr, cidr_rule};
use ports::{MAX_PORTS, port_protocol, port_rule};

/// A validation failure: (key path, reason).
pub(crate) type Failure = (String, String);

fn fail<T>(path: impl Into<String>, reason: impl Into<String>) -> Result<T, Failure> {
    Err((path.into(), reason.into()))
}

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
