//! What one node's Cilium agent does for FQDN policy, with no transport: the DNS proxy's
//! decisions, learning from answers, the DNS and connection-tracking GC, restart and restore.
//!
//! The agent is driven with `now` and messages, never a socket. The simulator moves its
//! messages on a virtual clock; the in-kernel demo moves the same messages through real
//! sockets. One proxy logic, two transports.
//!
//! - [`Agent::on_query`]: a query the datapath redirected to the proxy (with the DNS rules of
//!   the policy entry that redirected it) is forwarded when a rule allows its name, else
//!   answered at once with REFUSED, or NXDOMAIN under `tofqdns-dns-reject-response-code:
//!   nameError`; the upstream is not contacted and nothing is learned.
//! - [`Agent::on_response`]: the upstream's answer is observed, learned into the endpoint's
//!   cache, and turned into map changes for the datapath. The transport holds the answer until
//!   the datapath holds them, at most `tofqdns-proxy-response-max-delay` ([`hold`]).
//! - [`Agent::dns_gc`] and [`Agent::ct_gc`]: the periodic jobs; the DNS GC returns the map
//!   changes of the pairs and zombies that left.
//! - [`Agent::snapshot`] and [`Agent::restart`]: the caches survive a restart.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_cache::endpoint::EndpointGc;
use fqdnpath_cache::observe::name_text;
use fqdnpath_cache::{
    EndpointCaches, EndpointId, FqdnConfig, Observation, ObserveError, Snapshot, SnapshotError,
    Timestamp, observe,
};
use fqdnpath_names::{FqdnSelector, normalize};
use fqdnpath_policy::compile::{CompileError, Compiler, Delta, Endpoint};
use fqdnpath_policy::manifest::NetworkPolicy;
use fqdnpath_policy::policymap::DnsAllow;
use hickory_proto::ProtoError;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::serialize::binary::DecodeError;

/// Cilium's default `tofqdns-proxy-response-max-delay`.
pub const DEFAULT_PROXY_RESPONSE_MAX_DELAY: Duration = Duration::from_millis(100);

/// `tofqdns-dns-reject-response-code`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[doc(alias = "tofqdns-dns-reject-response-code")]
pub enum RejectCode {
    /// `refused` (Cilium's default): REFUSED.
    #[default]
    Refused,
    /// `nameError`: NXDOMAIN.
    NameError,
}

impl RejectCode {
    fn rcode(self) -> ResponseCode {
        match self {
            Self::Refused => ResponseCode::Refused,
            Self::NameError => ResponseCode::NXDomain,
        }
    }
}

/// The agent's settings, named and defaulted as Cilium's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// The cache and zombie flags (`tofqdns-min-ttl`, ...).
    pub fqdn: FqdnConfig,
    /// `tofqdns-proxy-response-max-delay`.
    #[doc(alias = "tofqdns-proxy-response-max-delay")]
    pub proxy_response_max_delay: Duration,
    /// `tofqdns-dns-reject-response-code`.
    pub reject_code: RejectCode,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            fqdn: FqdnConfig::default(),
            proxy_response_max_delay: DEFAULT_PROXY_RESPONSE_MAX_DELAY,
            reject_code: RejectCode::default(),
        }
    }
}

