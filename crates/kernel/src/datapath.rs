//! [`KernelDatapath`]: the BPF maps and programs behind the `Datapath` trait.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap as BpfHashMap, MapData, MapError, PerCpuArray, RingBuf};
use aya::programs::tc::{NlOptions, TcAttachOptions};
use aya::programs::{
    LinkOrder, ProgramError, SchedClassifier, TcAttachType, TestRun, TestRunOptions,
};
use aya::{Ebpf, EbpfLoader};
use fqdnpath_datapath::abi::{
    self, CtKey, CtKey4, CtKey6, CtValue, EndpointValue, FlowEventAbi, IpcacheValue, PolicyKeyAbi,
    PolicyValueAbi, State,
};
use fqdnpath_datapath::frame::{Parsed, build_frame, parse_frame, tcp_flags};
use fqdnpath_datapath::{Capacity, MapUsage};
use fqdnpath_datapath::{Datapath, DatapathError, FlowEvent, MapSizes, Packet, Verdict};
use fqdnpath_names::Timestamp;
use fqdnpath_policy::compile::{Delta, EndpointId, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{
    DnsAllow, DropReason, MatchType, PROTO_TCP, PolicyAction, PolicyKey,
};

use crate::netns::NetNs;

const PROG_EGRESS: &str = "fqdnpath_egress";
const PROG_INGRESS: &str = "fqdnpath_ingress";
const PROG_BARE: &str = "fqdnpath_bare";
/// Endpoints one node's datapath holds.
const ENDPOINTS_MAX: u32 = 1024;
/// Ring-buffer bytes: 16384 events.
const EVENTS_BYTES: u32 = 1 << 20;
const ENOSPC: i32 = 28;
const E2BIG: i32 = 7;
const ENOENT: i32 = 2;
const TC_ACT_SHOT: u32 = 2;

/// What went wrong in the kernel backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The backend cannot run here (no eBPF object, not root).
    #[error("the kernel backend is unavailable: {0}")]
    Unavailable(String),
    /// The object could not be loaded (maps created, relocations applied).
    #[error("loading the eBPF object: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    /// The verifier rejected a program; `log` is its log.
    #[error("the verifier rejected {program}: {source}\n{log}")]
    Verifier {
        /// The program.
        program: &'static str,
        /// The syscall's error.
        source: io::Error,
        /// The verifier's log.
        log: String,
    },
    /// A program operation (load, test run, attach, detach) failed.
    #[error("{op} {program}: {source}")]
    Program {
        /// What was done.
        op: &'static str,
        /// The program.
        program: &'static str,
        /// Why it failed.
        source: Box<ProgramError>,
    },
    /// A map operation failed.
    #[error("{op} on map {map}: {source}")]
    Map {
        /// What was done.
        op: &'static str,
        /// The map.
        map: &'static str,
        /// Why it failed.
        source: Box<MapError>,
    },
    /// A network namespace or interface operation failed.
    #[error("{0}")]
    Netns(String),
    /// The program's return value and its flow event disagree, or no event came.
    #[error("inconsistent result from {program}: {detail}")]
    Inconsistent {
        /// The program.
        program: &'static str,
        /// What disagreed.
        detail: String,
    },
}

impl From<KernelError> for DatapathError {
    fn from(e: KernelError) -> Self {
        DatapathError::Backend(Box::new(e))
    }
}

fn map_err(op: &'static str, map: &'static str) -> impl FnOnce(MapError) -> KernelError {
    move |source| KernelError::Map {
        op,
        map,
        source: Box::new(source),
    }
}

fn prog_err(op: &'static str, program: &'static str) -> impl FnOnce(ProgramError) -> KernelError {
    move |source| match source {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => KernelError::Verifier {
            program,
            source: io_error,
            log: verifier_log.to_string(),
        },
        other => KernelError::Program {
            op,
            program,
            source: Box::new(other),
        },
    }
}

/// The errno of a failed map syscall, if that is what failed.
fn errno(e: &MapError) -> Option<i32> {
    match e {
        MapError::SyscallError(s) => s.io_error.raw_os_error(),
        MapError::IoError(e) => e.raw_os_error(),
        _ => None,
    }
}

/// Which clock the program reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The `now` passed to [`Datapath::egress`] and friends (written into the state map
    /// before each test run): conntrack ages exactly as in the model.
    Virtual,
    /// `bpf_ktime_get_ns()`, `CLOCK_MONOTONIC`: for real traffic on an attached interface.
    Kernel,
}

