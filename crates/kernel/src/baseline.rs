//! The kernel bench's baseline (feature `test-support`): `fqdnpath_bare` from
//! `ebpf/bench.bpf.c`, an object of its own so that the production object does not carry it.
//! It makes one IPv4 LPM lookup and one hash lookup, nothing else: the floor the full
//! program's cost is measured against.

use std::time::Duration;

use aya::maps::lpm_trie::LpmTrie;
use aya::maps::{HashMap as BpfHashMap, MapData};
use aya::programs::{TestRun as _, TestRunOptions};
use aya::{Ebpf, EbpfLoader};
use fqdnpath_policy::identity::Identity;

use crate::datapath::KernelDatapath;
use crate::error::{KernelError, map_err, prog_err};
use crate::load::{classifier, compiled_object, not_compiled, take, u32_size};

/// The baseline program's name in the bench object.
const PROG_BARE: &str = "fqdnpath_bare";
/// `TC_ACT_SHOT`: the program dropped the packet.
const TC_ACT_SHOT: u32 = 2;

/// The compiled bench object, if the build script found clang.
static BENCH_OBJECT: Option<&[u8]> = compiled_object!("bench.bpf.o");

/// The baseline program, loaded with a copy of a datapath's IPv4 ipcache.
pub struct Baseline {
    ebpf: Ebpf,
    hash: BpfHashMap<MapData, u32, u32>,
}

impl std::fmt::Debug for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baseline").finish_non_exhaustive()
    }
}

impl Baseline {
    /// Loads the baseline, its IPv4 ipcache filled with the entries `datapath`'s holds now
    /// (the same prefixes, so that its LPM lookup walks a trie of the same shape).
    pub fn load(datapath: &KernelDatapath) -> Result<Self, KernelError> {
        if let Some(why) = crate::unavailable() {
            return Err(why.into());
        }
        let object = BENCH_OBJECT.ok_or_else(not_compiled)?;
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("fqdn_ipcache4", u32_size(datapath.sizes.ipcache4.max(1)))
            .map_max_entries("fqdn_ipcache6", 1)
            .load(object)
            .map_err(|e| KernelError::Load(Box::new(e)))?;
        classifier(&mut ebpf, PROG_BARE)?
            .load()
            .map_err(prog_err("load", PROG_BARE))?;
        let mut ipcache4: LpmTrie<MapData, [u8; 4], [u8; 8]> = take(&mut ebpf, "fqdn_ipcache4")?;
        for entry in &datapath.ipcache4 {
            let (key, value) = entry.map_err(map_err("iterate", "fqdn_ipcache4"))?;
            ipcache4
                .insert(&key, value, 0)
                .map_err(map_err("update", "fqdn_ipcache4"))?;
        }
        Ok(Self {
            hash: take(&mut ebpf, "fqdn_bare_hash")?,
            ebpf,
        })
    }

    /// Puts `identity` into the baseline's hash map: a destination of that identity is found
    /// (the program passes it), any other is not (it drops it).
    pub fn fill_hash(&mut self, identity: Identity) -> Result<(), KernelError> {
        self.hash
            .insert(identity.0, 1, 0)
            .map_err(map_err("update", "fqdn_bare_hash"))
    }

    /// Runs the baseline once on `frame`; whether it dropped it.
    pub fn test_run(&mut self, frame: &[u8]) -> Result<bool, KernelError> {
        let result = classifier(&mut self.ebpf, PROG_BARE)?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ..TestRunOptions::default()
            })
            .map_err(prog_err("test run", PROG_BARE))?;
        Ok(result.return_value == TC_ACT_SHOT)
    }

    /// Times `repeat` runs of the baseline on `frame` in the kernel; returns the kernel's
    /// average duration per run.
    pub fn time(&mut self, frame: &[u8], repeat: u32) -> Result<Duration, KernelError> {
        let result = classifier(&mut self.ebpf, PROG_BARE)?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..TestRunOptions::default()
            })
            .map_err(prog_err("test run", PROG_BARE))?;
        Ok(result.duration)
    }
}
