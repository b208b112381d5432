//! Scenario files (`apiVersion: fqdnpath/v1`, `kind: Scenario`): the user-facing format that
//! SCENARIOS.md fixes. Unknown keys are errors that name the key's path; so are bad durations
//! and steps that set no action or more than one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fqdnpath_policy::{Manifest, load_str};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// The format version this build reads.
pub const API_VERSION: &str = "fqdnpath/v1";

/// Why a scenario could not be loaded. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML.
    #[error("{file}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// The parser's message with line and column.
        message: String,
    },
    /// A key is missing, unknown or wrong.
    #[error("{file}: {path}: {reason}", path = if path.is_empty() { "(document)" } else { path })]
    Invalid {
        /// The file.
        file: String,
        /// The key path, e.g. `steps[3].connect.port`.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A duration as written in a scenario: Go syntax (`100ms`, `1m30s`, `0s`), or a plain number
/// of seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

/// Parses a Go-style duration (`300ms`, `1.5s`, `2h45m`); `None` if malformed.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    (total.is_finite() && (0.0..1e12).contains(&total)).then(|| Duration::from_secs_f64(total))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let parsed = match &value {
            serde_json::Value::String(s) => parse_duration(s),
            serde_json::Value::Number(n) => n
                .as_f64()
                .filter(|f| *f >= 0.0 && *f < 1e12)
                .map(Duration::from_secs_f64),
            _ => None,
        };
        parsed.map(Dur).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {value}: write e.g. 100ms, 30s, 1m30s"
            ))
        })
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// `tofqdns-dns-reject-response-code`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum RejectResponseCode {
    /// REFUSED.
    #[default]
    #[serde(rename = "refused")]
    Refused,
    /// NXDOMAIN.
    #[serde(rename = "nameError")]
    NameError,
}

/// `agent:`: Cilium's flags, Cilium's names and defaults.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AgentFlags {
    /// `tofqdns-min-ttl`, seconds.
    #[serde(default)]
    pub tofqdns_min_ttl: u32,
    /// `tofqdns-endpoint-max-ip-per-hostname`.
    #[serde(default = "default_max_ips")]
    pub tofqdns_endpoint_max_ip_per_hostname: usize,
    /// `tofqdns-max-deferred-connection-deletes`.
    #[serde(default = "default_deferred")]
    pub tofqdns_max_deferred_connection_deletes: usize,
    /// `tofqdns-idle-connection-grace-period`.
    #[serde(default)]
    pub tofqdns_idle_connection_grace_period: Dur,
    /// `tofqdns-proxy-response-max-delay`.
    #[serde(default = "default_max_delay")]
    pub tofqdns_proxy_response_max_delay: Dur,
    /// `tofqdns-dns-reject-response-code`.
    #[serde(default)]
    pub tofqdns_dns_reject_response_code: RejectResponseCode,
    /// `conntrack-gc-interval`.
    #[serde(default = "default_ct_gc")]
    pub conntrack_gc_interval: Dur,
}

fn default_max_ips() -> usize {
    1000
}
fn default_deferred() -> usize {
    10_000
}
fn default_max_delay() -> Dur {
    Dur(Duration::from_millis(100))
}
fn default_ct_gc() -> Dur {
    Dur(Duration::from_secs(60))
}

impl Default for AgentFlags {
    fn default() -> Self {
        Self {
            tofqdns_min_ttl: 0,
            tofqdns_endpoint_max_ip_per_hostname: default_max_ips(),
            tofqdns_max_deferred_connection_deletes: default_deferred(),
            tofqdns_idle_connection_grace_period: Dur::default(),
            tofqdns_proxy_response_max_delay: default_max_delay(),
            tofqdns_dns_reject_response_code: RejectResponseCode::default(),
            conntrack_gc_interval: default_ct_gc(),
        }
    }
}

/// `datapath:`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DatapathSettings {
    /// Time to program map changes after a DNS answer or a policy change.
    #[serde(default)]
    pub update_latency: Dur,
}

/// A pod's DNS server role.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRole {
    /// `authoritative` or `cache`.
    pub role: DnsRoleKind,
    /// For a cache: the service (`namespace/name`) it forwards misses to.
    #[serde(default)]
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
    #[serde(default)]
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
    #[serde(default)]
    pub dns: Option<DnsRole>,
}

/// `cluster.services[].ports[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePortSpec {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Port.
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    #[serde(default = "tcp")]
    pub protocol: String,
    /// Port on the backends (default: `port`).
    #[serde(default)]
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

