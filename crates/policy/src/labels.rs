//! Cilium's labels (`source:key=value`) and endpoint selectors over them.
//!
//! Every label has a source: `k8s` for pod and namespace labels, `reserved` for Cilium's own
//! (`reserved:world`, `reserved:host`), `cidr` and `fqdn` for the labels of IPs outside the
//! cluster. A selector key without a source (`app`) is `any:app`, which matches that key from
//! any source; `k8s:app` matches only the pod label.
//!
//! The selectors of a policy are rewritten the way Cilium's `ParseToCiliumRule` does before
//! they select anything: see [`subject_selector`] and [`peer_selector`].

use std::collections::BTreeSet;
use std::fmt;

use crate::manifest::types::{LabelSelector, Operator};

/// `k8s`: Kubernetes pod and namespace labels.
pub const SOURCE_K8S: &str = "k8s";
/// `reserved`: Cilium's special identities.
pub const SOURCE_RESERVED: &str = "reserved";
/// `cidr`: an IP prefix outside the cluster.
pub const SOURCE_CIDR: &str = "cidr";
/// `fqdn`: an FQDN selector that matched a name the IP was learned for.
pub const SOURCE_FQDN: &str = "fqdn";
/// `any`: in a selector, a key from any source.
pub const SOURCE_ANY: &str = "any";

/// The pod label that names the cluster (`io.cilium.k8s.policy.cluster`).
pub const CLUSTER_LABEL: &str = "io.cilium.k8s.policy.cluster";
/// The cluster name fqdnpath models: one cluster, Cilium's default name.
pub const CLUSTER_NAME: &str = "default";

/// The pod label that holds its namespace.
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
/// The prefix of the labels that carry a namespace's own labels onto its pods.
pub const NAMESPACE_LABELS_PREFIX: &str = "io.cilium.k8s.namespace.labels.";

/// One label.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// Where it comes from: `k8s`, `reserved`, `cidr`, `fqdn`, ...
    pub source: String,
    /// The key.
    pub key: String,
    /// The value (empty for `reserved:` and `fqdn:` labels).
    pub value: String,
}

impl Label {
    /// A label from its parts.
    pub fn new(source: &str, key: &str, value: &str) -> Self {
        Self {
            source: source.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }

    /// Parses `source:key=value` (`key=value` has `default_source`).
    pub fn parse(text: &str, default_source: &str) -> Self {
        let (source, rest) = split_source(text, default_source);
        let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
        Self::new(source, key, value)
    }
}

/// Splits `source:rest` at the first `:`; without one, the source is `default_source`.
fn split_source<'a>(text: &'a str, default_source: &'a str) -> (&'a str, &'a str) {
    text.split_once(':').unwrap_or((default_source, text))
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.key)?;
        if !self.value.is_empty() {
            write!(f, "={}", self.value)?;
        }
        Ok(())
    }
}

/// A set of labels: what an endpoint or an identity is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(BTreeSet<Label>);

impl Labels {
    /// No labels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a label.
    pub fn insert(&mut self, label: Label) {
        self.0.insert(label);
    }

    /// Every label, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// How many labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a label with this source and key is present.
    pub fn has(&self, source: &str, key: &str) -> bool {
        self.0.iter().any(|l| l.source == source && l.key == key)
    }

    /// The values of `key` under `source` (`any` = every source).
    fn values<'a>(&'a self, source: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |l| l.key == key && (source == SOURCE_ANY || l.source == source))
            .map(|l| l.value.as_str())
    }

    /// The labels of a pod: its Kubernetes labels, its namespace and the cluster's name, all
    /// from `k8s`.
    pub fn pod<'a>(
        namespace: &str,
        labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Self {
        let mut out = Self::new();
        for (k, v) in labels {
            out.insert(Label::new(SOURCE_K8S, k, v));
        }
        out.insert(Label::new(SOURCE_K8S, POD_NAMESPACE_LABEL, namespace));
        out.insert(Label::new(SOURCE_K8S, CLUSTER_LABEL, CLUSTER_NAME));
        out
    }
}

