//! [`KernelDatapath`]: the BPF maps and programs behind the [`Datapath`] trait. The trait's
//! methods are thin: the work is in the sibling modules (`maps` writes the maps, `test_run`
//! asks the kernel for verdicts, `events` reads what the programs report).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use aya::Ebpf;
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use fqdnpath_datapath::abi::{
    self, FlowEventAbi, IpcacheValue, PolicyKeyAbi, PolicyValueAbi, State,
};
use fqdnpath_datapath::{Capacity, MapUsage};
use fqdnpath_datapath::{Datapath, DatapathError, FlowEvent, MapSizes, Packet};
use fqdnpath_names::Timestamp;
use fqdnpath_policy::compile::{Delta, EndpointId, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{DnsAllow, PolicyAction, PolicyKey};

use crate::attach::Attachment;
use crate::error::{KernelError, errno};
use crate::load::ENDPOINTS_MAX;
use crate::maps::E2BIG;
use crate::state::Clock;

/// The eBPF datapath: the object loaded, its maps and programs, and the bookkeeping the
/// kernel does not hold (which names a DNS redirect allows, how full the maps are).
pub struct KernelDatapath {
    pub(crate) ebpf: Ebpf,
    pub(crate) clock: Clock,
    pub(crate) sizes: MapSizes,
    pub(crate) ipcache4: LpmTrie<MapData, [u8; 4], [u8; 8]>,
    pub(crate) ipcache6: LpmTrie<MapData, [u8; 16], [u8; 8]>,
    pub(crate) policy: LpmTrie<MapData, [u8; 12], [u8; 8]>,
    pub(crate) endpoints4: BpfHashMap<MapData, [u8; 4], [u8; 8]>,
    pub(crate) endpoints6: BpfHashMap<MapData, [u8; 16], [u8; 8]>,
    pub(crate) ct4: BpfHashMap<MapData, [u8; 16], [u8; 16]>,
    pub(crate) ct6: BpfHashMap<MapData, [u8; 40], [u8; 16]>,
    pub(crate) state: Array<MapData, [u8; 16]>,
    /// `fqdn_endpoints_gen`: bumped after every change to the endpoint maps, so that no CPU
    /// keeps using a cached endpoint that changed.
    pub(crate) endpoints_gen: Array<MapData, u64>,
    pub(crate) endpoints_gen_shadow: u64,
    pub(crate) counters: PerCpuArray<MapData, u64>,
    pub(crate) events: RingBuf<MapData>,
    /// The state map's content as last written.
    pub(crate) state_shadow: State,
    pub(crate) ipcache_prefixes: BTreeSet<Prefix>,
    pub(crate) policy_keys: BTreeSet<(EndpointId, PolicyKey)>,
    /// The names each redirect entry lets through (the kernel keeps only the proxy port).
    pub(crate) dns: BTreeMap<(EndpointId, PolicyKey), DnsAllow>,
    pub(crate) endpoint_addrs: BTreeMap<EndpointId, BTreeMap<IpAddr, Identity>>,
    pub(crate) failed_endpoints: BTreeSet<EndpointId>,
    /// How many identity-0 policy keys each endpoint has.
    pub(crate) wildcard_keys: BTreeMap<EndpointId, usize>,
    /// Events read from the ring buffer while looking for a test run's own.
    pub(crate) backlog: VecDeque<FlowEventAbi>,
    pub(crate) attachments: Vec<Attachment>,
}

impl std::fmt::Debug for KernelDatapath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelDatapath")
            .field("clock", &self.clock)
            .field("sizes", &self.sizes)
            .field("attachments", &self.attachments)
            .finish_non_exhaustive()
    }
}

impl Datapath for KernelDatapath {
    fn set_endpoint(
        &mut self,
        endpoint: EndpointId,
        addr: IpAddr,
        identity: Identity,
    ) -> Result<(), DatapathError> {
        // An address belongs to one endpoint: registered again, it leaves the one it had (whose
        // later flag changes must not write it back).
        for (id, addrs) in &mut self.endpoint_addrs {
            if *id != endpoint {
                addrs.remove(&addr);
            }
        }
        self.endpoint_addrs
            .entry(endpoint)
            .or_default()
            .insert(addr, identity);
        self.write_endpoint(endpoint, addr, identity)
            .map_err(|e| match &e {
                KernelError::Map { source, .. } if errno(source) == Some(E2BIG) => {
                    DatapathError::MapFull {
                        map: "endpoints",
                        max_entries: ENDPOINTS_MAX as usize,
                    }
                }
                _ => e.into(),
            })
    }

