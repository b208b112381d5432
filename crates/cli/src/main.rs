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
//! `fqdnpath completions bash|zsh|fish|elvish|powershell` prints a completion script.
//!
//! A FILE that is `-` is standard input, named `<stdin>` in messages.
//!
//! Exit codes: 0 when every expectation held, 1 when some failed, 2 for invalid input (the
//! message names the file, the key path and the reason) and for misuse of the command line.
//!
//! Modules: [`args`] (the command line, parsed by clap), [`input`] (a FILE or standard input),
//! one module per subcommand ([`run`], [`lint`], [`explain`]).

/// `println!` that ends the process quietly when stdout is closed (`fqdnpath run ... | head`),
/// as Unix tools do, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::print_line(format_args!($($arg)*))
    };
}

mod args;
mod explain;
mod input;
mod lint;
mod run;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{Cli, Command};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => run::run(&args),
        Command::Lint(args) => lint::lint(&args),
        Command::Explain(args) => explain::explain(&args),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            let name = command.get_name().to_owned();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, name, &mut script);
            write_stdout(&script);
            ExitCode::SUCCESS
        }
    }
}

/// Writes a line on stdout (see [`out!`]).
fn print_line(line: std::fmt::Arguments<'_>) {
    write_stdout(format!("{line}\n").as_bytes());
}

/// Writes `bytes` on stdout. When the reader has gone, the process ends with exit 0, as
/// ripgrep does; another error is exit 2.
fn write_stdout(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: standard output: {e}");
        std::process::exit(2);
    }
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

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