/// The program's per-verdict counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets forwarded.
    pub forwarded: u64,
    /// Packets redirected to the DNS proxy.
    pub redirected: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Flow events the ring buffer had no room for.
    pub events_lost: u64,
}

/// How [`KernelDatapath::attach_with`] attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// TCX links (kernel >= 6.6), else netlink clsact filters.
    Auto,
    /// Netlink clsact filters only.
    Netlink,
}

/// The programs attached to one interface; detached by [`KernelDatapath::detach`] or when
/// the datapath is dropped.
#[derive(Debug)]
pub struct Attachment {
    iface: String,
    netns: Option<String>,
    /// (program, TC direction, link), detached in reverse order.
    links: Vec<(&'static str, aya::programs::tc::SchedClassifierLinkId)>,
    /// Whether the netlink fallback was used (its filters outlive the process).
    netlink: bool,
}

impl Attachment {
    /// The interface.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Whether the programs are attached through TCX links (else netlink clsact filters).
    pub fn is_tcx(&self) -> bool {
        !self.netlink
    }
}

/// The eBPF datapath: the object loaded, its maps and programs, and the bookkeeping the
/// kernel does not hold (which names a DNS redirect allows, how full the maps are).
pub struct KernelDatapath {
    ebpf: Ebpf,
    clock: Clock,
    sizes: MapSizes,
    ipcache4: LpmTrie<MapData, [u8; 4], [u8; 8]>,
    ipcache6: LpmTrie<MapData, [u8; 16], [u8; 8]>,
    policy: LpmTrie<MapData, [u8; 12], [u8; 8]>,
    endpoints4: BpfHashMap<MapData, [u8; 4], [u8; 8]>,
    endpoints6: BpfHashMap<MapData, [u8; 16], [u8; 8]>,
    ct4: BpfHashMap<MapData, [u8; 16], [u8; 16]>,
    ct6: BpfHashMap<MapData, [u8; 40], [u8; 16]>,
    state: Array<MapData, [u8; 16]>,
    /// `fqdn_endpoints_gen`: bumped after every change to the endpoint maps, so that no CPU
    /// keeps using a cached endpoint that changed.
    endpoints_gen: Array<MapData, u64>,
    endpoints_gen_shadow: u64,
    counters: PerCpuArray<MapData, u64>,
    events: RingBuf<MapData>,
    bare: BpfHashMap<MapData, u32, u32>,
    /// The state map's content as last written.
    state_shadow: State,
    ipcache_prefixes: BTreeSet<Prefix>,
    policy_keys: BTreeSet<(EndpointId, PolicyKey)>,
    /// The names each redirect entry lets through (the kernel keeps only the proxy port).
    dns: BTreeMap<(EndpointId, PolicyKey), DnsAllow>,
    endpoint_addrs: BTreeMap<EndpointId, BTreeMap<IpAddr, Identity>>,
    failed_endpoints: BTreeSet<EndpointId>,
    /// How many identity-0 policy keys each endpoint has.
    wildcard_keys: BTreeMap<EndpointId, usize>,
    /// Events read from the ring buffer while looking for a test run's own.
    backlog: VecDeque<FlowEventAbi>,
    attachments: Vec<Attachment>,
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

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, KernelError>
where
    T: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf.take_map(name).ok_or_else(|| KernelError::Map {
        op: "take",
        map: name,
        source: Box::new(MapError::InvalidName {
            name: name.to_owned(),
        }),
    })?;
    T::try_from(map).map_err(map_err("open", name))
}

fn u32_size(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

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
    /// Loads the program with maps of these sizes (the verifier runs here).
    pub fn load(sizes: MapSizes, clock: Clock) -> Result<Self, KernelError> {
        if let Some(why) = crate::unavailable() {
            return Err(KernelError::Unavailable(why));
        }
        let object = crate::OBJECT.ok_or_else(|| KernelError::Unavailable("no object".into()))?;
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("fqdn_ipcache4", u32_size(sizes.ipcache4.max(1)))
            .map_max_entries("fqdn_ipcache6", u32_size(sizes.ipcache6.max(1)))
            .map_max_entries("fqdn_policy", u32_size(sizes.policy.max(1)))
            .map_max_entries("fqdn_ct4", u32_size(sizes.conntrack.max(1)))
            .map_max_entries("fqdn_ct6", u32_size(sizes.conntrack.max(1)))
            .map_max_entries("fqdn_endpoints4", ENDPOINTS_MAX)
            .map_max_entries("fqdn_endpoints6", ENDPOINTS_MAX)
            .map_max_entries("fqdn_events", EVENTS_BYTES)
            .load(object)
            .map_err(|e| KernelError::Load(Box::new(e)))?;
        for name in [PROG_EGRESS, PROG_INGRESS, PROG_BARE] {
            classifier(&mut ebpf, name)?
                .load()
                .map_err(prog_err("load", name))?;
        }
        let mut dp = Self {
            ipcache4: take(&mut ebpf, "fqdn_ipcache4")?,
            ipcache6: take(&mut ebpf, "fqdn_ipcache6")?,
            policy: take(&mut ebpf, "fqdn_policy")?,
            endpoints4: take(&mut ebpf, "fqdn_endpoints4")?,
            endpoints6: take(&mut ebpf, "fqdn_endpoints6")?,
            ct4: take(&mut ebpf, "fqdn_ct4")?,
            ct6: take(&mut ebpf, "fqdn_ct6")?,
            state: take(&mut ebpf, "fqdn_state")?,
            endpoints_gen: take(&mut ebpf, "fqdn_endpoints_gen")?,
            endpoints_gen_shadow: 0,
            counters: take(&mut ebpf, "fqdn_counters")?,
            events: take(&mut ebpf, "fqdn_events")?,
            bare: take(&mut ebpf, "fqdn_bare_hash")?,
            ebpf,
            clock,
            sizes,
            state_shadow: State::default(),
            ipcache_prefixes: BTreeSet::new(),
            policy_keys: BTreeSet::new(),
            dns: BTreeMap::new(),
            endpoint_addrs: BTreeMap::new(),
            failed_endpoints: BTreeSet::new(),
            wildcard_keys: BTreeMap::new(),
            backlog: VecDeque::new(),
            attachments: Vec::new(),
        };
        let flags = if clock == Clock::Virtual {
            abi::STATE_VIRTUAL_CLOCK
        } else {
            0
        };
        dp.write_state(State {
            now_ns: 0,
            flags,
            pad: 0,
        })?;
        Ok(dp)
    }

    /// The clock the program reads.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn write_state(&mut self, state: State) -> Result<(), KernelError> {
        self.state
            .set(0, state.to_bytes(), 0)
            .map_err(map_err("update", "fqdn_state"))?;
        self.state_shadow = state;
        Ok(())
    }

