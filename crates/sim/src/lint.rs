//! `fqdnpath lint`: static findings on manifests and scenarios, each with its file and key
//! path, for the mistakes that make FQDN policy fail silently:
//!
//! - `lrp-dns-not-allowed`: an LRP redirects a DNS service (port 53) to local backends, and an
//!   egress rule whose DNS goes through the proxy allows peers that include none of those
//!   backends: DNS is redirected and dropped (the seed article's gotcha);
//! - `fqdns-without-dns-proxy`: a policy has `toFQDNs` for endpoints none of whose rules
//!   routes DNS (port 53 with `rules.dns`) through the proxy: nothing is learned, every
//!   connection to those names is dropped;
//! - `dns-cache-loop`: a node-local DNS cache forwards its misses to a service that an LRP
//!   redirects back to the cache itself;
//! - `fqdns-under-localdns`: `toFQDNs` in a cluster whose DNS is answered on the node
//!   (`dns-mode: localdns`), so the proxy never sees an answer;
//! - `selector-never-matches`: a selector that no DNS name can match (a label longer than 63
//!   bytes, a name longer than 253).

use std::collections::BTreeMap;
use std::path::Path;

use fqdnpath_names::name::labels;
use fqdnpath_policy::labels::{Labels, peer_selector, subject_selector};
use fqdnpath_policy::manifest::types::LabelSelector;
use fqdnpath_policy::manifest::{LocalRedirectPolicy, NetworkPolicy, read_text};
use fqdnpath_policy::{Located, Manifest, load_file, load_str};

use crate::scenario::{DnsMode, DnsRoleKind, Scenario, ScenarioError};

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// A short stable name (`lrp-dns-not-allowed`, ...).
    pub code: &'static str,
    /// The file (and document) it concerns.
    pub origin: String,
    /// The key path inside it.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {} [{}]",
            self.origin, self.path, self.message, self.code
        )
    }
}

/// A pod's labels as the linter knows them (from a scenario; plain manifests have none).
struct PodLabels {
    namespace: String,
    labels: Labels,
}

/// Lints files: each scenario (`apiVersion: fqdnpath/v1`) on its own, and all the plain
/// manifest files together (an LRP in one file and a policy in another meet).
pub fn lint_files(paths: &[&Path]) -> Result<Vec<Finding>, ScenarioError> {
    let mut findings = Vec::new();
    let mut manifests = Vec::new();
    for path in paths {
        let file = path.display().to_string();
        let text = read_text(path)?;
        if text.contains("fqdnpath/v1") && text.contains("Scenario") {
            findings.extend(lint_scenario(&Scenario::load(path)?)?);
            continue;
        }
        let loaded = load_str(&file, &text).map_err(|e| ScenarioError::Invalid {
            file: file.clone(),
            path: String::new(),
            reason: e.to_string(),
        })?;
        manifests.extend(loaded.manifests);
    }
    findings.extend(lint_manifests(&manifests, &[], None));
    Ok(findings)
}

