//! `fqdnpath`: runs scenario files on the simulator and prints the flows in the style of
//! `hubble observe`, then each expectation that failed, then `N passed, N failed`. With
//! `--output json` (or `-o json`) stdout carries one JSON object per flow, shaped as
//! `hubble observe -o json` prints it; the failures and the summary go to stderr.
//!
//! `fqdnpath run --kernel ...` runs the same scenarios with every node's datapath in the Linux
//! kernel (the eBPF program of `fqdnpath-kernel`, judged through `BPF_PROG_TEST_RUN` on the
//! simulator's virtual clock) instead of the reference model; it needs root and prints the
//! same flows. Without root or the compiled program it says why and exits 2.
//!
//! `fqdnpath explain FILE --pod NS/NAME --to IP|NAME --port N` prints the chain behind one
//! verdict after the scenario's steps (or the first `--after-step N` of them).
//!
//! `fqdnpath lint FILE...` reports static findings on scenarios or manifests (exit 1 when
//! there are any).
//!
//! Exit codes: 0 when every expectation held, 1 when some failed, 2 for invalid input (the
//! message names the file, the key path and the reason).

use std::path::Path;
use std::process::ExitCode;

use fqdnpath_datapath::{Datapath, DatapathError, MapSizes};
use fqdnpath_kernel::{Clock, KernelDatapath};
use fqdnpath_sim::{Scenario, Simulation};

const USAGE: &str = "usage: fqdnpath run [--output text|json] [--kernel] FILE...
       fqdnpath lint FILE...
       fqdnpath explain FILE --pod NS/NAME --to IP|NAME --port PORT [--protocol TCP|UDP] [--after-step N]";

/// `fqdnpath explain`: the chain behind one verdict at one point of a scenario.
fn explain(args: &[String]) -> ExitCode {
    let mut file = None;
    let (mut pod, mut to, mut port) = (None, None, None);
    let mut protocol = "TCP".to_owned();
    let mut after = usize::MAX;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned();
        match arg.as_str() {
            "--pod" => pod = value(),
            "--to" => to = value(),
            "--port" => port = value().and_then(|v| v.parse::<u16>().ok()),
            "--protocol" => protocol = value().unwrap_or_default(),
            "--after-step" => {
                let Some(n) = value().and_then(|v| v.parse().ok()) else {
                    eprintln!("error: --after-step takes a step count\n{USAGE}");
                    return ExitCode::from(2);
                };
                after = n;
            }
            flag if flag.starts_with('-') => {
                eprintln!("error: unknown flag {flag}\n{USAGE}");
                return ExitCode::from(2);
            }
            f => file = Some(f.to_owned()),
        }
    }
    let (Some(file), Some(pod), Some(to), Some(port)) = (file, pod, to, port) else {
        eprintln!("error: explain needs FILE, --pod, --to and --port\n{USAGE}");
        return ExitCode::from(2);
    };
    let lines = Scenario::load(Path::new(&file))
        .and_then(Simulation::new)
        .and_then(|sim| sim.explain(after, &pod, &to, port, &protocol));
    match lines {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}

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
            eprintln!("error: {}", chain(&e));
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

/// A node's datapath in the kernel, on the simulator's clock.
fn kernel_datapath(_node: &str) -> Result<Box<dyn Datapath>, DatapathError> {
    Ok(Box::new(KernelDatapath::load(
        MapSizes::default(),
        Clock::Virtual,
    )?))
}

/// An error with its chain of sources, `: `-separated, as the user reads it (a source whose
/// words the message already ends with is not repeated).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let words = cause.to_string();
        if !text.ends_with(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        source = cause.source();
    }
    text
}

fn run(args: &[String]) -> ExitCode {
    let mut json = false;
    let mut kernel = false;
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
            "--kernel" => kernel = true,
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
    if kernel && let Some(why) = fqdnpath_kernel::unavailable() {
        eprintln!("error: --kernel: the kernel backend is unavailable: {why}");
        return ExitCode::from(2);
    }
    let mut passed = 0;
    let mut failed = 0;
    for file in files {
        let report = Scenario::load(Path::new(file))
            .and_then(|scenario| {
                if kernel {
                    Simulation::with_datapaths(scenario, &mut kernel_datapath)
                } else {
                    Simulation::new(scenario)
                }
            })
            .and_then(|sim| sim.with_json(json).run());
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {}", chain(&e));
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
        Some("explain") => explain(&args[1..]),
        Some(cmd @ "replay") => {
            eprintln!("fqdnpath {cmd}: not implemented yet");
            ExitCode::from(2)
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chain;
    use fqdnpath_datapath::DatapathError;
    use fqdnpath_sim::scenario::ScenarioError;

    #[test]
    fn a_backend_error_reaches_the_user_with_its_chain() {
        let error = ScenarioError::Datapath {
            file: "s.yaml".into(),
            node: "node-1".into(),
            source: DatapathError::Backend(Box::new(std::io::Error::other("no BPF here"))),
        };
        assert_eq!(
            chain(&error),
            "s.yaml: cluster.nodes: datapath for node-1: datapath backend: no BPF here"
        );
    }

    /// An error whose message already ends with its source's, as `SourceError::Io` does.
    #[derive(Debug)]
    struct Says(std::io::Error);

    impl std::fmt::Display for Says {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "p.yaml: {}", self.0)
        }
    }

    impl std::error::Error for Says {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_source_the_message_already_says_is_not_repeated() {
        assert_eq!(chain(&Says(std::io::Error::other("gone"))), "p.yaml: gone");
    }
}