/// Why the agent could not handle a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The query is not valid DNS, or not a query.
    #[error("invalid DNS query: {0}")]
    Query(#[from] QueryError),
    /// The response could not be observed; the client gets SERVFAIL ([`servfail`]).
    #[error("invalid DNS response: {0}")]
    Response(#[from] ObserveError),
    /// Compiling the change failed (identities exhausted).
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A snapshot could not be restored.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A DNS message could not be encoded.
    #[error("could not encode a DNS message: {0}")]
    Encode(#[source] ProtoError),
}

/// Why a message the proxy received is not a query it can decide on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The bytes are not a DNS message.
    #[error("{0}")]
    Wire(#[source] DecodeError),
    /// The message is a response.
    #[error("the message is a response, not a query")]
    NotAQuery,
    /// The message asks nothing.
    #[error("the query has no question")]
    NoQuestion,
}

/// What the proxy does with a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryDecision {
    /// A rule allows the name: forward the query upstream unchanged.
    Forward {
        /// The name asked for, normalised.
        qname: String,
    },
    /// No rule allows it: answer the client with this response, upstream untouched.
    Reject {
        /// The name asked for, normalised.
        qname: String,
        /// The wire response (the query's ID, question and case; REFUSED or NXDOMAIN).
        response: Vec<u8>,
        /// Its response code.
        rcode: ResponseCode,
    },
}

/// What learning from one response produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learned {
    /// The observation.
    pub observation: Observation,
    /// The map changes to program before the response is released.
    pub deltas: Vec<Delta>,
}

/// When the transport releases a held response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// When the response reaches the client.
    pub release_at: Timestamp,
    /// Whether it was released because the max delay passed, before the datapath held it
    /// (the client may then race its connection against the map update; Cilium counts it).
    pub timed_out: bool,
}

/// The hold of a response observed at `now` whose map changes are programmed at
/// `programmed_at`: released then, or at `now + max_delay` if that is earlier.
pub fn hold(now: Timestamp, programmed_at: Timestamp, max_delay: Duration) -> Hold {
    let deadline = now + max_delay;
    if programmed_at <= deadline {
        Hold {
            release_at: programmed_at.max(now),
            timed_out: false,
        }
    } else {
        Hold {
            release_at: deadline,
            timed_out: true,
        }
    }
}

/// Whether a DNS rule allowance lets `qname` through.
pub fn dns_allows(allow: &DnsAllow, qname: &str) -> bool {
    match allow {
        DnsAllow::All => true,
        DnsAllow::Selectors(keys) => keys.iter().any(|k| {
            let selector = if k.pattern {
                FqdnSelector::match_pattern(&k.value)
            } else {
                FqdnSelector::match_name(&k.value)
            };
            selector.is_ok_and(|s| s.matches(qname))
        }),
    }
}

/// A SERVFAIL answer to `query` (what Cilium's proxy sends when it cannot handle a response).
pub fn servfail(query: &[u8]) -> Result<Vec<u8>, AgentError> {
    answer(query, ResponseCode::ServFail)
}

fn answer(query: &[u8], rcode: ResponseCode) -> Result<Vec<u8>, AgentError> {
    let q = Message::from_vec(query).map_err(QueryError::Wire)?;
    let mut response = Message::response(q.metadata.id, q.metadata.op_code);
    response.metadata.recursion_desired = q.metadata.recursion_desired;
    response.metadata.response_code = rcode;
    for question in q.queries {
        response.add_query(question);
    }
    response.to_vec().map_err(AgentError::Encode)
}

/// One node's agent.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    compiler: Compiler,
    caches: EndpointCaches,
}

impl Agent {
    /// The agent of a node running `endpoints` under `policies`.
    pub fn new(
        config: AgentConfig,
        policies: &[NetworkPolicy],
        endpoints: &[Endpoint],
    ) -> Result<Self, AgentError> {
        Ok(Self {
            config,
            compiler: Compiler::new(policies, endpoints)?,
            caches: EndpointCaches::new(config.fqdn),
        })
    }

    /// The settings.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The compiled maps.
    pub fn compiler(&self) -> &Compiler {
        &self.compiler
    }

    /// The FQDN caches.
    pub fn caches(&self) -> &EndpointCaches {
        &self.caches
    }

    /// The proxy's decision on a redirected query, under the DNS rules of the policy entry
    /// that redirected it.
    pub fn on_query(&self, query: &[u8], allow: &DnsAllow) -> Result<QueryDecision, AgentError> {
        let q = Message::from_vec(query).map_err(QueryError::Wire)?;
        if q.metadata.message_type != MessageType::Query {
            return Err(QueryError::NotAQuery.into());
        }
        let Some(question) = q.queries.first() else {
            return Err(QueryError::NoQuestion.into());
        };
        let qname = normalize(&name_text(&question.name)).into_owned();
        if dns_allows(allow, &qname) {
            return Ok(QueryDecision::Forward { qname });
        }
        let rcode = self.config.reject_code.rcode();
        Ok(QueryDecision::Reject {
            qname,
            response: answer(query, rcode)?,
            rcode,
        })
    }