impl FromIterator<Label> for Labels {
    fn from_iter<I: IntoIterator<Item = Label>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for label in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{label}")?;
        }
        Ok(())
    }
}

/// One requirement of an [`EndpointSelector`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The label source, or `any`.
    pub source: String,
    /// The label key.
    pub key: String,
    /// The test.
    pub operator: Operator,
    /// The values for `In` / `NotIn`.
    pub values: BTreeSet<String>,
    /// Whether it came from `matchLabels` (or `AddMatch`), which a later `AddMatch` on the
    /// same key replaces.
    pub label_match: bool,
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        let mut values = labels.values(&self.source, &self.key).peekable();
        match self.operator {
            Operator::Exists => values.peek().is_some(),
            Operator::DoesNotExist => values.peek().is_none(),
            Operator::In => values.any(|v| self.values.contains(v)),
            Operator::NotIn => !values.any(|v| self.values.contains(v)),
        }
    }
}

/// A label selector in Cilium's form: every key has a source (`any` when none was written).
/// It selects a set of labels when every requirement holds; no requirement selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointSelector {
    requirements: Vec<Requirement>,
}

impl EndpointSelector {
    /// The selector that selects every label set (`{}`).
    pub fn all() -> Self {
        Self::default()
    }

    /// Cilium's `NewESFromK8sLabelSelector("", s)`: keys without a source become `any:`.
    pub fn from_k8s(selector: &LabelSelector) -> Self {
        let mut out = Self::default();
        for (key, value) in &selector.match_labels {
            out.add_match(key, value);
        }
        for req in &selector.match_expressions {
            let (source, key) = split_source(&req.key, SOURCE_ANY);
            out.requirements.push(Requirement {
                source: source.to_owned(),
                key: key.to_owned(),
                operator: req.operator,
                values: req.values.iter().cloned().collect(),
                label_match: false,
            });
        }
        out
    }

    /// A selector of exactly one label: `source:key` present with `value`.
    pub fn label(source: &str, key: &str, value: &str) -> Self {
        Self {
            requirements: vec![Requirement {
                source: source.to_owned(),
                key: key.to_owned(),
                operator: Operator::In,
                values: BTreeSet::from([value.to_owned()]),
                label_match: true,
            }],
        }
    }

    /// A selector that `source:key` exists.
    pub fn exists(source: &str, key: &str) -> Self {
        Self {
            requirements: vec![Requirement {
                source: source.to_owned(),
                key: key.to_owned(),
                operator: Operator::Exists,
                values: BTreeSet::new(),
                label_match: false,
            }],
        }
    }

    /// Adds `key: value` (`key` may carry a source, as `k8s:app`), replacing any requirement
    /// on the same source and key (Cilium's `AddMatch`).
    pub fn add_match(&mut self, key: &str, value: &str) {
        let (source, key) = split_source(key, SOURCE_ANY);
        self.requirements
            .retain(|r| !(r.label_match && r.source == source && r.key == key));
        self.requirements.push(Requirement {
            source: source.to_owned(),
            key: key.to_owned(),
            operator: Operator::In,
            values: BTreeSet::from([value.to_owned()]),
            label_match: true,
        });
    }

    /// Adds an `Exists` requirement.
    pub fn add_exists(&mut self, key: &str) {
        let (source, key) = split_source(key, SOURCE_ANY);
        self.requirements.push(Requirement {
            source: source.to_owned(),
            key: key.to_owned(),
            operator: Operator::Exists,
            values: BTreeSet::new(),
            label_match: false,
        });
    }

    /// Whether some requirement is on `source:key` exactly.
    pub fn has_key(&self, source: &str, key: &str) -> bool {
        self.requirements
            .iter()
            .any(|r| r.source == source && r.key == key)
    }

    /// Whether some requirement's `source:key` starts with `prefix`.
    pub fn has_key_prefix(&self, prefix: &str) -> bool {
        self.requirements
            .iter()
            .any(|r| format!("{}:{}", r.source, r.key).starts_with(prefix))
    }

