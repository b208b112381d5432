//! Project tasks, run as `cargo xtask <task>`.
//!
//! - `test`: installs what a fresh machine lacks (system packages, as root, through apt), then
//!   checks formatting, runs clippy with warnings as errors, and runs every test of the
//!   workspace. `.ci/run` calls exactly this.
//! - `deps`: only the installation step.
//! - `bench`: `cargo bench` over the whole suite.

use std::env;
use std::process::{Command, ExitCode};

/// System packages the project needs, as (a command that proves it is there, its Debian
/// package). Nothing yet: the kernel crate will add clang, libbpf-dev and iproute2.
const SYSTEM_PACKAGES: &[(&str, &str)] = &[];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => deps().and_then(|()| test(&args[1..])),
        Some("deps") => deps(),
        Some("bench") => run("cargo", &["bench"]),
        _ => {
            eprintln!("usage: cargo xtask <test|deps|bench>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: $ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn have(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the missing system packages with apt (root only; otherwise says what is missing).
fn deps() -> Result<(), String> {
    let missing: Vec<&str> = SYSTEM_PACKAGES
        .iter()
        .filter(|(command, _)| !have(command))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        eprintln!("xtask: system packages: all present");
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !root {
        return Err(format!(
            "missing system packages {missing:?}: run `sudo apt-get install -y {}`",
            missing.join(" ")
        ));
    }
    run("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    run("apt-get", &args)
}

fn test(extra: &[String]) -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let mut args = vec!["test", "--workspace"];
    args.extend(extra.iter().map(String::as_str));
    run("cargo", &args)
}