    fn apply(&mut self, deltas: &[Delta]) -> Result<(), DatapathError> {
        let mut first_error = None;
        for delta in deltas {
            if let Err(e) = self.apply_one(delta) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn egress(&mut self, packet: &Packet, now: Timestamp) -> FlowEvent {
        self.judge_packet(true, packet, now)
    }

    fn ingress(&mut self, packet: &Packet, now: Timestamp) -> FlowEvent {
        self.judge_packet(false, packet, now)
    }

    fn egress_frame(&mut self, frame: &[u8], now: Timestamp) -> Option<FlowEvent> {
        self.judge_frame(true, frame, now)
    }

    fn ingress_frame(&mut self, frame: &[u8], now: Timestamp) -> Option<FlowEvent> {
        self.judge_frame(false, frame, now)
    }

    fn identity_of(&self, addr: IpAddr) -> Identity {
        // The map's own longest-prefix lookup, as the program does it.
        let hit = match addr {
            IpAddr::V4(a) => self.ipcache4.get(&Key::new(32, a.octets()), 0),
            IpAddr::V6(a) => self.ipcache6.get(&Key::new(128, a.octets()), 0),
        };
        hit.map_or(Identity::WORLD, |v| {
            Identity(IpcacheValue::from_bytes(&v).identity)
        })
    }

    fn conntrack_gc(&mut self, now: Timestamp) -> Vec<(EndpointId, IpAddr)> {
        if self.set_now(now).is_err() {
            return Vec::new();
        }
        let now = self.now().as_nanos();
        let mut expired = Vec::new();
        let mut alive = Vec::new();
        for (key, value) in self.conntrack_entries() {
            if now > value.expires_ns {
                expired.push(key);
            } else if value.flags & abi::CT_FLAG_INGRESS == 0 {
                alive.push((EndpointId(value.endpoint_id), key.dst()));
            }
        }
        for key in expired {
            // A flow renewed between the read and the delete loses a few seconds of life at
            // worst: its next packet recreates it.
            self.ct_remove(&key);
        }
        alive.sort_unstable();
        alive.dedup();
        alive
    }

    fn ipcache_entries(&self) -> Vec<(Prefix, Identity)> {
        let mut out: Vec<(Prefix, Identity)> = self
            .ipcache4
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                (
                    Prefix {
                        addr: IpAddr::V4(k.data().into()),
                        len: u8::try_from(k.prefix_len()).unwrap_or(u8::MAX),
                    },
                    Identity(IpcacheValue::from_bytes(&v).identity),
                )
            })
            .chain(self.ipcache6.iter().filter_map(Result::ok).map(|(k, v)| {
                (
                    Prefix {
                        addr: IpAddr::V6(k.data().into()),
                        len: u8::try_from(k.prefix_len()).unwrap_or(u8::MAX),
                    },
                    Identity(IpcacheValue::from_bytes(&v).identity),
                )
            }))
            .collect();
        out.sort();
        out
    }

    fn policy_entries(&self, endpoint: EndpointId) -> Vec<(PolicyKey, PolicyAction)> {
        let mut out: Vec<(PolicyKey, PolicyAction)> = self
            .policy
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                let key = PolicyKeyAbi::from_data(k.prefix_len(), &k.data());
                if key.endpoint_id != endpoint.0 {
                    return None;
                }
                let key = key.to_key();
                let value = PolicyValueAbi::from_bytes(&v);
                let action = if value.flags & abi::POLICY_FLAG_DENY != 0 {
                    PolicyAction::Deny
                } else if value.proxy_port != 0 {
                    PolicyAction::RedirectDns(
                        self.dns
                            .get(&(endpoint, key))
                            .cloned()
                            .unwrap_or(DnsAllow::All),
                    )
                } else {
                    PolicyAction::Allow
                };
                Some((key, action))
            })
            .collect();
        out.sort_by_key(|(k, _)| *k);
        out
    }

    fn capacity(&self) -> Capacity {
        let v4 = self
            .ipcache_prefixes
            .iter()
            .filter(|p| p.addr.is_ipv4())
            .count();
        Capacity {
            ipcache4: MapUsage {
                used: v4,
                max: self.sizes.ipcache4,
            },
            ipcache6: MapUsage {
                used: self.ipcache_prefixes.len() - v4,
                max: self.sizes.ipcache6,
            },
            policy: MapUsage {
                used: self.policy_keys.len(),
                max: self.sizes.policy,
            },
            conntrack: MapUsage {
                used: self.ct4.keys().flatten().count(),
                max: self.sizes.conntrack,
            },
            conntrack6: MapUsage {
                used: self.ct6.keys().flatten().count(),
                max: self.sizes.conntrack,
            },
        }
    }
}
