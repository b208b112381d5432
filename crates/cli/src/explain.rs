//! `fqdnpath explain`: the chain behind one verdict at one point of a scenario.

use std::process::ExitCode;

use fqdnpath_sim::Simulation;

use crate::args::ExplainArgs;
use crate::chain;
use crate::input::Input;

pub(crate) fn explain(args: &ExplainArgs) -> ExitCode {
    let input = Input::of(&args.file);
    let scenario = match input.scenario() {
        Ok(scenario) => scenario,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            return ExitCode::from(2);
        }
    };
    // `--after-step` is checked against the scenario as soon as it is loaded.
    if let Some(after) = args.after_step
        && after > scenario.steps.len()
    {
        eprintln!(
            "error: {}: --after-step: {after} is past the end: the scenario has {} step(s)",
            scenario.file,
            scenario.steps.len()
        );
        return ExitCode::from(2);
    }
    let lines = Simulation::new(scenario).and_then(|sim| {
        sim.explain(
            args.after_step.unwrap_or(usize::MAX),
            &args.pod,
            &args.to,
            args.port,
            args.protocol.as_str(),
        )
    });
    match lines {
        Ok(lines) => {
            for line in lines {
                out!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}
