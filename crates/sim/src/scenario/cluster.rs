//! `cluster:`: nodes, pods, `DaemonSet`s, services, and how DNS is served.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A pod's DNS server role.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRole {
    /// `authoritative` or `cache`.
    pub role: DnsRoleKind,
    /// For a cache: the service (`namespace/name`) it forwards misses to.
    pub upstream: Option<String>,
}

/// The kinds of DNS server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsRoleKind {
    /// Answers from the scenario's zone.
    Authoritative,
    /// Caches by TTL, forwards misses upstream.
    Cache,
}

/// `cluster.pods[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Node.
    pub node: String,
    /// IP.
    pub ip: std::net::IpAddr,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A DNS server role.
    pub dns: Option<DnsRole>,
}

/// `cluster.daemonsets[]`: one pod per node.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSetSpec {
    /// Name; pods are `<name>-<node>`.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Labels of its pods.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A DNS server role.
    pub dns: Option<DnsRole>,
}

/// `cluster.services[].ports[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePortSpec {
    /// Name.
    pub name: Option<String>,
    /// Port.
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    #[serde(default = "tcp")]
    pub protocol: String,
    /// Port on the backends (default: `port`).
    pub target_port: Option<u16>,
}

fn tcp() -> String {
    "TCP".into()
}

/// `cluster.services[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// The `ClusterIP`.
    #[serde(rename = "clusterIP")]
    pub cluster_ip: std::net::IpAddr,
    /// Pods backing it (same namespace).
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// Ports.
    #[serde(default)]
    pub ports: Vec<ServicePortSpec>,
}

/// `cluster.dns-mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsMode {
    /// DNS passes Cilium's DNS proxy.
    #[default]
    Proxy,
    /// DNS is answered on the node before any proxy (AKS LocalDNS): nothing is learned.
    Localdns,
}

/// `cluster:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterSpec {
    /// Node names.
    pub nodes: Vec<String>,
    /// Pods.
    #[serde(default)]
    pub pods: Vec<PodSpec>,
    /// `DaemonSet`s.
    #[serde(default)]
    pub daemonsets: Vec<DaemonSetSpec>,
    /// Services.
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    /// How DNS is served.
    #[serde(default)]
    pub dns_mode: DnsMode,
}