    /// Learns from the upstream's response to an allowed query of `endpoint`, observed at
    /// `now`, and returns the map changes to program before releasing it.
    pub fn on_response(
        &mut self,
        endpoint: EndpointId,
        response: &[u8],
        now: Timestamp,
    ) -> Result<Learned, AgentError> {
        let observation = observe(response)?;
        let outcome = self.caches.observe(endpoint, now, &observation);
        let mut deltas = Vec::new();
        for ip in outcome.added {
            deltas.extend(self.sync_ip(ip)?);
        }
        Ok(Learned {
            observation,
            deltas,
        })
    }

    /// Brings the compiled maps in line with the global view for `ip`.
    fn sync_ip(&mut self, ip: IpAddr) -> Result<Vec<Delta>, AgentError> {
        let names = self.caches.global_names(ip);
        Ok(self.compiler.update_ip(ip, names)?)
    }

    /// The DNS GC at `now` (Cilium runs it every minute): expired and over-cap pairs become
    /// zombies, dead zombies leave, and the maps follow the global view.
    pub fn dns_gc(&mut self, now: Timestamp) -> Result<(Vec<EndpointGc>, Vec<Delta>), AgentError> {
        let reports = self.caches.gc(now);
        let mut ips = BTreeSet::new();
        for report in reports.values() {
            ips.extend(report.cache.removed.iter().map(|r| r.ip));
            ips.extend(report.zombies.dead.iter().map(|z| z.ip));
        }
        let mut deltas = Vec::new();
        for ip in ips {
            deltas.extend(self.sync_ip(ip)?);
        }
        Ok((reports.into_values().collect(), deltas))
    }

    /// A completed connection-tracking GC pass that started at `start` and found these live
    /// egress connections (endpoint, destination).
    pub fn ct_gc(&mut self, start: Timestamp, live: &[(EndpointId, IpAddr)]) {
        self.caches.ct_gc(start, live.iter().copied());
    }

    /// The caches' state, to survive a restart.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.caches)
    }

    /// An agent restart: the caches come back from `snapshot`, the CT GC bookkeeping starts
    /// over (every zombie waits two more CT GC passes, as in Cilium), and the maps are rebuilt
    /// so that no established connection loses its destination's identity. Returns the map
    /// changes for the restored IPs.
    pub fn restart(&mut self, snapshot: &Snapshot) -> Result<Vec<Delta>, AgentError> {
        let mut caches = snapshot.restore(self.config.fqdn)?;
        let ids: Vec<EndpointId> = caches.endpoints().map(|(id, _)| id).collect();
        for id in ids {
            caches.endpoint_mut(id).zombies.restart();
        }
        self.adopt_caches(caches)
    }

    /// Takes over the caches of `snapshot` exactly as they were (a policy change rebuilds the
    /// agent's compiled state; the caches carry on). Returns the map changes for their IPs.
    pub fn adopt(&mut self, snapshot: &Snapshot) -> Result<Vec<Delta>, AgentError> {
        let caches = snapshot.restore(self.config.fqdn)?;
        self.adopt_caches(caches)
    }

    fn adopt_caches(&mut self, caches: EndpointCaches) -> Result<Vec<Delta>, AgentError> {
        self.caches = caches;
        let ips: BTreeSet<IpAddr> = self
            .caches
            .global_pairs()
            .into_iter()
            .map(|(_, ip)| ip)
            .collect();
        let mut deltas = Vec::new();
        for ip in ips {
            deltas.extend(self.sync_ip(ip)?);
        }
        Ok(deltas)
    }
}
