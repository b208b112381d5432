//! `agent:` and `datapath:`: the knobs of Cilium's agent (Cilium's names and defaults) and of
//! the simulated datapath.

use std::time::Duration;

use serde::Deserialize;

use super::Dur;

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