/// Lints a scenario: its manifests, with its pods, services and DNS mode.
pub fn lint_scenario(scenario: &Scenario) -> Result<Vec<Finding>, ScenarioError> {
    let mut manifests = Vec::new();
    for (i, source) in scenario.manifests.iter().enumerate() {
        let loaded = match (&source.path, &source.inline) {
            (Some(p), _) => load_file(&scenario.base.join(p)),
            (None, Some(text)) => {
                load_str(&format!("{} (manifests[{i}].inline)", scenario.file), text)
            }
            (None, None) => continue,
        }
        .map_err(|e| ScenarioError::Invalid {
            file: scenario.file.clone(),
            path: format!("manifests[{i}]"),
            reason: e.to_string(),
        })?;
        manifests.extend(loaded.manifests);
    }
    let mut pods: Vec<PodLabels> = scenario
        .cluster
        .pods
        .iter()
        .map(|p| PodLabels {
            namespace: p.namespace.clone(),
            labels: Labels::pod(&p.namespace, &p.labels),
        })
        .collect();
    pods.extend(scenario.cluster.daemonsets.iter().map(|d| PodLabels {
        namespace: d.namespace.clone(),
        labels: Labels::pod(&d.namespace, &d.labels),
    }));
    let mut findings = lint_manifests(&manifests, &pods, Some(scenario));
    if scenario.cluster.dns_mode == DnsMode::Localdns {
        for m in &manifests {
            if let Manifest::NetworkPolicy(p) = &m.value {
                for (path, _) in fqdn_rules(p) {
                    findings.push(Finding {
                        code: "fqdns-under-localdns",
                        origin: m.origin.to_string(),
                        path,
                        message: "toFQDNs never learns anything under dns-mode localdns: DNS is answered on the node before Cilium's proxy sees it (AKS LocalDNS); use toCIDR, or route DNS through the proxy".into(),
                    });
                }
            }
        }
    }
    // A node-local cache whose upstream service an LRP sends back to the cache.
    for (i, ds) in scenario.cluster.daemonsets.iter().enumerate() {
        let Some(dns) = &ds.dns else { continue };
        if dns.role != DnsRoleKind::Cache {
            continue;
        }
        let Some((ns, name)) = dns.upstream.as_deref().and_then(|u| u.split_once('/')) else {
            continue;
        };
        let cache_labels = Labels::pod(&ds.namespace, &ds.labels);
        for m in &manifests {
            if let Manifest::LocalRedirectPolicy(lrp) = &m.value
                && redirects_service(lrp, ns, name)
                && backend_selects(lrp, &ds.namespace, &cache_labels)
            {
                findings.push(Finding {
                    code: "dns-cache-loop",
                    origin: scenario.file.clone(),
                    path: format!("cluster.daemonsets[{i}].dns.upstream"),
                    message: format!(
                        "{}/{} forwards its misses to {ns}/{name}, which {} redirects back to {} itself: a loop (SERVFAIL). Forward to a service the LRP does not redirect, such as kube-dns-upstream",
                        ds.namespace, ds.name, m.origin, ds.name
                    ),
                });
            }
        }
    }
    Ok(findings)
}

fn redirects_service(lrp: &LocalRedirectPolicy, namespace: &str, name: &str) -> bool {
    lrp.spec
        .redirect_frontend
        .service_matcher
        .as_ref()
        .is_some_and(|s| s.namespace == namespace && s.service_name == name)
}

fn backend_selects(lrp: &LocalRedirectPolicy, namespace: &str, labels: &Labels) -> bool {
    let lrp_ns = lrp.metadata.namespace.as_deref().unwrap_or("default");
    lrp_ns == namespace
        && fqdnpath_policy::labels::EndpointSelector::from_k8s(
            &lrp.spec.redirect_backend.local_endpoint_selector,
        )
        .matches(labels)
}

/// The key path of a policy's `s`-th rule: `spec`, then `specs[i]`.
fn spec_path(p: &NetworkPolicy, s: usize) -> String {
    match (p.spec.is_some(), s) {
        (true, 0) => "spec".to_owned(),
        (true, n) => format!("specs[{}]", n - 1),
        (false, n) => format!("specs[{n}]"),
    }
}

/// The key paths of every `toFQDNs` rule of a policy, with the spec it belongs to.
fn fqdn_rules(p: &NetworkPolicy) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (s, spec) in p.rules().enumerate() {
        let base = spec_path(p, s);
        for (i, r) in spec.egress.iter().enumerate() {
            if !r.to_fqdns.is_empty() {
                out.push((format!("{base}.egress[{i}].toFQDNs"), s));
            }
        }
    }
    out
}

/// Whether a spec routes DNS through the proxy (port 53 with `rules.dns`).
fn routes_dns(spec: &fqdnpath_policy::manifest::types::Rule) -> bool {
    spec.egress.iter().any(|r| {
        r.to_ports.iter().any(|p| {
            p.rules.as_ref().and_then(|l| l.dns.as_ref()).is_some()
                && p.ports.iter().any(|pp| pp.port.0 == "53")
        })
    })
}

