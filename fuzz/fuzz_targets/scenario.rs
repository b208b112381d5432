//! Scenario files from arbitrary text: parsing and building the cluster give a typed error,
//! never a panic. (Runs are left out: an arbitrary `advance` can ask for years of GC.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(scenario) = fqdnpath_sim::Scenario::from_str("fuzz.yaml", text)
    {
        let _ = fqdnpath_sim::Simulation::new(scenario);
    }
});
