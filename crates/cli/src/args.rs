//! The command line, parsed by clap: each value is checked where it is parsed, so a mistake
//! is exit 2 with clap's message (and its "a similar argument exists" tip) before any file
//! is read. A single-valued option given twice is an error (clap's default for `Set`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum, value_parser};
use clap_complete::Shell;

/// The exit codes, under the main help.
const EXIT_CODES: &str = "\
Exit codes: 0 success, 1 a failed expectation (run) or a finding (lint), 2 invalid input or \
misuse of the command line.";

/// Understand and test DNS-name-based (FQDN) egress policy the way Cilium enforces it.
#[derive(Parser)]
#[command(name = "fqdnpath", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run scenarios on the simulator and print their flows as `hubble observe` does
    ///
    /// Prints each scenario's flows, then each expectation that failed, then `N passed, N
    /// failed` for all the files. An invalid file is reported after the flows it produced
    /// and the other files still run.
    #[command(
        after_help = "Exit codes: 0 every expectation held, 1 some failed, 2 invalid \
        input or misuse of the command line."
    )]
    Run(RunArgs),
    /// Report the mistakes that make FQDN policy fail silently
    ///
    /// Reads scenarios and Cilium manifests and prints each finding with its file and key
    /// path: DNS redirected by a Local Redirect Policy to pods the DNS rule does not allow,
    /// `toFQDNs` whose DNS never passes the proxy, a node-local cache forwarding into its own
    /// redirect, `toFQDNs` under `LocalDNS`, selectors no DNS name can match.
    #[command(
        after_help = "Exit codes: 0 no finding, 1 findings, 2 invalid input or misuse \
        of the command line."
    )]
    Lint(LintArgs),
    /// Explain the verdict a packet would get at one point of a scenario
    ///
    /// Prints the chain behind it: the translation, the ipcache entry and the identity's
    /// labels, the DNS cache entries and zombies, and the rules behind the deciding entry.
    #[command(
        after_help = "Exit codes: 0 explained, 2 invalid input or misuse of the command \
        line."
    )]
    Explain(ExplainArgs),
    /// Print a shell completion script
    ///
    /// bash: `source <(fqdnpath completions bash)`; zsh: `fqdnpath completions zsh >
    /// "${fpath[1]}/_fqdnpath"`; fish: `fqdnpath completions fish >
    /// ~/.config/fish/completions/fqdnpath.fish`.
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// `fqdnpath run`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// How flows are printed (with `json`, the failures and the summary go to stderr)
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
    /// Run each node's datapath in the Linux kernel (root) instead of the reference model
    #[arg(long)]
    pub(crate) kernel: bool,
    /// Scenario files; `-` is standard input (its manifest paths are relative to the current
    /// directory)
    #[arg(value_name = "FILE", required = true)]
    pub(crate) files: Vec<PathBuf>,
}

/// How `run` prints flows.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// `hubble observe`'s lines
    Text,
    /// `hubble observe -o json`'s objects, one a line
    Json,
}

/// `fqdnpath lint`.
#[derive(Args)]
pub(crate) struct LintArgs {
    /// Scenario or manifest files (the manifest files are linted together); `-` is standard
    /// input
    #[arg(value_name = "FILE", required = true)]
    pub(crate) files: Vec<PathBuf>,
}

/// `fqdnpath explain`.
#[derive(Args)]
pub(crate) struct ExplainArgs {
    /// The scenario file; `-` is standard input
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// The pod that sends the packet
    #[arg(long, value_name = "NS/NAME", value_parser = pod_key)]
    pub(crate) pod: String,
    /// The destination: an IP address, or a name the pod has resolved
    #[arg(long, value_name = "IP|NAME")]
    pub(crate) to: String,
    /// The destination port
    #[arg(long, value_parser = value_parser!(u16).range(1..))]
    pub(crate) port: u16,
    /// The protocol
    #[arg(long, value_enum, ignore_case = true, default_value_t = Protocol::Tcp)]
    pub(crate) protocol: Protocol,
    /// Explain after the first N steps of the scenario (by default, after all of them)
    #[arg(long, value_name = "N")]
    pub(crate) after_step: Option<usize>,
}

/// The protocol `explain` asks about.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Protocol {
    #[value(name = "TCP")]
    Tcp,
    #[value(name = "UDP")]
    Udp,
}

impl Protocol {
    /// As the simulator reads it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

/// A pod as `NAMESPACE/NAME`.
fn pod_key(text: &str) -> Result<String, String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(text.to_owned())
        }
        _ => Err("a pod is written NAMESPACE/NAME, such as default/app".to_owned()),
    }
}