fn lint_manifests(
    manifests: &[Located<Manifest>],
    pods: &[PodLabels],
    scenario: Option<&Scenario>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let lrps: Vec<&LocalRedirectPolicy> = manifests
        .iter()
        .filter_map(|m| match &m.value {
            Manifest::LocalRedirectPolicy(l) => Some(l),
            _ => None,
        })
        .collect();
    let policies: Vec<(&Located<Manifest>, &NetworkPolicy)> = manifests
        .iter()
        .filter_map(|m| match &m.value {
            Manifest::NetworkPolicy(p) => Some((m, p)),
            _ => None,
        })
        .collect();
    lint_lrp_dns(&lrps, &policies, pods, scenario.is_some(), &mut findings);
    lint_fqdns_without_proxy(&policies, pods, &mut findings);
    for (m, p) in &policies {
        lint_selectors(m, p, &mut findings);
    }
    findings
}

type Policies<'a> = [(&'a Located<Manifest>, &'a NetworkPolicy)];

/// `lrp-dns-not-allowed`.
fn lint_lrp_dns(
    lrps: &[&LocalRedirectPolicy],
    policies: &Policies<'_>,
    pods: &[PodLabels],
    in_scenario: bool,
    findings: &mut Vec<Finding>,
) {
    for lrp in lrps {
        let Some(svc) = &lrp.spec.redirect_frontend.service_matcher else {
            continue;
        };
        let dns_port = svc.to_ports.is_empty() || svc.to_ports.iter().any(|p| p.port.0 == "53");
        if !dns_port {
            continue;
        }
        let lrp_ns = lrp
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        // The backends' labels: from the scenario's pods, else the selector's own labels.
        let mut backends: Vec<Labels> = pods
            .iter()
            .filter(|p| p.namespace == lrp_ns && backend_selects(lrp, &p.namespace, &p.labels))
            .map(|p| p.labels.clone())
            .collect();
        if backends.is_empty() && !in_scenario {
            backends.push(Labels::pod(
                &lrp_ns,
                &lrp.spec
                    .redirect_backend
                    .local_endpoint_selector
                    .match_labels,
            ));
        }
        for (m, p) in policies {
            let namespace = if p.is_clusterwide() {
                None
            } else {
                p.metadata.namespace.as_deref()
            };
            for (s, spec) in p.rules().enumerate() {
                let base = spec_path(p, s);
                for (i, r) in spec.egress.iter().enumerate() {
                    let dns_rule = r.to_ports.iter().any(|pr| {
                        pr.rules.as_ref().and_then(|l| l.dns.as_ref()).is_some()
                            && pr.ports.iter().any(|pp| pp.port.0 == "53")
                    });
                    if !dns_rule || r.to_endpoints.is_empty() {
                        continue;
                    }
                    let allowed = backends.iter().any(|b| {
                        r.to_endpoints
                            .iter()
                            .any(|sel| peer_selector(namespace, sel, false).matches(b))
                    });
                    if !allowed && !backends.is_empty() {
                        let fix = describe_selector(
                            &lrp.spec.redirect_backend.local_endpoint_selector,
                            &lrp_ns,
                        );
                        findings.push(Finding {
                            code: "lrp-dns-not-allowed",
                            origin: m.origin.to_string(),
                            path: format!("{base}.egress[{i}].toEndpoints"),
                            message: format!(
                                "DNS to {}/{} is redirected by the Local Redirect Policy {}/{} to pods this rule does not allow, so DNS is dropped and nothing is learned; add a toEndpoints entry for the redirect backends: {fix}",
                                svc.namespace, svc.service_name, lrp_ns, lrp.metadata.name
                            ),
                        });
                    }
                }
            }
        }
    }
}

