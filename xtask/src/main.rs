//! Project tasks, run as `cargo xtask <task>`.
//!
//! - `test`: installs what a fresh machine lacks (system packages, as root, through apt), then
//!   checks formatting, runs clippy with warnings as errors, builds the docs with warnings as
//!   errors, runs every test of the workspace,
//!   and smoke-runs every fuzz target for a few seconds (`FQDNPATH_FUZZ_SECONDS`, default 10).
//!   `.ci/run` calls exactly this.
//! - `fuzz [SECONDS]`: only the fuzz smoke run (longer runs: `cargo +nightly fuzz run`).
//! - `deps`: only the installation step.
//! - `bench`: `cargo bench` over the whole suite.
//! - `plots`: SVG plots of the last bench results into `docs/plots/` (see `plots.rs`).

mod plots;

use std::env;
use std::path::Path;
use std::process::{Command, ExitCode};

/// System packages the project needs, as (a shell test that proves it is there, its Debian
/// package): clang compiles the eBPF program (`ebpf/`) and clang-format checks its style,
/// libbpf-dev gives it `bpf_helpers.h`,
/// iproute2's `ip` makes the network namespaces of the kernel tests and the demo.
const SYSTEM_PACKAGES: &[(&str, &str)] = &[
    ("command -v clang", "clang"),
    ("command -v clang-format", "clang-format"),
    ("test -f /usr/include/bpf/bpf_helpers.h", "libbpf-dev"),
    ("command -v ip", "iproute2"),
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => deps().and_then(|()| test(&args[1..])),
        Some("deps") => deps(),
        Some("fuzz") => fuzz(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10)),
        Some("bench") => run("cargo", &["bench", "--all-features"]),
        Some("plots") => plots::plots(),
        _ => {
            eprintln!("usage: cargo xtask <test|deps|fuzz [SECONDS]|bench|plots>");
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
    run_with_env(program, args, &[])
}

fn run_with_env(program: &str, args: &[&str], vars: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("xtask: $ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(vars.iter().copied())
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn have(probe: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("{probe} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
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
    if !is_root() {
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
    // The eBPF C, in the kernel's style (ebpf/.clang-format): every .c and .h under ebpf/.
    let sources = c_sources(Path::new("ebpf"))?;
    let mut args = vec!["--dry-run", "--Werror"];
    args.extend(sources.iter().map(String::as_str));
    run("clang-format", &args)?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // Every public item's docs build, links included.
    run_with_env(
        "cargo",
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    let mut args = vec!["test", "--workspace", "--all-features"];
    args.extend(extra.iter().map(String::as_str));
    // As root (CI), the eBPF object must build and the kernel tests must run: a skip would
    // count as a pass. Elsewhere they skip with one line saying why.
    if is_root() {
        eprintln!("xtask: root: the kernel tests are required (FQDNPATH_REQUIRE_KERNEL=1)");
        run_with_env("cargo", &args, &[("FQDNPATH_REQUIRE_KERNEL", "1")])?;
    } else {
        run("cargo", &args)?;
    }
    let seconds = env::var("FQDNPATH_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    fuzz(seconds)
}

/// The fuzz targets (`fuzz/fuzz_targets/*.rs`), each with a seed corpus in `fuzz/corpus/`.
const FUZZ_TARGETS: &[&str] = &[
    "observe",
    "selectors",
    "manifest",
    "scenario",
    "lpm",
    "policymap",
    "scenario_structured",
    "observe_fast",
    // Root only (CI is root); elsewhere it returns at once.
    "kernel_frames",
];

/// The `.c` and `.h` files under `dir`, at any depth, sorted.
fn c_sources(dir: &Path) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            found.extend(c_sources(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "c" || ext == "h") {
            found.push(path.display().to_string());
        }
    }
    found.sort();
    Ok(found)
}

/// Runs every fuzz target for `seconds` from a copy of its seed corpus, so the checkout
/// stays clean. A crash fails the run (its input lands in fuzz/artifacts/).
fn fuzz(seconds: u64) -> Result<(), String> {
    let works = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works(&["+nightly", "--version"]) {
        return Err("the fuzz smoke run needs the nightly toolchain (`cargo +nightly`), which cargo-fuzz requires".into());
    }
    if !works(&["fuzz", "--version"]) {
        run("cargo", &["install", "cargo-fuzz", "--locked"])?;
    }
    let root = env::current_dir().map_err(|e| e.to_string())?;
    let fuzz_dir = root.join("fuzz");
    for target in FUZZ_TARGETS {
        let corpus = env::temp_dir().join(format!("fqdnpath-fuzz-{target}-{}", std::process::id()));
        std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
        if let Ok(seeds) = std::fs::read_dir(fuzz_dir.join("corpus").join(target)) {
            for seed in seeds.flatten() {
                let _ = std::fs::copy(seed.path(), corpus.join(seed.file_name()));
            }
        }
        eprintln!("xtask: $ cargo +nightly fuzz run -O {target} (for {seconds} s)");
        let status = Command::new("cargo")
            .current_dir(&fuzz_dir)
            .args(["+nightly", "fuzz", "run", "-O", target])
            .arg(&corpus)
            .args(["--", &format!("-max_total_time={seconds}"), "-seed=1"])
            .status()
            .map_err(|e| format!("could not start cargo fuzz: {e}"))?;
        let _ = std::fs::remove_dir_all(&corpus);
        if !status.success() {
            return Err(format!(
                "fuzz target {target} failed ({status}); the input is in fuzz/artifacts/{target}/"
            ));
        }
        eprintln!("xtask: fuzz target {target}: no crash in {seconds} s");
    }
    Ok(())
}