    /// Reads the state back (the programs set `INGRESS_SEEN`).
    fn read_state(&mut self) -> Result<State, KernelError> {
        let bytes = self
            .state
            .get(&0, 0)
            .map_err(map_err("lookup", "fqdn_state"))?;
        self.state_shadow = State::from_bytes(&bytes);
        Ok(self.state_shadow)
    }

    fn set_state_flag(&mut self, flag: u32) -> Result<(), KernelError> {
        let mut state = self.read_state()?;
        state.flags |= flag;
        self.write_state(state)
    }

    /// Sets the virtual clock (a no-op under [`Clock::Kernel`]).
    fn set_now(&mut self, now: Timestamp) -> Result<(), KernelError> {
        if self.clock != Clock::Virtual || self.state_shadow.now_ns == now.as_nanos() {
            return Ok(());
        }
        // The programs may have set INGRESS_SEEN since the last write: read, then write.
        let mut state = self.read_state()?;
        state.now_ns = now.as_nanos();
        self.write_state(state)
    }

    /// The time the program would read now.
    fn now(&self) -> Timestamp {
        match self.clock {
            Clock::Virtual => Timestamp::from_nanos(self.state_shadow.now_ns),
            Clock::Kernel => {
                let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
                let nanos = u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000
                    + u64::try_from(t.tv_nsec).unwrap_or(0);
                Timestamp::from_nanos(nanos)
            }
        }
    }

