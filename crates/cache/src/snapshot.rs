//! A stable, versioned serialisation of every endpoint's cache and zombies, so that an agent
//! restart drops no established connection: the restored state is identical to the saved one.
//!
//! The format is JSON, `{"version": 1, "endpoints": [...]}`, with Cilium's field names where it
//! has them (`fqdn`, `lookup-time`, `expiration-time`, `ttl`, `names`, `alive-at`,
//! `delete-pending-at`); times are integers, nanoseconds since the caller's epoch. Lists are
//! sorted, so equal states give byte-equal snapshots. Input is untrusted: any defect is a
//! [`SnapshotError`] that says where, and nothing is restored.

use std::collections::BTreeSet;
use std::net::IpAddr;

use fqdnpath_names::Fqdn;
use serde::{Deserialize, Serialize};

use crate::cache::{CacheRecord, Entry};
use fqdnpath_names::EndpointId;

use crate::endpoint::{EndpointCaches, EndpointDns, FqdnConfig};
use crate::zombie::Zombie;
use fqdnpath_names::Timestamp;

/// Why a snapshot could not be read or restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not JSON of the snapshot's shape.
    #[error(
        "snapshot is not valid JSON of the expected shape at line {line}, column {column}: {source}"
    )]
    Json {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// A format version this build does not read.
    #[error("snapshot version {found} is not supported (this build reads version {supported})")]
    Version {
        /// The version in the snapshot.
        found: u32,
        /// [`Snapshot::VERSION`].
        supported: u32,
    },
    /// The same endpoint appears twice.
    #[error("endpoint {endpoint} appears more than once (endpoints[{index}])")]
    DuplicateEndpoint {
        /// The endpoint.
        endpoint: EndpointId,
        /// Its second position.
        index: usize,
    },
    /// A cache entry is inconsistent.
    #[error("endpoints[{endpoint_index}].cache[{index}] ({name} {ip}): {reason}")]
    InvalidEntry {
        /// Position of the endpoint.
        endpoint_index: usize,
        /// Position of the entry.
        index: usize,
        /// Its name.
        name: Fqdn,
        /// Its IP.
        ip: IpAddr,
        /// What is wrong.
        reason: &'static str,
    },
    /// A zombie is inconsistent.
    #[error("endpoints[{endpoint_index}].zombies.deletes[{index}] ({ip}): {reason}")]
    InvalidZombie {
        /// Position of the endpoint.
        endpoint_index: usize,
        /// Position of the zombie.
        index: usize,
        /// Its IP.
        ip: IpAddr,
        /// What is wrong.
        reason: &'static str,
    },
}

/// One (name, IP) entry as saved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SavedEntry {
    /// The name.
    pub fqdn: Fqdn,
    /// The IP.
    pub ip: IpAddr,
    /// When it was looked up.
    pub lookup_time: Timestamp,
    /// When it expires.
    pub expiration_time: Timestamp,
    /// The TTL it was stored with, in seconds.
    pub ttl: u32,
}

/// One endpoint's zombies as saved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SavedZombies {
    /// The start of the last completed CT GC.
    pub last_ct_gc: Option<Timestamp>,
    /// How many CT GC passes completed.
    pub ct_gc_revision: u64,
    /// The zombies, in IP order.
    pub deletes: Vec<Zombie>,
}

/// One endpoint as saved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SavedEndpoint {
    /// The endpoint.
    pub endpoint: EndpointId,
    /// Its cache, in (name, IP) order.
    pub cache: Vec<SavedEntry>,
    /// Its zombies.
    pub zombies: SavedZombies,
}

/// Every endpoint's FQDN state, as saved across an agent restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Snapshot {
    /// The format version, [`Snapshot::VERSION`].
    pub version: u32,
    /// The endpoints, in ID order.
    pub endpoints: Vec<SavedEndpoint>,
}

impl Snapshot {
    /// The format version this build writes and reads.
    pub const VERSION: u32 = 1;