/// `fqdns-without-dns-proxy`.
fn lint_fqdns_without_proxy(
    policies: &Policies<'_>,
    pods: &[PodLabels],
    findings: &mut Vec<Finding>,
) {
    for (m, p) in policies {
        let namespace = if p.is_clusterwide() {
            None
        } else {
            p.metadata.namespace.as_deref()
        };
        for (path, s) in fqdn_rules(p) {
            let Some(spec) = p.rules().nth(s) else {
                continue;
            };
            let subject = spec
                .endpoint_selector
                .as_ref()
                .map(|sel| subject_selector(namespace, sel));
            let routed = policies.iter().any(|(_, other)| {
                let other_ns = if other.is_clusterwide() {
                    None
                } else {
                    other.metadata.namespace.as_deref()
                };
                other.rules().any(|o| {
                    routes_dns(o)
                        && match (&subject, &o.endpoint_selector) {
                            // Same or overlapping subjects: the DNS rule covers the endpoints when
                            // it selects at least what this one selects (checked on the pods when
                            // known, else on the selector's own labels).
                            (Some(sub), Some(osel)) => {
                                let other_subject = subject_selector(other_ns, osel);
                                let candidates: Vec<&Labels> = pods
                                    .iter()
                                    .map(|p| &p.labels)
                                    .filter(|l| sub.matches(l))
                                    .collect();
                                if candidates.is_empty() {
                                    let own = Labels::pod(
                                        namespace.unwrap_or("default"),
                                        &spec
                                            .endpoint_selector
                                            .as_ref()
                                            .map(|s| s.match_labels.clone())
                                            .unwrap_or_default(),
                                    );
                                    other_subject.matches(&own)
                                } else {
                                    candidates.iter().all(|l| other_subject.matches(l))
                                }
                            }
                            _ => false,
                        }
                })
            });
            if !routed {
                findings.push(Finding {
                    code: "fqdns-without-dns-proxy",
                    origin: m.origin.to_string(),
                    path,
                    message: "no rule routes these endpoints' DNS through Cilium's DNS proxy (an egress rule to the DNS servers on port 53 with rules.dns), so no name is ever learned and every connection to them is dropped".into(),
                });
            }
        }
    }
}

/// `selector-never-matches`.
fn lint_selectors(m: &Located<Manifest>, p: &NetworkPolicy, findings: &mut Vec<Finding>) {
    for (s, spec) in p.rules().enumerate() {
        let base = spec_path(p, s);
        for (i, r) in spec.egress.iter().enumerate() {
            for (k, f) in r.to_fqdns.iter().enumerate() {
                let (field, value) = match (&f.match_name, &f.match_pattern) {
                    (Some(n), _) if !n.is_empty() => ("matchName", n),
                    (_, Some(pt)) => ("matchPattern", pt),
                    _ => continue,
                };
                let normal = fqdnpath_names::normalize(value);
                let long_label = labels(&normal).any(|l| l.replace('*', "").len() > 63);
                let long_name = normal.replace('*', "").len() > 254;
                if long_label || long_name {
                    findings.push(Finding {
                        code: "selector-never-matches",
                        origin: m.origin.to_string(),
                        path: format!("{base}.egress[{i}].toFQDNs[{k}].{field}"),
                        message: format!(
                            "{value:?} can never match a DNS name: {}",
                            if long_label {
                                "a label is longer than 63 bytes"
                            } else {
                                "the name is longer than 253 bytes"
                            }
                        ),
                    });
                }
            }
        }
    }
}

fn describe_selector(selector: &LabelSelector, namespace: &str) -> String {
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    labels.insert("k8s:io.kubernetes.pod.namespace".into(), namespace.into());
    for (k, v) in &selector.match_labels {
        labels.insert(
            if k.contains(':') {
                k.clone()
            } else {
                format!("k8s:{k}")
            },
            v.clone(),
        );
    }
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{matchLabels: {{{}}}}}", parts.join(", "))
}