    /// The requirements.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether the selector selects `labels`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for EndpointSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requirements.is_empty() {
            return f.write_str("{}");
        }
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| {
                let key = format!("{}:{}", r.source, r.key);
                let values: Vec<&str> = r.values.iter().map(String::as_str).collect();
                match r.operator {
                    Operator::In if values.len() == 1 => format!("{key}={}", values[0]),
                    Operator::In => format!("{key} in ({})", values.join(",")),
                    Operator::NotIn => format!("{key} notin ({})", values.join(",")),
                    Operator::Exists => key,
                    Operator::DoesNotExist => format!("!{key}"),
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// The selector of the endpoints a rule applies to (Cilium's `ParseToCiliumRule`): for a
/// namespaced policy, `k8s:io.kubernetes.pod.namespace` is set to the policy's namespace,
/// replacing a `matchLabels` entry on it (a `CiliumNetworkPolicy` applies only in its own
/// namespace).
pub fn subject_selector(
    policy_namespace: Option<&str>,
    selector: &LabelSelector,
) -> EndpointSelector {
    let mut out = EndpointSelector::from_k8s(selector);
    if let Some(namespace) = policy_namespace {
        out.add_match(&format!("{SOURCE_K8S}:{POD_NAMESPACE_LABEL}"), namespace);
    }
    out
}

/// The selector of a `toEndpoints` / `fromEndpoints` peer (Cilium's `getEndpointSelector`):
/// - a selector naming a `reserved:` label stays as it is;
/// - one that names no namespace gets the policy's namespace (a `CiliumNetworkPolicy`), or
///   "any namespace" (`k8s:io.kubernetes.pod.namespace` exists) for a clusterwide policy,
///   so that an empty peer selector selects pods, not `reserved:` identities such as `world`.
///   (When the subject selects `reserved:init` endpoints, the clusterwide case adds nothing.)
pub fn peer_selector(
    policy_namespace: Option<&str>,
    selector: &LabelSelector,
    subject_matches_init: bool,
) -> EndpointSelector {
    let mut out = EndpointSelector::from_k8s(selector);
    if out.has_key_prefix(&format!("{SOURCE_RESERVED}:")) {
        return out;
    }
    let names_namespace = out.has_key(SOURCE_K8S, POD_NAMESPACE_LABEL)
        || out.has_key(SOURCE_ANY, POD_NAMESPACE_LABEL);
    if !names_namespace {
        match policy_namespace {
            None if !subject_matches_init => {
                out.add_exists(&format!("{SOURCE_K8S}:{POD_NAMESPACE_LABEL}"));
            }
            None => {}
            Some(namespace) => {
                let namespace_labels = out
                    .has_key_prefix(&format!("{SOURCE_K8S}:{NAMESPACE_LABELS_PREFIX}"))
                    || out.has_key_prefix(&format!("{SOURCE_ANY}:{NAMESPACE_LABELS_PREFIX}"));
                if !namespace_labels {
                    out.add_match(&format!("{SOURCE_K8S}:{POD_NAMESPACE_LABEL}"), namespace);
                }
            }
        }
    }
    out
}

/// The selectors an entity stands for (Cilium's `EntitySelectorMapping`), or `None` for a name
/// that is not an entity. `none` selects nothing; `all` everything; `cluster` the reserved
/// in-cluster identities and every pod of the cluster.
pub fn entity_selectors(entity: &str) -> Option<Vec<EndpointSelector>> {
    let reserved = |name: &str| EndpointSelector::exists(SOURCE_RESERVED, name);
    Some(match entity {
        "all" => vec![EndpointSelector::all()],
        "world" => vec![
            reserved("world"),
            reserved("world-ipv4"),
            reserved("world-ipv6"),
        ],
        "world-ipv4" | "world-ipv6" | "host" | "init" | "ingress" | "remote-node" | "health"
        | "unmanaged" | "kube-apiserver" | "none" => vec![reserved(entity)],
        "cluster" => vec![
            reserved("host"),
            reserved("remote-node"),
            reserved("init"),
            reserved("ingress"),
            reserved("health"),
            reserved("unmanaged"),
            reserved("kube-apiserver"),
            EndpointSelector::label(SOURCE_K8S, CLUSTER_LABEL, CLUSTER_NAME),
        ],
        _ => return None,
    })
}
