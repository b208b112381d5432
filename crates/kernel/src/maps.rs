//! Writing the BPF maps: map deltas applied to the ipcache and policy tries, endpoints written
//! with their flags (fail closed, has a wildcard key), the endpoint generation bumped after
//! every change to them, conntrack listed and emptied, and [`KernelDatapath::reset`].

use std::net::IpAddr;

use aya::maps::MapError;
use aya::maps::lpm_trie::Key;
use fqdnpath_datapath::DatapathError;
use fqdnpath_datapath::abi::{
    self, CtKey, CtKey4, CtKey6, CtValue, EndpointValue, IpcacheValue, PolicyKeyAbi,
    PolicyValueAbi, State,
};
use fqdnpath_policy::compile::{Delta, EndpointId, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{PolicyAction, PolicyKey};
use rustix::io::Errno;

use crate::datapath::KernelDatapath;
use crate::error::{KernelError, errno, map_err};
use crate::state::Clock;

/// `ENOSPC`: an LPM trie is full.
const ENOSPC: i32 = Errno::NOSPC.raw_os_error();
/// `E2BIG`: a hash map is full.
pub(crate) const E2BIG: i32 = Errno::TOOBIG.raw_os_error();
/// `ENOENT`: no such entry.
const ENOENT: i32 = Errno::NOENT.raw_os_error();

fn prefix_key4(prefix: &Prefix) -> Option<Key<[u8; 4]>> {
    match prefix.addr {
        IpAddr::V4(a) => Some(Key::new(u32::from(prefix.len), a.octets())),
        IpAddr::V6(_) => None,
    }
}

fn prefix_key6(prefix: &Prefix) -> Option<Key<[u8; 16]>> {
    match prefix.addr {
        IpAddr::V6(a) => Some(Key::new(u32::from(prefix.len), a.octets())),
        IpAddr::V4(_) => None,
    }
}

impl KernelDatapath {
    /// Empties every map and clears the failure flags, keeping the programs loaded (and
    /// attached): a fresh datapath without a second trip through the verifier.
    pub fn reset(&mut self) -> Result<(), KernelError> {
        let v4: Vec<Key<[u8; 4]>> = self.ipcache4.keys().filter_map(Result::ok).collect();
        for key in v4 {
            self.ipcache4
                .remove(&key)
                .map_err(map_err("delete", "fqdn_ipcache4"))?;
        }
        let v6: Vec<Key<[u8; 16]>> = self.ipcache6.keys().filter_map(Result::ok).collect();
        for key in v6 {
            self.ipcache6
                .remove(&key)
                .map_err(map_err("delete", "fqdn_ipcache6"))?;
        }
        let policy: Vec<Key<[u8; 12]>> = self.policy.keys().filter_map(Result::ok).collect();
        for key in policy {
            self.policy
                .remove(&key)
                .map_err(map_err("delete", "fqdn_policy"))?;
        }
        let endpoints: Vec<[u8; 4]> = self.endpoints4.keys().filter_map(Result::ok).collect();
        for key in endpoints {
            self.endpoints4
                .remove(&key)
                .map_err(map_err("delete", "fqdn_endpoints4"))?;
        }
        let endpoints: Vec<[u8; 16]> = self.endpoints6.keys().filter_map(Result::ok).collect();
        for key in endpoints {
            self.endpoints6
                .remove(&key)
                .map_err(map_err("delete", "fqdn_endpoints6"))?;
        }
        self.bump_endpoints_gen()?;
        // An LRU entry can vanish between the listing and the delete.
        for (key, _) in self.conntrack_entries() {
            self.ct_remove(&key);
        }
        self.ipcache_prefixes.clear();
        self.policy_keys.clear();
        self.dns.clear();
        self.endpoint_addrs.clear();
        self.failed_endpoints.clear();
        self.wildcard_keys.clear();
        self.drain_ring();
        self.backlog.clear();
        let flags = if self.clock == Clock::Virtual {
            abi::STATE_VIRTUAL_CLOCK
        } else {
            0
        };
        self.write_state(State {
            now_ns: 0,
            flags,
            pad: 0,
        })
    }

    /// Every tracked flow: (key, value), as the kernel holds them (IPv4 first).
    pub fn conntrack_entries(&self) -> Vec<(CtKey, CtValue)> {
        let v4 = self
            .ct4
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| (CtKey::V4(CtKey4::from_bytes(&k)), CtValue::from_bytes(&v)));
        let v6 = self
            .ct6
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| (CtKey::V6(CtKey6::from_bytes(&k)), CtValue::from_bytes(&v)));
        v4.chain(v6).collect()
    }

    /// Deletes a flow; one already gone (an LRU eviction, a race with the program) is fine.
    pub(crate) fn ct_remove(&mut self, key: &CtKey) {
        let _ = match key {
            CtKey::V4(k) => self.ct4.remove(&k.to_bytes()),
            CtKey::V6(k) => self.ct6.remove(&k.to_bytes()),
        };
    }

    fn fail_endpoint(&mut self, endpoint: EndpointId) -> Result<(), KernelError> {
        self.failed_endpoints.insert(endpoint);
        self.refresh_endpoint(endpoint)
    }

    /// Rewrites an endpoint's entries (their flags changed).
    fn refresh_endpoint(&mut self, endpoint: EndpointId) -> Result<(), KernelError> {
        let addrs: Vec<(IpAddr, Identity)> = self
            .endpoint_addrs
            .get(&endpoint)
            .map(|m| m.iter().map(|(a, i)| (*a, *i)).collect())
            .unwrap_or_default();
        for (addr, identity) in addrs {
            self.write_endpoint(endpoint, addr, identity)?;
        }
        Ok(())
    }

    /// Counts an identity-0 key in or out; the endpoint's flag follows (after the policy
    /// entry is written, before it is deleted: a packet may briefly miss a new wildcard
    /// entry and be dropped, never the reverse).
    fn count_wildcard(
        &mut self,
        endpoint: EndpointId,
        key: PolicyKey,
        added: bool,
    ) -> Result<(), KernelError> {
        if key.identity != Identity::ANY {
            return Ok(());
        }
        let count = self.wildcard_keys.entry(endpoint).or_default();
        let before = *count;
        if added {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
        }
        if (before == 0) != (*count == 0) {
            self.refresh_endpoint(endpoint)?;
        }
        Ok(())
    }

    pub(crate) fn write_endpoint(
        &mut self,
        endpoint: EndpointId,
        addr: IpAddr,
        identity: Identity,
    ) -> Result<(), KernelError> {
        let mut flags = 0;
        if self.failed_endpoints.contains(&endpoint) {
            flags |= abi::ENDPOINT_FLAG_FAIL_CLOSED;
        }
        if self.wildcard_keys.get(&endpoint).is_some_and(|n| *n > 0) {
            flags |= abi::ENDPOINT_FLAG_HAS_WILDCARD;
        }
        let value = EndpointValue {
            endpoint_id: endpoint.0,
            flags,
            identity: identity.0,
        };
        let written = match addr {
            IpAddr::V4(a) => self
                .endpoints4
                .insert(a.octets(), value.to_bytes(), 0)
                .map_err(map_err("update", "fqdn_endpoints4")),
            IpAddr::V6(a) => self
                .endpoints6
                .insert(a.octets(), value.to_bytes(), 0)
                .map_err(map_err("update", "fqdn_endpoints6")),
        };
        // Even after a failed write: the entry may have changed.
        let bumped = self.bump_endpoints_gen();
        written.and(bumped)
    }

    /// Tells the programs that the endpoint maps changed: each CPU's cached endpoint is stale
    /// from now on. Only this process writes the generation, so no update is lost.
    fn bump_endpoints_gen(&mut self) -> Result<(), KernelError> {
        let generation = self.endpoints_gen_shadow + 1;
        self.endpoints_gen
            .set(0, generation, 0)
            .map_err(map_err("update", "fqdn_endpoints_gen"))?;
        self.endpoints_gen_shadow = generation;
        Ok(())
    }

    fn ipcache_upsert(&mut self, prefix: Prefix, identity: Identity) -> Result<(), MapError> {
        let value = IpcacheValue {
            identity: identity.0,
            flags: 0,
        }
        .to_bytes();
        match (prefix_key4(&prefix), prefix_key6(&prefix)) {
            (Some(key), _) => self.ipcache4.insert(&key, value, 0),
            (_, Some(key)) => self.ipcache6.insert(&key, value, 0),
            _ => unreachable!("an address is IPv4 or IPv6"),
        }
    }

    fn ipcache_delete(&mut self, prefix: Prefix) -> Result<(), MapError> {
        match (prefix_key4(&prefix), prefix_key6(&prefix)) {
            (Some(key), _) => self.ipcache4.remove(&key),
            (_, Some(key)) => self.ipcache6.remove(&key),
            _ => unreachable!("an address is IPv4 or IPv6"),
        }
    }

    pub(crate) fn apply_one(&mut self, delta: &Delta) -> Result<(), DatapathError> {
        match delta {
            Delta::IpcacheUpsert { prefix, identity } => {
                let bits = if prefix.addr.is_ipv4() { 32 } else { 128 };
                if prefix.len > bits {
                    self.set_state_flag(abi::STATE_FAIL_CLOSED)?;
                    return Err(DatapathError::InvalidPrefix {
                        prefix: *prefix,
                        bits,
                    });
                }
                match self.ipcache_upsert(*prefix, *identity) {
                    Ok(()) => {
                        self.ipcache_prefixes.insert(*prefix);
                        Ok(())
                    }
                    Err(e) => {
                        self.set_state_flag(abi::STATE_FAIL_CLOSED)?;
                        let (map, max) = if prefix.addr.is_ipv4() {
                            ("ipcache4", self.sizes.ipcache4)
                        } else {
                            ("ipcache6", self.sizes.ipcache6)
                        };
                        Err(match errno(&e) {
                            Some(ENOSPC | E2BIG) => DatapathError::MapFull {
                                map,
                                max_entries: max,
                            },
                            _ => map_err("update", "fqdn_ipcache")(e).into(),
                        })
                    }
                }
            }
            Delta::IpcacheDelete { prefix } => match self.ipcache_delete(*prefix) {
                Ok(()) => {
                    self.ipcache_prefixes.remove(prefix);
                    Ok(())
                }
                Err(e) if errno(&e) == Some(ENOENT) || matches!(e, MapError::KeyNotFound) => Ok(()),
                Err(e) => Err(map_err("delete", "fqdn_ipcache")(e).into()),
            },
            Delta::PolicyUpsert {
                endpoint,
                key,
                action,
            } => {
                let map_key = PolicyKeyAbi::from_key(*endpoint, key);
                let value = PolicyValueAbi::from_action(key, action);
                match self.policy.insert(
                    &Key::new(map_key.prefixlen, map_key.data()),
                    value.to_bytes(),
                    0,
                ) {
                    Ok(()) => {
                        if self.policy_keys.insert((*endpoint, *key)) {
                            self.count_wildcard(*endpoint, *key, true)?;
                        }
                        if let PolicyAction::RedirectDns(dns) = action {
                            self.dns.insert((*endpoint, *key), dns.clone());
                        } else {
                            self.dns.remove(&(*endpoint, *key));
                        }
                        Ok(())
                    }
                    Err(e) => {
                        self.fail_endpoint(*endpoint)?;
                        Err(match errno(&e) {
                            Some(ENOSPC | E2BIG) => DatapathError::MapFull {
                                map: "policy",
                                max_entries: self.sizes.policy,
                            },
                            _ => map_err("update", "fqdn_policy")(e).into(),
                        })
                    }
                }
            }
            Delta::PolicyDelete { endpoint, key } => {
                let map_key = PolicyKeyAbi::from_key(*endpoint, key);
                match self
                    .policy
                    .remove(&Key::new(map_key.prefixlen, map_key.data()))
                {
                    Ok(()) => {
                        if self.policy_keys.remove(&(*endpoint, *key)) {
                            self.count_wildcard(*endpoint, *key, false)?;
                        }
                        self.dns.remove(&(*endpoint, *key));
                        Ok(())
                    }
                    Err(e) if errno(&e) == Some(ENOENT) || matches!(e, MapError::KeyNotFound) => {
                        Ok(())
                    }
                    Err(e) => Err(map_err("delete", "fqdn_policy")(e).into()),
                }
            }
            _ => {
                self.set_state_flag(abi::STATE_FAIL_CLOSED)?;
                Err(DatapathError::UnsupportedChange)
            }
        }
    }
}