/// A manifest source: a file (relative to the scenario) or inline YAML.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSource {
    /// A file, relative to the scenario file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// YAML text.
    #[serde(default)]
    pub inline: Option<String>,
    /// The inline text as loaded, the first time it is: the clones of a scenario share it, so
    /// a simulation built again from the same scenario (the determinism checks, the
    /// structured fuzz target) parses nothing twice. YAML parsing is most of building one.
    #[serde(skip)]
    loaded: Arc<OnceLock<Result<Vec<Manifest>, String>>>,
}

impl ManifestSource {
    /// Inline YAML.
    pub fn inline(text: impl Into<String>) -> Self {
        Self {
            path: None,
            inline: Some(text.into()),
            loaded: Arc::default(),
        }
    }

    /// A file, relative to the scenario file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            inline: None,
            loaded: Arc::default(),
        }
    }

    /// The manifests of the inline `text` (this source's), loaded under the name `file` the
    /// first time; the error is the loader's message.
    pub(crate) fn load_inline(&self, file: &str, text: &str) -> Result<Vec<Manifest>, String> {
        self.loaded
            .get_or_init(|| {
                load_str(file, text)
                    .map(|l| l.manifests.into_iter().map(|m| m.value).collect())
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// Equal when they name the same file or hold the same text.
impl PartialEq for ManifestSource {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.inline == other.inline
    }
}

impl Eq for ManifestSource {}

/// A zone record, or `{name, remove: true}` in `update-zone`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneRecord {
    /// Owner name.
    pub name: String,
    /// `A`, `AAAA` or `CNAME`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// TTL in seconds.
    #[serde(default)]
    pub ttl: Option<u32>,
    /// Address or target.
    #[serde(default)]
    pub value: Option<String>,
    /// Removes every record of the name.
    #[serde(default)]
    pub remove: bool,
}

/// `resolve:`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveStep {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// The name.
    pub name: String,
    /// `A` (default) or `AAAA`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `connect:`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectStep {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// Destination IP...
    #[serde(default)]
    pub ip: Option<std::net::IpAddr>,
    /// ...or a name: the first IP the pod last got for it.
    #[serde(default)]
    pub name: Option<String>,
    /// Destination port.
    pub port: u16,
    /// `TCP` (default) or `UDP`.
    #[serde(default = "tcp")]
    pub protocol: String,
    /// A name to refer to the connection later.
    #[serde(default, rename = "as")]
    pub alias: Option<String>,
}

/// `send:` / `close:`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionRef {
    /// The alias given by `connect.as`.
    pub connection: String,
}

/// `delete:`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteStep {
    /// The kind.
    pub kind: String,
    /// The namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

/// `restart-agent:`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartStep {
    /// The node.
    pub node: String,
}

/// `expect:`: what must hold after the step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The DNS response code (`NOERROR`, `NXDOMAIN`, `REFUSED`, `SERVFAIL`, `TIMEOUT`).
    #[serde(default)]
    pub rcode: Option<String>,
    /// The answer's addresses.
    #[serde(default)]
    pub ips: Option<Vec<std::net::IpAddr>>,
    /// `FORWARDED`, `DROPPED` or `REDIRECTED`.
    #[serde(default)]
    pub verdict: Option<String>,
    /// `POLICY_DENIED` or `POLICY_DENY`.
    #[serde(default)]
    pub drop_reason: Option<String>,
    /// How long the proxy held the response.
    #[serde(default)]
    pub held: Option<Dur>,
    /// The destination's identity.
    #[serde(default)]
    pub identity: Option<u32>,
    /// `L3_ONLY`, `L3_L4`, `L4_ONLY`, `ALL`, `L3_PROTO`, `PROTO_ONLY`.
    #[serde(default)]
    pub policy_match_type: Option<String>,
}

/// One step: exactly one action, plus `expect` and `at`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Step {
    /// Run at this time since the start (not before the current time).
    #[serde(default)]
    pub at: Option<Dur>,
    /// Resolve a name through the pod's resolver.
    #[serde(default)]
    pub resolve: Option<ResolveStep>,
    /// Open a connection.
    #[serde(default)]
    pub connect: Option<ConnectStep>,
    /// Move time forward.
    #[serde(default)]
    pub advance: Option<Dur>,
    /// A later packet of a connection.
    #[serde(default)]
    pub send: Option<ConnectionRef>,
    /// Close a connection.
    #[serde(default)]
    pub close: Option<ConnectionRef>,
    /// Apply manifests.
    #[serde(default)]
    pub apply: Option<ManifestSource>,
    /// Delete a manifest.
    #[serde(default)]
    pub delete: Option<DeleteStep>,
    /// Restart a node's agent.
    #[serde(default)]
    pub restart_agent: Option<RestartStep>,
    /// Change the authoritative zone.
    #[serde(default)]
    pub update_zone: Option<Vec<ZoneRecord>>,
    /// Expectations.
    #[serde(default)]
    pub expect: Option<Expect>,
}

