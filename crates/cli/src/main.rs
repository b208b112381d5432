//! `fqdnpath`: runs scenario files on the simulator and prints the flows in the style of
//! `hubble observe`, then each expectation that failed, then `N passed, N failed`.
//!
//! Exit codes: 0 when every expectation held, 1 when some failed, 2 for invalid input (the
//! message names the file, the key path and the reason).

use std::path::Path;
use std::process::ExitCode;

use fqdnpath_sim::{Scenario, Simulation};

const USAGE: &str = "usage: fqdnpath run FILE...";

fn run(files: &[String]) -> ExitCode {
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut passed = 0;
    let mut failed = 0;
    for file in files {
        let report = Scenario::load(Path::new(file))
            .and_then(Simulation::new)
            .and_then(Simulation::run);
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        for line in &report.lines {
            println!("{}", line.text);
        }
        for failure in &report.failures {
            println!("FAILED {file}: {}", failure.message);
        }
        failed += report.failures.len();
        passed += report.checked - report.failures.len();
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some(cmd @ ("lint" | "explain" | "replay")) => {
            eprintln!("fqdnpath {cmd}: not implemented yet");
            ExitCode::from(2)
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
