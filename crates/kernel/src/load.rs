//! Loading: the compiled object embedded by the build script, whether the backend can run here,
//! and [`KernelDatapath::load`], which sizes the maps, runs the verifier and takes the handles.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use aya::maps::MapError;
use aya::programs::{ProgramError, SchedClassifier};
use aya::{Ebpf, EbpfLoader};
use fqdnpath_datapath::MapSizes;
use fqdnpath_datapath::abi::{self, State};

use crate::datapath::KernelDatapath;
use crate::error::{KernelError, Unavailable, map_err, prog_err};
use crate::state::Clock;

/// The egress program's name in the object.
pub(crate) const PROG_EGRESS: &str = "fqdnpath_egress";
/// The ingress program's name in the object.
pub(crate) const PROG_INGRESS: &str = "fqdnpath_ingress";
/// Endpoints one node's datapath holds.
pub(crate) const ENDPOINTS_MAX: u32 = 1024;
/// Ring-buffer bytes: 16384 events.
const EVENTS_BYTES: u32 = 1 << 20;

/// The object `$file` the build script compiled into `OUT_DIR`, embedded (aligned, as aya
/// parses it in place); `None` if the build script found no clang (`fqdnpath_bpf` unset).
macro_rules! compiled_object {
    ($file:literal) => {{
        #[cfg(fqdnpath_bpf)]
        let object: Option<&'static [u8]> = Some(aya::include_bytes_aligned!(concat!(
            env!("OUT_DIR"),
            "/",
            $file
        )));
        #[cfg(not(fqdnpath_bpf))]
        let object: Option<&'static [u8]> = None;
        object
    }};
}
#[cfg(feature = "test-support")]
pub(crate) use compiled_object;

/// The compiled eBPF object, if the build script found clang.
static OBJECT: Option<&[u8]> = compiled_object!("fqdnpath.bpf.o");

/// Why an object the build script compiles is not there: it found no clang.
pub(crate) fn not_compiled() -> Unavailable {
    Unavailable::NotCompiled {
        clang: option_env!("FQDNPATH_BPF_CLANG").unwrap_or("clang"),
    }
}

/// The object, or why there is none.
fn object() -> Result<&'static [u8], Unavailable> {
    OBJECT.ok_or_else(not_compiled)
}

/// Why the kernel backend cannot run here, or `None` if it can: the eBPF object was compiled
/// and the process may load BPF programs (it runs as root). Loading can still fail (a kernel
/// without BPF): [`KernelDatapath::load`] then says why.
pub fn unavailable() -> Option<Unavailable> {
    if let Err(why) = object() {
        return Some(why);
    }
    if !rustix::process::geteuid().is_root() {
        return Some(Unavailable::NotRoot);
    }
    None
}

/// Takes the map `name` out of the loaded object, as the handle type `T`.
pub(crate) fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, KernelError>
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

/// The TC classifier `name` of the loaded object.
pub(crate) fn classifier<'a>(
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

/// A map size as the loader takes it.
pub(crate) fn u32_size(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl KernelDatapath {
    /// Loads the program with maps of these sizes (the verifier runs here).
    pub fn load(sizes: MapSizes, clock: Clock) -> Result<Self, KernelError> {
        if let Some(why) = unavailable() {
            return Err(why.into());
        }
        let object = object()?;
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
        for name in [PROG_EGRESS, PROG_INGRESS] {
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
}