impl Step {
    /// The names of the actions this step sets.
    pub fn actions(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let set = [
            ("resolve", self.resolve.is_some()),
            ("connect", self.connect.is_some()),
            ("advance", self.advance.is_some()),
            ("send", self.send.is_some()),
            ("close", self.close.is_some()),
            ("apply", self.apply.is_some()),
            ("delete", self.delete.is_some()),
            ("restart-agent", self.restart_agent.is_some()),
            ("update-zone", self.update_zone.is_some()),
        ];
        for (name, on) in set {
            if on {
                out.push(name);
            }
        }
        out
    }
}

/// A scenario.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    /// `fqdnpath/v1`.
    pub api_version: String,
    /// `Scenario`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Agent flags.
    #[serde(default)]
    pub agent: AgentFlags,
    /// Datapath settings.
    #[serde(default)]
    pub datapath: DatapathSettings,
    /// The cluster.
    pub cluster: ClusterSpec,
    /// Cilium manifests.
    #[serde(default)]
    pub manifests: Vec<ManifestSource>,
    /// The authoritative server's records.
    #[serde(default)]
    pub zone: Vec<ZoneRecord>,
    /// The timeline.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The scenario file's directory (manifest paths are relative to it).
    #[serde(skip)]
    pub base: PathBuf,
    /// The scenario file's name, for messages.
    #[serde(skip)]
    pub file: String,
}

fn typed<T: DeserializeOwned>(file: &str, value: serde_json::Value) -> Result<T, ScenarioError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ScenarioError::Invalid {
            file: file.to_owned(),
            path: if path == "." { String::new() } else { path },
            reason: e.into_inner().to_string(),
        }
    })
}

impl Scenario {
    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            file: file.clone(),
            source,
        })?;
        let mut scenario = Self::from_str(&file, &text)?;
        scenario.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(scenario)
    }

    /// Reads a scenario from text; `file` names it in errors.
    pub fn from_str(file: &str, text: &str) -> Result<Self, ScenarioError> {
        let value: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| ScenarioError::Yaml {
                file: file.to_owned(),
                message: e.to_string(),
            })?;
        Self::from_value(file, value)
    }

    /// Reads a scenario from the value of its document (as `from_str` reads it from YAML, or
    /// a program builds it); `file` names it in errors.
    pub fn from_value(file: &str, value: serde_json::Value) -> Result<Self, ScenarioError> {
        let invalid = |path: &str, reason: String| ScenarioError::Invalid {
            file: file.to_owned(),
            path: path.to_owned(),
            reason,
        };
        match value.get("apiVersion").and_then(serde_json::Value::as_str) {
            Some(API_VERSION) => {}
            Some(other) => {
                return Err(invalid(
                    "apiVersion",
                    format!("this build reads {API_VERSION}, not {other}"),
                ));
            }
            None => {
                return Err(invalid(
                    "apiVersion",
                    format!("is required ({API_VERSION})"),
                ));
            }
        }
        if value.get("kind").and_then(serde_json::Value::as_str) != Some("Scenario") {
            return Err(invalid("kind", "must be Scenario".into()));
        }
        let mut scenario: Self = typed(file, value)?;
        file.clone_into(&mut scenario.file);
        for (i, step) in scenario.steps.iter().enumerate() {
            let actions = step.actions();
            if actions.len() != 1 && !(actions.is_empty() && step.at.is_some()) {
                return Err(invalid(
                    &format!("steps[{i}]"),
                    if actions.is_empty() {
                        "a step needs one action (resolve, connect, advance, send, close, apply, delete, restart-agent, update-zone)".into()
                    } else {
                        format!("a step has one action; this one has {}", actions.join(", "))
                    },
                ));
            }
            if let Some(c) = &step.connect
                && c.ip.is_some() == c.name.is_some()
            {
                return Err(invalid(
                    &format!("steps[{i}].connect"),
                    "set exactly one of ip or name".into(),
                ));
            }
        }
        for (i, m) in scenario.manifests.iter().enumerate() {
            if m.path.is_some() == m.inline.is_some() {
                return Err(invalid(
                    &format!("manifests[{i}]"),
                    "set exactly one of path or inline".into(),
                ));
            }
        }
        Ok(scenario)
    }
}
