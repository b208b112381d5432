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
use ports::{port_count, port_protocol, port_rule};

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

/// The checks of a rule's L3 peers, whose fields are named `to<Kind>` or `from<Kind>` as the
/// rule's `direction` says: Cilium allows one kind of peer in a rule ("not supported yet"), and
/// each endpoint selector, CIDR, CIDR set and entity must be valid. `others` are the other
/// kinds with how many entries each has; the kinds are listed in CRD order.
fn peers(
    path: &str,
    direction: &str,
    (endpoints, cidrs, cidr_sets, entities): (&[LabelSelector], &[String], &[CidrRule], &[String]),
    others: &[(&str, usize)],
) -> Result<(), Failure> {
    let checked = [
        ("Endpoints", endpoints.len()),
        ("CIDR", cidrs.len()),
        ("CIDRSet", cidr_sets.len()),
        ("Entities", entities.len()),
    ];
    let mut set = checked.iter().chain(others).filter(|(_, n)| *n > 0);
    if let (Some((a, _)), Some((b, _))) = (set.next(), set.next()) {
        return fail(
            path,
            format!(
                "combining {direction}{a} and {direction}{b} is not supported yet (use separate rules)"
            ),
        );
    }
    for (i, s) in endpoints.iter().enumerate() {
        label_selector(&format!("{path}.{direction}Endpoints[{i}]"), s)?;
    }
    for (i, c) in cidrs.iter().enumerate() {
        cidr(&format!("{path}.{direction}CIDR[{i}]"), c)?;
    }
    for (i, c) in cidr_sets.iter().enumerate() {
        cidr_rule(&format!("{path}.{direction}CIDRSet[{i}]"), c)?;
    }
    for (i, e) in entities.iter().enumerate() {
        if crate::labels::entity_selectors(e).is_none() {
            return fail(
                format!("{path}.{direction}Entities[{i}]"),
                format!("unsupported entity: {e}"),
            );
        }
    }
    Ok(())
}

/// The peer checks `egress` and `egressDeny` share.
fn egress_peers(path: &str, rule: &EgressRule) -> Result<(), Failure> {
    peers(
        path,
        "to",
        (
            &rule.to_endpoints,
            &rule.to_cidr,
            &rule.to_cidr_set,
            &rule.to_entities,
        ),
        &[
            ("Services", rule.to_services.len()),
            ("FQDNs", rule.to_fqdns.len()),
            ("Groups", rule.to_groups.len()),
            ("Nodes", rule.to_nodes.len()),
        ],
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
        port_count(&at, &p.ports)?;
        for (k, port) in p.ports.iter().enumerate() {
            port_protocol(&format!("{at}.ports[{k}]"), port, false)?;
        }
    }
    Ok(())
}

fn ingress(path: &str, rule: &IngressRule, deny: bool) -> Result<(), Failure> {
    peers(
        path,
        "from",
        (
            &rule.from_endpoints,
            &rule.from_cidr,
            &rule.from_cidr_set,
            &rule.from_entities,
        ),
        &[
            ("Nodes", rule.from_nodes.len()),
            ("Groups", rule.from_groups.len()),
        ],
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
