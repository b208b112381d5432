//! The shapes of Cilium's `cilium.io/v2` resources, field for field as their CRDs name them.
//!
//! Only what fqdnpath models is typed; every other key is reported as an unknown field (a
//! warning with its path, as kubectl does), never dropped silently. Egress is enforced; ingress
//! is parsed and kept but not enforced yet.
//!
//! A field the CRD lets one omit is `#[serde(default)]`; where every field of a struct may be
//! omitted, the struct says so once.

use std::collections::BTreeMap;
use std::fmt;

use fqdnpath_names::FqdnSelector;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// Kubernetes object metadata: the fields fqdnpath reads, plus the rest of `ObjectMeta` kept
/// as it is (not warned about: they are valid Kubernetes fields).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// `metadata.name`.
    #[serde(default)]
    pub name: String,
    /// `metadata.namespace`; a namespaced resource without one lands in `default`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The other `ObjectMeta` fields (uid, resourceVersion, ...), unread.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The `ObjectMeta` fields that are valid but unread here.
pub(crate) const OBJECT_META_FIELDS: &[&str] = &[
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
];

/// A Kubernetes label selector (`matchLabels`, `matchExpressions`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must be present with these values.
    pub match_labels: BTreeMap<String, String>,
    /// Requirements that must all hold.
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the key's value is tested.
    pub operator: Operator,
    /// The values for `In` and `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

/// A `matchExpressions` operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    /// The label's value is one of the values.
    In,
    /// The label is absent or its value is none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// `enableDefaultDeny`: whether selecting an endpoint turns on default deny per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DefaultDeny {
    /// For ingress; unset = true.
    pub ingress: Option<bool>,
    /// For egress; unset = true.
    pub egress: Option<bool>,
}

/// A port as written: `"53"`, `53`, or a named port such as `"dns"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PortText(pub String);

impl<'de> Deserialize<'de> for PortText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = PortText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortText, E> {
                Ok(PortText(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortText, E> {
                Ok(PortText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortText, E> {
                Ok(PortText(v.to_string()))
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

/// One `ports` entry of a `toPorts` rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PortProtocol {
    /// The port (or the first port of a range), or a named port.
    pub port: PortText,
    /// The last port of a range (`endPort`), 0 = no range.
    pub end_port: i32,
    /// `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6`, `VRRP`, `IGMP` or `ANY` (the default).
    pub protocol: String,
}

/// One `rules.dns` entry: a `matchName` and/or a `matchPattern` (both may be set here).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DnsRule {
    /// `matchName`.
    pub match_name: Option<String>,
    /// `matchPattern`.
    pub match_pattern: Option<String>,
}

/// `rules` of a `toPorts` entry: the L7 rules. fqdnpath models `dns`; the others are kept as
/// written (their presence matters to validation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct L7Rules {
    /// DNS rules: the names the DNS proxy lets through.
    pub dns: Option<Vec<DnsRule>>,
    /// HTTP rules (kept, not modelled).
    pub http: Option<Vec<serde_json::Value>>,
    /// Kafka rules (kept, not modelled).
    pub kafka: Option<Vec<serde_json::Value>>,
    /// Generic L7 protocol name (kept, not modelled).
    pub l7proto: Option<String>,
    /// Generic L7 rules (kept, not modelled).
    pub l7: Option<Vec<serde_json::Value>>,
}

impl L7Rules {
    /// Whether no L7 rule of any kind is set (Cilium's `IsEmpty`).
    pub fn is_empty(&self) -> bool {
        self.dns.is_none()
            && self.http.is_none()
            && self.kafka.is_none()
            && self.l7proto.is_none()
            && self.l7.is_none()
    }
}

/// A `toPorts` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PortRule {
    /// The ports.
    pub ports: Vec<PortProtocol>,
    /// L7 rules.
    pub rules: Option<L7Rules>,
    /// TLS SNI names (kept, not modelled).
    pub server_names: Vec<String>,
}

/// A `toCIDRSet` / `fromCIDRSet` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CidrRule {
    /// The CIDR.
    pub cidr: Option<String>,
    /// Prefixes inside `cidr` that are excluded.
    pub except: Vec<String>,
    /// A `CiliumCIDRGroup` by name (kept, not resolved).
    pub cidr_group_ref: Option<String>,
    /// A `CiliumCIDRGroup` by labels (kept, not resolved).
    pub cidr_group_selector: Option<LabelSelector>,
}

/// An egress rule (`egress[]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EgressRule {
    /// Peers selected by endpoint labels.
    pub to_endpoints: Vec<LabelSelector>,
    /// Peers by CIDR.
    #[serde(rename = "toCIDR")]
    pub to_cidr: Vec<String>,
    /// Peers by CIDR with exceptions.
    #[serde(rename = "toCIDRSet")]
    pub to_cidr_set: Vec<CidrRule>,
    /// Peers by entity (`world`, `cluster`, `kube-apiserver`, ...).
    pub to_entities: Vec<String>,
    /// Peers by DNS name, learned from DNS answers.
    #[serde(rename = "toFQDNs")]
    pub to_fqdns: Vec<FqdnSelectorFields>,
    /// Peers by Kubernetes service (kept, not modelled).
    pub to_services: Vec<serde_json::Value>,
    /// Peers by node labels (kept, not modelled).
    pub to_nodes: Vec<LabelSelector>,
    /// Peers by cloud group (kept, not modelled).
    pub to_groups: Vec<serde_json::Value>,
    /// Extra label requirements on the peers (deprecated in Cilium; kept).
    pub to_requires: Vec<LabelSelector>,
    /// Ports and L7 rules.
    pub to_ports: Vec<PortRule>,
    /// ICMP rules (kept, not modelled).
    pub icmps: Vec<serde_json::Value>,
}

