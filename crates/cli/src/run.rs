//! `fqdnpath run`: each scenario's flows, its failed expectations, then one summary of all
//! the files. An invalid file is reported and the others still run; the summary counts what
//! ran, and the exit code is 2.

use std::process::ExitCode;

use fqdnpath_datapath::{Datapath, DatapathError, MapSizes};
use fqdnpath_kernel::{Clock, KernelDatapath};
use fqdnpath_sim::{Report, Scenario, ScenarioError, Simulation};

use crate::args::{Output, RunArgs};
use crate::chain;
use crate::input::{Input, stdin_once};

/// Expectations counted over all the files.
#[derive(Default)]
struct Totals {
    passed: usize,
    failed: usize,
    invalid: bool,
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    if let Err(why) = stdin_once(&args.files) {
        eprintln!("error: {why}");
        return ExitCode::from(2);
    }
    if args.kernel
        && let Some(why) = fqdnpath_kernel::unavailable()
    {
        eprintln!("error: --kernel: the kernel backend is unavailable: {why}");
        return ExitCode::from(2);
    }
    let json = args.output == Output::Json;
    let mut totals = Totals::default();
    for file in &args.files {
        let input = Input::of(file);
        let (report, error) = match input.scenario() {
            Ok(scenario) => run_scenario(scenario, args.kernel, json),
            Err(e) => (None, Some(e)),
        };
        if let Some(report) = report {
            print_report(&report, &file.display().to_string(), json, &mut totals);
        }
        if let Some(e) = error {
            eprintln!("error: {}", chain(&e));
            totals.invalid = true;
        }
    }
    let summary = format!("{} passed, {} failed", totals.passed, totals.failed);
    if json {
        eprintln!("{summary}");
    } else {
        out!("{summary}");
    }
    if totals.invalid {
        ExitCode::from(2)
    } else if totals.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Runs a scenario. When it fails at a step, the report is that of the steps before it (run
/// again up to there: the simulation is deterministic), beside the error.
fn run_scenario(
    scenario: Scenario,
    kernel: bool,
    json: bool,
) -> (Option<Report>, Option<ScenarioError>) {
    let simulate = |scenario: Scenario| {
        if kernel {
            Simulation::with_datapaths(scenario, &mut kernel_datapath)
        } else {
            Simulation::new(scenario)
        }
        .and_then(|sim| sim.with_json(json).run())
    };
    let mut before = scenario.clone();
    match simulate(scenario) {
        Ok(report) => (Some(report), None),
        Err(e) => {
            let partial = failed_step(&e).and_then(|step| {
                before.steps.truncate(step);
                simulate(before).ok()
            });
            (partial, Some(e))
        }
    }
}

/// The index of the step an error is about (its key path starts with `steps[N]`).
fn failed_step(error: &ScenarioError) -> Option<usize> {
    let ScenarioError::Invalid { path, .. } = error else {
        return None;
    };
    path.strip_prefix("steps[")?.split_once(']')?.0.parse().ok()
}

/// Prints a scenario's flows and failed expectations, and counts them.
fn print_report(report: &Report, file: &str, json: bool, totals: &mut Totals) {
    for line in &report.lines {
        if json {
            out!("{}", line.json);
        } else {
            out!("{}", line.text);
        }
    }
    for failure in &report.failures {
        if json {
            eprintln!("FAILED {file}: {}", failure.message);
        } else {
            out!("FAILED {file}: {}", failure.message);
        }
    }
    totals.failed += report.failures.len();
    totals.passed += report.checked - report.failures.len();
}

/// A node's datapath in the kernel, on the simulator's clock.
fn kernel_datapath(_node: &str) -> Result<Box<dyn Datapath>, DatapathError> {
    Ok(Box::new(KernelDatapath::load(
        MapSizes::default(),
        Clock::Virtual,
    )?))
}

#[cfg(test)]
mod tests {
    use super::failed_step;
    use fqdnpath_sim::ScenarioError;

    fn invalid(path: &str) -> ScenarioError {
        ScenarioError::Invalid {
            file: "s.yaml".into(),
            path: path.into(),
            reason: "wrong".into(),
        }
    }

    #[test]
    fn an_error_at_a_step_names_the_step() {
        assert_eq!(failed_step(&invalid("steps[3].connect.pod")), Some(3));
        assert_eq!(failed_step(&invalid("steps[12]")), Some(12));
        assert_eq!(failed_step(&invalid("cluster.pods[1].ip")), None);
        assert_eq!(failed_step(&invalid("")), None);
    }
}