    /// Runs `program` on `frame` through `BPF_PROG_TEST_RUN`: the verdict as the program
    /// returns it (`TC_ACT_SHOT` = dropped) and the flow event it emitted (`None` for a frame
    /// passed unjudged, ARP).
    pub fn test_run(
        &mut self,
        program: &'static str,
        frame: &[u8],
        now: Timestamp,
    ) -> Result<(bool, Option<FlowEventAbi>), KernelError> {
        self.set_now(now)?;
        // Whatever is already in the ring buffer is someone else's.
        self.drain_ring();
        let prog = classifier(&mut self.ebpf, program)?;
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ..TestRunOptions::default()
            })
            .map_err(prog_err("test run", program))?;
        let dropped = result.return_value == TC_ACT_SHOT;
        let event = self
            .events
            .next()
            .and_then(|item| FlowEventAbi::from_bytes(&item));
        if let Some(ev) = &event {
            let event_dropped = ev.verdict == abi::VERDICT_DROPPED;
            if event_dropped != dropped {
                return Err(KernelError::Inconsistent {
                    program,
                    detail: format!(
                        "returned {} but its event says verdict {}",
                        result.return_value, ev.verdict
                    ),
                });
            }
        }
        Ok((dropped, event))
    }

    /// Runs the egress program on `frame` and returns the `skb->mark` it left: for a packet
    /// redirected to the DNS proxy, [`abi::MARK_MAGIC_TO_PROXY`] with the proxy port in the
    /// upper 16 bits (Cilium's tproxy mark); otherwise 0. The event is discarded.
    pub fn egress_mark(&mut self, frame: &[u8], now: Timestamp) -> Result<u32, KernelError> {
        self.set_now(now)?;
        self.drain_ring();
        // struct __sk_buff: len, pkt_type, then mark at offset 8.
        let mut ctx = [0u8; 192];
        let prog = classifier(&mut self.ebpf, PROG_EGRESS)?;
        prog.test_run(TestRunOptions {
            data_in: Some(frame),
            ctx_out: Some(&mut ctx),
            ..TestRunOptions::default()
        })
        .map_err(prog_err("test run", PROG_EGRESS))?;
        while self.events.next().is_some() {}
        Ok(u32::from_ne_bytes([ctx[8], ctx[9], ctx[10], ctx[11]]))
    }

    /// Times `repeat` runs of `program` on `frame` in the kernel; returns the kernel's
    /// average duration per run. The events they emit are discarded.
    pub fn time_program(
        &mut self,
        program: &'static str,
        frame: &[u8],
        repeat: u32,
    ) -> Result<Duration, KernelError> {
        let prog = classifier(&mut self.ebpf, program)?;
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..TestRunOptions::default()
            })
            .map_err(prog_err("test run", program))?;
        while self.events.next().is_some() {}
        Ok(result.duration)
    }

    /// The name of the egress program, for [`KernelDatapath::time_program`].
    pub const EGRESS: &'static str = PROG_EGRESS;
    /// The name of the ingress program.
    pub const INGRESS: &'static str = PROG_INGRESS;
    /// The name of the baseline program: one IPv4 LPM lookup and one hash lookup, nothing
    /// else. Its hash map is filled by [`KernelDatapath::fill_bare_hash`].
    pub const BARE: &'static str = PROG_BARE;

    /// Puts `identity` into the baseline program's hash map.
    pub fn fill_bare_hash(&mut self, identity: Identity) -> Result<(), KernelError> {
        self.bare
            .insert(identity.0, 1, 0)
            .map_err(map_err("update", "fqdn_bare_hash"))
    }

    fn drain_ring(&mut self) {
        while let Some(item) = self.events.next() {
            if let Some(ev) = FlowEventAbi::from_bytes(&item) {
                self.backlog.push_back(ev);
            }
        }
    }

    /// The flow events emitted since the last call (real traffic on attached interfaces),
    /// oldest first. Events of test runs are returned by the test runs instead.
    pub fn events(&mut self) -> Vec<FlowEvent> {
        self.drain_ring();
        let raw: Vec<FlowEventAbi> = self.backlog.drain(..).collect();
        raw.iter().map(|ev| self.flow_event(ev)).collect()
    }

    /// Waits until the ring buffer has an event or `timeout` passes.
    pub fn wait_events(&mut self, timeout: Duration) -> Result<(), KernelError> {
        use std::os::fd::AsFd as _;
        if !self.backlog.is_empty() {
            return Ok(());
        }
        let fd = self.events.as_fd();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::time::Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(KernelError::Netns(format!("poll on the ring buffer: {e}"))),
        }
    }

    /// The per-verdict counters.
    pub fn counters(&self) -> Result<Counters, KernelError> {
        let read = |index: u32| -> Result<u64, KernelError> {
            let values = self
                .counters
                .get(&index, 0)
                .map_err(map_err("lookup", "fqdn_counters"))?;
            Ok(values.iter().sum())
        };
        Ok(Counters {
            forwarded: read(abi::COUNTER_FORWARDED)?,
            redirected: read(abi::COUNTER_REDIRECTED)?,
            dropped: read(abi::COUNTER_DROPPED)?,
            events_lost: read(abi::COUNTER_EVENTS_LOST)?,
        })
    }

    /// A kernel event as the model's flow event.
    pub fn flow_event(&self, ev: &FlowEventAbi) -> FlowEvent {
        let verdict = match ev.verdict {
            abi::VERDICT_FORWARDED => Verdict::Forwarded,
            abi::VERDICT_REDIRECTED => Verdict::Redirected,
            _ => Verdict::Dropped,
        };
        let proto = ev.protocol;
        let packet = Packet {
            src: ev.src(),
            dst: ev.dst(),
            proto,
            sport: u16::from_be(ev.sport),
            dport: u16::from_be(ev.dport),
            flags: if proto == PROTO_TCP {
                tcp_flags(ev.tcp_flags)
            } else {
                tcp_flags(0)
            },
        };
        let endpoint = (ev.endpoint_id != 0).then_some(EndpointId(ev.endpoint_id));
        let egress = ev.egress == 1;
        let policy_key = (ev.policy_prefix_len != abi::NO_POLICY_KEY).then(|| {
            let remote = if egress {
                ev.dst_identity
            } else {
                ev.src_identity
            };
            let identity = if ev.policy_specific == 1 {
                Identity(remote)
            } else {
                Identity::ANY
            };
            PolicyKeyAbi {
                prefixlen: abi::POLICY_FIXED_BITS + u32::from(ev.policy_prefix_len),
                endpoint_id: ev.endpoint_id,
                egress: 1,
                pad0: 0,
                identity: identity.0,
                protocol: proto,
                dport: packet.dport.to_be_bytes(),
                pad1: 0,
            }
            .to_key()
        });
        let dns = match (verdict, endpoint, policy_key) {
            (Verdict::Redirected, Some(ep), Some(key)) => self.dns.get(&(ep, key)).cloned(),
            _ => None,
        };
        FlowEvent {
            time: Timestamp::from_nanos(ev.ts_ns),
            verdict,
            drop_reason: DropReason::from_code(ev.drop_reason),
            egress,
            endpoint,
            packet,
            src_identity: Identity(ev.src_identity),
            dst_identity: Identity(ev.dst_identity),
            is_reply: ev.is_reply == 1,
            match_type: MatchType::from_code(ev.match_type),
            policy_key,
            dns,
        }
    }

    /// Judges a frame with `program`; the event as the model's. `None`: passed unjudged.
    fn judge(
        &mut self,
        program: &'static str,
        frame: &[u8],
        now: Timestamp,
    ) -> Result<Option<FlowEvent>, KernelError> {
        let (dropped, event) = self.test_run(program, frame, now)?;
        match event {
            Some(ev) => Ok(Some(self.flow_event(&ev))),
            None if !dropped && matches!(parse_frame(frame), Parsed::Arp) => Ok(None),
            None => Err(KernelError::Inconsistent {
                program,
                detail: format!(
                    "no flow event (dropped: {dropped}); events lost: {}",
                    self.counters().map_or(0, |c| c.events_lost)
                ),
            }),
        }
    }

    /// What the trait's judging methods return when the kernel could not be asked: the
    /// packet is dropped (fail closed).
    fn failed_event(packet: &Packet, now: Timestamp, egress: bool, e: &KernelError) -> FlowEvent {
        // Leave a trace: the trait's methods cannot return the error.
        eprintln!("fqdnpath-kernel: failing closed: {e}");
        fqdnpath_datapath::invalid_frame_event(packet, DropReason::PolicyDenied, egress, now)
    }

    /// A frame judged by the egress or ingress program; when the kernel cannot be asked, the
    /// frame is dropped (fail closed), ARP aside.
    fn judge_frame(&mut self, egress: bool, frame: &[u8], now: Timestamp) -> Option<FlowEvent> {
        let program = if egress { PROG_EGRESS } else { PROG_INGRESS };
        self.judge(program, frame, now).unwrap_or_else(|e| {
            let packet = match parse_frame(frame) {
                Parsed::Ip(p) | Parsed::Invalid { partial: p, .. } => p,
                Parsed::Arp => return None,
            };
            Some(Self::failed_event(&packet, now, egress, &e))
        })
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

    fn write_endpoint(
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

    fn apply_one(&mut self, delta: &Delta) -> Result<(), DatapathError> {
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
        }
    }

    /// Attaches the egress program on `iface`'s TC egress and the ingress program on its
    /// ingress (TCX links; netlink clsact filters on kernels without TCX), in the network
    /// namespace `netns` (a name under `/var/run/netns`) or the current one.
    pub fn attach(&mut self, iface: &str, netns: Option<&str>) -> Result<(), KernelError> {
        self.attach_with(iface, netns, AttachMode::Auto)
    }

    /// [`KernelDatapath::attach`], choosing how: `AttachMode::Netlink` skips TCX (what older
    /// kernels get; the filters outlive the process unless detached, which
    /// [`KernelDatapath::detach`] and the drop do).
    pub fn attach_with(
        &mut self,
        iface: &str,
        netns: Option<&str>,
        mode: AttachMode,
    ) -> Result<(), KernelError> {
        let _inside = netns.map(NetNs::enter).transpose()?;
        let mut attachment = Attachment {
            iface: iface.to_owned(),
            netns: netns.map(str::to_owned),
            links: Vec::new(),
            netlink: false,
        };
        for (name, direction) in [
            (PROG_EGRESS, TcAttachType::Egress),
            (PROG_INGRESS, TcAttachType::Ingress),
        ] {
            let prog = classifier(&mut self.ebpf, name)?;
            let tcx = match mode {
                AttachMode::Auto => prog
                    .attach_with_options(
                        iface,
                        direction,
                        TcAttachOptions::TcxOrder(LinkOrder::default()),
                    )
                    .ok(),
                AttachMode::Netlink => None,
            };
            let link = if let Some(link) = tcx {
                link
            } else {
                // No TCX (kernel < 6.6): a clsact qdisc and a netlink filter.
                match aya::programs::tc::qdisc_add_clsact(iface) {
                    Ok(()) => {}
                    // Already there (EEXIST, or netlink's "Exclusivity flag on").
                    Err(e)
                        if e.to_string().contains("exists")
                            || e.to_string().contains("Exclusivity") => {}
                    Err(e) => {
                        return Err(KernelError::Netns(format!(
                            "adding a clsact qdisc to {iface}: {e}"
                        )));
                    }
                }
                attachment.netlink = true;
                prog.attach_with_options(
                    iface,
                    direction,
                    TcAttachOptions::Netlink(NlOptions::default()),
                )
                .map_err(prog_err("attach", name))?
            };
            attachment.links.push((name, link));
        }
        self.attachments.push(attachment);
        Ok(())
    }

    /// Detaches everything attached, from the namespaces it was attached in.
    pub fn detach(&mut self) -> Result<(), KernelError> {
        let mut first_error = None;
        while let Some(mut attachment) = self.attachments.pop() {
            let inside = match attachment.netns.as_deref().map(NetNs::enter).transpose() {
                Ok(inside) => inside,
                Err(e) => {
                    // The namespace is gone, and the links with it.
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            while let Some((name, link)) = attachment.links.pop() {
                let result = classifier(&mut self.ebpf, name)
                    .and_then(|p| p.detach(link).map_err(prog_err("detach", name)));
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
            }
            drop(inside);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The interfaces the programs are attached to.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

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
    fn ct_remove(&mut self, key: &CtKey) {
        let _ = match key {
            CtKey::V4(k) => self.ct4.remove(&k.to_bytes()),
            CtKey::V6(k) => self.ct6.remove(&k.to_bytes()),
        };
    }
}

fn classifier<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut SchedClassifier, KernelError> {
    let program = ebpf.program_mut(name).ok_or(KernelError::Program {
        op: "find",
        program: name,
        source: Box::new(ProgramError::NotLoaded),
    })?;
    program.try_into().map_err(prog_err("open", name))
}

impl Drop for KernelDatapath {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            eprintln!("fqdnpath-kernel: detaching on drop: {e}");
        }
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
        let frame = build_frame(packet, 0);
        match self.judge(PROG_EGRESS, &frame, now) {
            Ok(Some(event)) => event,
            Ok(None) => unreachable!("a built frame is IP, never ARP"),
            Err(e) => Self::failed_event(packet, now, true, &e),
        }
    }

    fn ingress(&mut self, packet: &Packet, now: Timestamp) -> FlowEvent {
        let frame = build_frame(packet, 0);
        match self.judge(PROG_INGRESS, &frame, now) {
            Ok(Some(event)) => event,
            Ok(None) => unreachable!("a built frame is IP, never ARP"),
            Err(e) => Self::failed_event(packet, now, false, &e),
        }
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
