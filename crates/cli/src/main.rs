//! `fqdnpath`: runs scenario files on the simulator and prints the flows in the style of
//! `hubble observe`, then each expectation that failed, then `N passed, N failed`. With
//! `--output json` (or `-o json`) stdout carries one JSON object per flow, shaped as
//! `hubble observe -o json` prints it; the failures and the summary go to stderr.
//!
//! `fqdnpath lint FILE...` reports static findings on scenarios or manifests (exit 1 when
//! there are any).
//!
//! Exit codes: 0 when every expectation held, 1 when some failed, 2 for invalid input (the
//! message names the file, the key path and the reason).

use std::path::Path;
use std::process::ExitCode;

use fqdnpath_sim::{Scenario, Simulation};

const USAGE: &str =
    "usage: fqdnpath run [--output text|json] FILE...\n       fqdnpath lint FILE...";

/// `fqdnpath lint`: prints each finding with its file and key path; exit 1 if any.
fn lint(files: &[String]) -> ExitCode {
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let paths: Vec<&Path> = files.iter().map(Path::new).collect();
    let count = match fqdnpath_sim::lint::lint_files(&paths) {
        Ok(findings) => {
            for f in &findings {
                println!("{f}");
            }
            findings.len()
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{count} finding(s)");
    if count == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run(args: &[String]) -> ExitCode {
    let mut json = false;
    let mut files = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--output" | "-o" => match args.next().map(String::as_str) {
                Some("json") => json = true,
                Some("text") => json = false,
                other => {
                    eprintln!("error: --output takes text or json, not {other:?}\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--output=json" => json = true,
            "--output=text" => json = false,
            flag if flag.starts_with('-') => {
                eprintln!("error: unknown flag {flag}\n{USAGE}");
                return ExitCode::from(2);
            }
            file => files.push(file.to_owned()),
        }
    }
    let files = files.as_slice();
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut passed = 0;
    let mut failed = 0;
    for file in files {
        let report = Scenario::load(Path::new(file))
            .and_then(Simulation::new)
            .and_then(|sim| sim.with_json(json).run());
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        for line in &report.lines {
            if json {
                println!("{}", line.json);
            } else {
                println!("{}", line.text);
            }
        }
        for failure in &report.failures {
            if json {
                eprintln!("FAILED {file}: {}", failure.message);
            } else {
                println!("FAILED {file}: {}", failure.message);
            }
        }
        failed += report.failures.len();
        passed += report.checked - report.failures.len();
    }
    if json {
        eprintln!("{passed} passed, {failed} failed");
    } else {
        println!("{passed} passed, {failed} failed");
    }
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
        Some("lint") => lint(&args[1..]),
        Some(cmd @ ("explain" | "replay")) => {
            eprintln!("fqdnpath {cmd}: not implemented yet");
            ExitCode::from(2)
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
