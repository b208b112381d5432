//! Property tests of the two-phase flow (resolve, then connect), over random zones, selector
//! sets, denies, datapath latencies and step sequences. Each case is written as a scenario
//! whose expectations an oracle derives from the properties:
//!
//! - soundness: a connect to an IP that no allowed answer ever carried is dropped;
//! - completeness: resolve-then-connect to a selected name on the allowed port is forwarded
//!   whenever the datapath latency is within `tofqdns-proxy-response-max-delay`;
//! - hold: when the latency exceeds the max delay, the answer is released first, and a connect
//!   to a never-seen IP right after it loses the race (dropped);
//! - deny wins: an IP under an `egressDeny` is never reached, learned or not;
//! - determinism: the same scenario gives the same flows;
//! - the kernel backend (root only) gives every flow the model's verdict: the scenario run
//!   with each node's datapath in the kernel prints the same lines as with the model.
//!
//! The cases and their oracle are in `common/mod.rs`. A failing case shrinks, and its scenario
//! YAML is printed.

mod common;

use common::{case, scenario};
use fqdnpath_datapath::{Datapath, DatapathError, MapSizes};
use fqdnpath_kernel::{Clock, KernelDatapath, kernel_tests_enabled};
use fqdnpath_sim::{Scenario, Simulation};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_two_phase_flow_is_sound_complete_held_and_deterministic(case in case()) {
        let yaml = scenario(&case);
        let run = || {
            Scenario::from_str("two-phase.yaml", &yaml)
                .and_then(Simulation::new)
                .and_then(Simulation::run)
                .map_err(|e| TestCaseError::fail(format!("{e}\n--- scenario ---\n{yaml}")))
        };
        let report = run()?;
        prop_assert!(report.failures.is_empty(), "{:?}\n--- scenario ---\n{}", report.failures, yaml);
        prop_assert_eq!(report, run()?, "not deterministic\n{}", yaml);
    }
}

fn kernel_datapath(_node: &str) -> Result<Box<dyn Datapath>, DatapathError> {
    Ok(Box::new(KernelDatapath::load(
        MapSizes::default(),
        Clock::Virtual,
    )?))
}

/// The kernel run of the scenario `load` gives: its report (lines with their Hubble JSON,
/// expectations checked, failures) equals the model's. `shown` is printed on failure.
fn kernel_agrees(
    load: impl Fn() -> Result<Scenario, fqdnpath_sim::ScenarioError>,
    shown: &str,
) -> Result<(), TestCaseError> {
    let fail = |e: fqdnpath_sim::ScenarioError| TestCaseError::fail(format!("{e}\n{shown}"));
    let model = load()
        .and_then(Simulation::new)
        .and_then(|s| s.with_json(true).run())
        .map_err(fail)?;
    let kernel = load()
        .and_then(|s| Simulation::with_datapaths(s, &mut kernel_datapath))
        .and_then(|s| s.with_json(true).run())
        .map_err(fail)?;
    prop_assert_eq!(
        kernel,
        model,
        "the kernel disagrees\n--- scenario ---\n{}",
        shown
    );
    Ok(())
}

proptest! {
    // Each case loads one kernel datapath per node (the verifier's work): fewer cases.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_kernel_backend_gives_the_models_verdicts(case in case()) {
        if !kernel_tests_enabled("the_kernel_backend_gives_the_models_verdicts") {
            return Ok(());
        }
        let yaml = scenario(&case);
        kernel_agrees(|| Scenario::from_str("two-phase.yaml", &yaml), &yaml)?;
    }
}

#[test]
fn the_example_scenarios_run_alike_in_the_kernel() {
    if !kernel_tests_enabled("the_example_scenarios_run_alike_in_the_kernel") {
        return;
    }
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let shown = path.display().to_string();
            kernel_agrees(|| Scenario::load(&path), &shown).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
    }
    assert!(seen >= 7, "the example scenarios were found ({seen})");
}