/// An ingress rule (`ingress[]`, `ingressDeny[]`): parsed and kept, not enforced yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IngressRule {
    /// Peers selected by endpoint labels.
    pub from_endpoints: Vec<LabelSelector>,
    /// Peers by CIDR.
    #[serde(rename = "fromCIDR")]
    pub from_cidr: Vec<String>,
    /// Peers by CIDR with exceptions.
    #[serde(rename = "fromCIDRSet")]
    pub from_cidr_set: Vec<CidrRule>,
    /// Peers by entity.
    pub from_entities: Vec<String>,
    /// Peers by node labels.
    pub from_nodes: Vec<LabelSelector>,
    /// Peers by cloud group.
    pub from_groups: Vec<serde_json::Value>,
    /// Extra label requirements on the peers.
    pub from_requires: Vec<LabelSelector>,
    /// Ports and L7 rules.
    pub to_ports: Vec<PortRule>,
    /// ICMP rules.
    pub icmps: Vec<serde_json::Value>,
}

/// A `toFQDNs` entry as written (validated into an [`FqdnSelector`] by the loader).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FqdnSelectorFields {
    /// `matchName`.
    pub match_name: Option<String>,
    /// `matchPattern`.
    pub match_pattern: Option<String>,
}

impl FqdnSelectorFields {
    /// The validated selector.
    pub fn selector(&self) -> Result<FqdnSelector, fqdnpath_names::SelectorError> {
        FqdnSelector::from_fields(self.match_name.as_deref(), self.match_pattern.as_deref())
    }
}

/// One policy rule: a `spec` or an entry of `specs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Rule {
    /// The endpoints the rule applies to.
    pub endpoint_selector: Option<LabelSelector>,
    /// The nodes the rule applies to (host policy; kept, not modelled).
    pub node_selector: Option<LabelSelector>,
    /// Allowed egress.
    pub egress: Vec<EgressRule>,
    /// Denied egress (no `toFQDNs`, no L7 rules).
    pub egress_deny: Vec<EgressRule>,
    /// Allowed ingress (kept, not enforced yet).
    pub ingress: Vec<IngressRule>,
    /// Denied ingress (kept, not enforced yet).
    pub ingress_deny: Vec<IngressRule>,
    /// Per-direction default deny.
    pub enable_default_deny: DefaultDeny,
    /// Free text.
    pub description: Option<String>,
    /// Labels of the rule (kept).
    pub labels: Vec<serde_json::Value>,
}

/// `CiliumNetworkPolicy` or `CiliumClusterwideNetworkPolicy` (the same shape).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicy {
    /// `cilium.io/v2`.
    pub api_version: String,
    /// `CiliumNetworkPolicy` or `CiliumClusterwideNetworkPolicy`.
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: Metadata,
    /// One rule.
    #[serde(default)]
    pub spec: Option<Rule>,
    /// More rules.
    #[serde(default)]
    pub specs: Option<Vec<Rule>>,
    /// Status written by Cilium (ignored).
    #[serde(default)]
    pub status: Option<serde_json::Value>,
}

impl NetworkPolicy {
    /// Whether this is a `CiliumClusterwideNetworkPolicy`.
    pub fn is_clusterwide(&self) -> bool {
        self.kind == "CiliumClusterwideNetworkPolicy"
    }

    /// Every rule: `spec`, then `specs`.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.spec.iter().chain(self.specs.iter().flatten())
    }
}

/// A port of a Local Redirect Policy (`toPorts` of a frontend or backend).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LrpPort {
    /// The port number, as a string or number.
    pub port: PortText,
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// The name that pairs a frontend port with a backend port.
    pub name: Option<String>,
}

/// `redirectFrontend.serviceMatcher`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMatcher {
    /// The service's name.
    pub service_name: String,
    /// The service's namespace.
    pub namespace: String,
    /// The service ports to redirect (all when empty).
    #[serde(default)]
    pub to_ports: Vec<LrpPort>,
}

/// `redirectFrontend.addressMatcher`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressMatcher {
    /// The frontend IP.
    pub ip: String,
    /// The frontend ports.
    #[serde(default)]
    pub to_ports: Vec<LrpPort>,
}

/// `redirectFrontend`: exactly one matcher.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RedirectFrontend {
    /// Redirect a service's `ClusterIP`.
    pub service_matcher: Option<ServiceMatcher>,
    /// Redirect an IP and ports.
    pub address_matcher: Option<AddressMatcher>,
}

/// `redirectBackend`: the local pods that receive the traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectBackend {
    /// Selects the backend pods (on the same node as the client).
    pub local_endpoint_selector: LabelSelector,
    /// The backend ports, paired with the frontend's by name.
    #[serde(default)]
    pub to_ports: Vec<LrpPort>,
}

/// The `spec` of a Local Redirect Policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalRedirectSpec {
    /// What to redirect.
    pub redirect_frontend: RedirectFrontend,
    /// Where to.
    pub redirect_backend: RedirectBackend,
    /// Whether traffic from the backends themselves skips the redirect.
    #[serde(default)]
    pub skip_redirect_from_backend: bool,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// `CiliumLocalRedirectPolicy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalRedirectPolicy {
    /// `cilium.io/v2`.
    pub api_version: String,
    /// `CiliumLocalRedirectPolicy`.
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: Metadata,
    /// The redirect.
    pub spec: LocalRedirectSpec,
    /// Status written by Cilium (ignored).
    #[serde(default)]
    pub status: Option<serde_json::Value>,
}