    /// Saves the state of every endpoint.
    pub fn of(caches: &EndpointCaches) -> Self {
        let endpoints = caches
            .endpoints()
            .map(|(endpoint, dns)| SavedEndpoint {
                endpoint,
                cache: dns
                    .cache
                    .records()
                    .into_iter()
                    .map(|r| SavedEntry {
                        fqdn: r.name,
                        ip: r.ip,
                        lookup_time: r.entry.lookup_time,
                        expiration_time: r.entry.expiry,
                        ttl: r.entry.ttl,
                    })
                    .collect(),
                zombies: SavedZombies {
                    last_ct_gc: dns.zombies.last_ct_gc(),
                    ct_gc_revision: dns.zombies.ct_gc_revision(),
                    deletes: dns.zombies.iter().cloned().collect(),
                },
            })
            .collect();
        Self {
            version: Self::VERSION,
            endpoints,
        }
    }

    /// The snapshot as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a snapshot from JSON (untrusted) and checks its version.
    pub fn from_json(json: &str) -> Result<Self, SnapshotError> {
        let snapshot: Self = serde_json::from_str(json).map_err(|source| SnapshotError::Json {
            line: source.line(),
            column: source.column(),
            source,
        })?;
        if snapshot.version != Self::VERSION {
            return Err(SnapshotError::Version {
                found: snapshot.version,
                supported: Self::VERSION,
            });
        }
        Ok(snapshot)
    }

    /// Rebuilds the endpoints' state under `config`. Checks everything first: on error nothing
    /// is half-restored.
    pub fn restore(&self, config: FqdnConfig) -> Result<EndpointCaches, SnapshotError> {
        if self.version != Self::VERSION {
            return Err(SnapshotError::Version {
                found: self.version,
                supported: Self::VERSION,
            });
        }
        let mut caches = EndpointCaches::new(config);
        let mut seen = BTreeSet::new();
        for (endpoint_index, saved) in self.endpoints.iter().enumerate() {
            if !seen.insert(saved.endpoint) {
                return Err(SnapshotError::DuplicateEndpoint {
                    endpoint: saved.endpoint,
                    index: endpoint_index,
                });
            }
            let mut dns = EndpointDns::new(config);
            let mut pairs = BTreeSet::new();
            for (index, e) in saved.cache.iter().enumerate() {
                let invalid = |reason| SnapshotError::InvalidEntry {
                    endpoint_index,
                    index,
                    name: e.fqdn.clone(),
                    ip: e.ip,
                    reason,
                };
                if e.expiration_time < e.lookup_time {
                    return Err(invalid("expiration-time is before lookup-time"));
                }
                if !pairs.insert((&e.fqdn, e.ip)) {
                    return Err(invalid("the same (fqdn, ip) appears twice"));
                }
                dns.cache.insert_record(&CacheRecord {
                    name: e.fqdn.clone(),
                    ip: e.ip,
                    entry: Entry {
                        lookup_time: e.lookup_time,
                        expiry: e.expiration_time,
                        ttl: e.ttl,
                    },
                });
            }
            let mut ips = BTreeSet::new();
            for (index, z) in saved.zombies.deletes.iter().enumerate() {
                let invalid = |reason| SnapshotError::InvalidZombie {
                    endpoint_index,
                    index,
                    ip: z.ip,
                    reason,
                };
                if z.names.is_empty() {
                    return Err(invalid("a zombie has no names"));
                }
                if !ips.insert(z.ip) {
                    return Err(invalid("the same ip appears twice"));
                }
                if z.revision_added_at > saved.zombies.ct_gc_revision {
                    return Err(invalid("revision-added-at is after ct-gc-revision"));
                }
                let mut zombie = z.clone();
                zombie.names.sort();
                zombie.names.dedup();
                dns.zombies.insert_raw(zombie);
            }
            dns.zombies
                .set_ct_gc_state(saved.zombies.last_ct_gc, saved.zombies.ct_gc_revision);
            caches.insert_endpoint(saved.endpoint, dns);
        }
        Ok(caches)
    }
}
