//! The `fqdnpath` binary: exit codes, `run --kernel` printing what the model prints, and the
//! command line: help, version, completions, misuse, `--` and `-` for standard input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fqdnpath(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fqdnpath"))
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .unwrap()
}

#[test]
fn run_prints_flows_and_the_summary_and_exits_by_outcome() {
    let out = fqdnpath(&["run", "examples/scenarios/nodelocal-lrp-gotcha.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("DROPPED"), "{text}");
    assert!(text.trim_end().ends_with("5 passed, 0 failed"), "{text}");
    let out = fqdnpath(&["run", "--bogus", "x.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = fqdnpath(&["run", "no-such-file.yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_kernel_prints_what_the_model_prints() {
    if !fqdnpath_kernel::kernel_tests_enabled("run_kernel_prints_what_the_model_prints") {
        let out = fqdnpath(&["run", "--kernel", "examples/scenarios/localdns.yaml"]);
        assert_eq!(out.status.code(), Some(2), "unavailable is an input error");
        return;
    }
    for file in [
        "examples/scenarios/nodelocal-lrp-fixed.yaml",
        "examples/scenarios/secure-workload.yaml",
    ] {
        for output in ["text", "json"] {
            let model = fqdnpath(&["run", "-o", output, file]);
            let kernel = fqdnpath(&["run", "-o", output, "--kernel", file]);
            assert_eq!(kernel.status.code(), Some(0), "{file}");
            assert_eq!(
                String::from_utf8_lossy(&kernel.stdout),
                String::from_utf8_lossy(&model.stdout),
                "{file} -o {output}"
            );
        }
    }
}

/// The repository's root, where the examples are.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `fqdnpath args` in `dir`, with `stdin` as standard input.
fn fqdnpath_in(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fqdnpath"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Misuse: exit 2, nothing on stdout, a message on stderr that contains `words` and no Rust
/// `Debug` text. Returns stderr.
fn misuse(args: &[&str], words: &[&str]) -> String {
    let out = fqdnpath(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(text(&out.stdout), "", "{args:?}");
    for w in words {
        assert!(stderr.contains(w), "{args:?}: no {w:?} in {stderr}");
    }
    assert_no_debug_text(&stderr);
    stderr
}

/// What Rust's `Debug` prints and a user should never read.
fn assert_no_debug_text(message: &str) {
    for debug in [
        "Some(",
        "None",
        "Ok(",
        "Err(",
        "Os {",
        "\\\"",
        "expected struct",
        "panicked",
    ] {
        assert!(
            !message.contains(debug),
            "Debug text {debug:?} in {message}"
        );
    }
}

const GOTCHA: &str = "examples/scenarios/nodelocal-lrp-gotcha.yaml";
const CNAME: &str = "examples/scenarios/cname-chain.yaml";

#[test]
fn help_goes_to_stdout_with_exit_0() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["run", "--help"],
        &["lint", "-h"],
        &["explain", "--help"],
        &["completions", "--help"],
    ] {
        let out = fqdnpath(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let stdout = text(&out.stdout);
        assert!(stdout.contains("Usage: fqdnpath"), "{args:?}: {stdout}");
        assert_eq!(text(&out.stderr), "", "{args:?}");
    }
    let stdout = text(&fqdnpath(&["--help"]).stdout);
    for command in ["run", "lint", "explain", "completions"] {
        assert!(stdout.contains(command), "{stdout}");
    }
}

#[test]
fn the_help_advertises_no_command_that_does_not_exist() {
    let stdout = text(&fqdnpath(&["--help"]).stdout);
    assert!(!stdout.contains("replay"), "{stdout}");
    misuse(&["replay", GOTCHA], &["unrecognized subcommand 'replay'"]);
}

#[test]
fn version_prints_the_version_with_exit_0() {
    for flag in ["--version", "-V"] {
        let out = fqdnpath(&[flag]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            text(&out.stdout),
            format!("fqdnpath {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn completions_are_a_script_naming_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = fqdnpath(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains("fqdnpath"), "{shell}");
        for word in ["run", "lint", "explain", "after-step", "output"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    misuse(&["completions", "tcsh"], &["invalid value 'tcsh'", "bash"]);
}

#[test]
fn an_unknown_subcommand_or_flag_is_exit_2_with_a_suggestion() {
    misuse(
        &["explian", GOTCHA],
        &[
            "unrecognized subcommand 'explian'",
            "similar subcommand exists: 'explain'",
        ],
    );
    misuse(
        &["run", "--kernal", GOTCHA],
        &[
            "unexpected argument '--kernal'",
            "similar argument exists: '--kernel'",
        ],
    );
    misuse(&[], &["Usage: fqdnpath <COMMAND>"]);
    misuse(&["run"], &["required", "<FILE>"]);
}

#[test]
fn values_are_checked_where_they_are_parsed() {
    let explain = [
        "explain",
        GOTCHA,
        "--pod",
        "default/dns-client",
        "--to",
        "github.com",
    ];
    misuse(
        &[&explain[..], &["--port", "70000"]].concat(),
        &["invalid value '70000' for '--port <PORT>'", "65535"],
    );
    misuse(
        &[&explain[..], &["--port", "https"]].concat(),
        &["invalid value 'https' for '--port <PORT>'"],
    );
    misuse(
        &[&explain[..], &["--port", "443", "--protocol", "SCTP"]].concat(),
        &[
            "invalid value 'SCTP' for '--protocol <PROTOCOL>'",
            "TCP, UDP",
        ],
    );
    misuse(
        &[
            "explain",
            GOTCHA,
            "--pod",
            "dns-client",
            "--to",
            "github.com",
            "--port",
            "443",
        ],
        &[
            "invalid value 'dns-client' for '--pod <NS/NAME>'",
            "NAMESPACE/NAME",
        ],
    );
    misuse(
        &["run", "--output", "xml", GOTCHA],
        &["invalid value 'xml' for '--output <OUTPUT>'", "text, json"],
    );
    // Still accepted as before: any case for the protocol, `--output=json`.
    let explain = [
        "explain",
        GOTCHA,
        "--pod",
        "default/dns-client",
        "--to",
        "140.82.112.3",
    ];
    let out = fqdnpath(&[&explain[..], &["--port", "443", "--protocol", "tcp"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = fqdnpath(&["run", "--output=json", GOTCHA]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn after_step_past_the_end_names_the_flag_and_the_step_count() {
    let explain = [
        "explain",
        GOTCHA,
        "--pod",
        "default/dns-client",
        "--to",
        "140.82.112.3",
    ];
    let stderr = misuse(
        &[&explain[..], &["--port", "443", "--after-step", "3"]].concat(),
        &[GOTCHA, "--after-step", "3 is past the end", "2 step"],
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // The last step is the end: allowed.
    let out = fqdnpath(&[&explain[..], &["--port", "443", "--after-step", "2"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_repeated_flag_is_an_error() {
    misuse(
        &["run", "-o", "json", "--output", "text", GOTCHA],
        &["'--output <OUTPUT>' cannot be used multiple times"],
    );
    misuse(
        &["run", "--kernel", "--kernel", GOTCHA],
        &["'--kernel' cannot be used multiple times"],
    );
    misuse(
        &[
            "explain",
            GOTCHA,
            "--pod",
            "default/dns-client",
            "--to",
            "github.com",
            "--port",
            "443",
            "--port",
            "80",
        ],
        &["'--port <PORT>' cannot be used multiple times"],
    );
}

#[test]
fn explain_takes_one_file() {
    misuse(
        &[
            "explain",
            GOTCHA,
            CNAME,
            "--pod",
            "default/dns-client",
            "--to",
            "github.com",
            "--port",
            "443",
        ],
        &["unexpected argument", CNAME],
    );
}

#[test]
fn double_dash_ends_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join(CNAME), dir.path().join("--cname.yaml")).unwrap();
    let out = fqdnpath_in(dir.path(), &["run", "--", "--cname.yaml"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("8 passed, 0 failed\n"));
    let out = fqdnpath_in(dir.path(), &["lint", "--", "--cname.yaml"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Without `--`, it is an unknown flag.
    let out = fqdnpath_in(dir.path(), &["run", "--cname.yaml"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_reads_a_scenario_from_stdin() {
    let cname = std::fs::read_to_string(root().join(CNAME)).unwrap();
    let out = fqdnpath_in(&root(), &["run", "-"], &cname);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, fqdnpath(&["run", CNAME]).stdout);
    // Its relative manifest paths resolve from the current directory.
    let gotcha = std::fs::read_to_string(root().join(GOTCHA)).unwrap();
    let out = fqdnpath_in(&root().join("examples/scenarios"), &["run", "-"], &gotcha);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("5 passed, 0 failed\n"));
    // An error names `<stdin>`.
    let out = fqdnpath_in(&root(), &["run", "-"], "a: [");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: <stdin>: invalid YAML"),
        "{stderr}"
    );
    assert_no_debug_text(&stderr);
    misuse(&["run", "-", "-"], &["standard input", "only once"]);
}

#[test]
fn lint_reads_manifests_or_a_scenario_from_stdin() {
    let dir = root().join("examples/scenarios/manifests");
    let lrp = std::fs::read_to_string(dir.join("nodelocaldns-lrp.yaml")).unwrap();
    // The LRP from stdin meets the policy of a file: the article's gotcha.
    let out = fqdnpath_in(&dir, &["lint", "-", "dns-client-broken.yaml"], &lrp);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("dns-client-broken.yaml: document 1: spec.egress[0].toEndpoints"));
    assert!(stdout.contains("[lrp-dns-not-allowed]"), "{stdout}");
    let out = fqdnpath_in(&dir, &["lint", "-", "dns-client-fixed.yaml"], &lrp);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A finding on stdin's own manifests names `<stdin>`.
    let broken = std::fs::read_to_string(dir.join("dns-client-broken.yaml")).unwrap();
    let out = fqdnpath_in(&dir, &["lint", "nodelocaldns-lrp.yaml", "-"], &broken);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("<stdin>: document 1: spec.egress[0]"));
    // A scenario's relative manifest paths resolve from the current directory.
    let gotcha = std::fs::read_to_string(root().join(GOTCHA)).unwrap();
    let out = fqdnpath_in(&root().join("examples/scenarios"), &["lint", "-"], &gotcha);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("[lrp-dns-not-allowed]"));
    // An error names `<stdin>`, never the temporary file.
    let out = fqdnpath_in(&dir, &["lint", "nodelocaldns-lrp.yaml", "-"], "kind: [");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: <stdin>: "), "{stderr}");
    assert!(!stderr.contains("fqdnpath-stdin"), "{stderr}");
    assert_eq!(stderr.matches("<stdin>").count(), 1, "{stderr}");
    assert_no_debug_text(&stderr);
}

#[test]
fn a_lint_error_names_its_file_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "kind: [").unwrap();
    let out = fqdnpath_in(dir.path(), &["lint", "bad.yaml"], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: bad.yaml: invalid YAML"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("bad.yaml").count(), 1, "{stderr}");
}

#[test]
fn run_good_and_bad_prints_the_summary_of_what_ran() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let mut scenario = std::fs::read_to_string(root().join(CNAME)).unwrap();
    scenario
        .push_str("  - connect: {pod: default/nope, ip: 192.0.2.80, port: 443, protocol: TCP}\n");
    std::fs::write(&bad, scenario).unwrap();
    let bad = bad.to_str().unwrap();
    let good = "examples/scenarios/localdns.yaml";
    let out = fqdnpath(&["run", good, bad, "no-such-file.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    // The good file's flows, then the bad one's up to its error (the cname scenario's all).
    let expected = [
        text(&fqdnpath(&["run", good]).stdout),
        text(&fqdnpath(&["run", CNAME]).stdout),
    ]
    .map(|s| {
        s.lines()
            .filter(|l| !l.contains("passed"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .join("\n");
    assert_eq!(stdout, format!("{expected}\n12 passed, 0 failed\n"));
    // One line per invalid file, each naming only that file.
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr,
        format!(
            "error: {bad}: steps[5].connect.pod: no pod default/nope\n\
             error: no-such-file.yaml: No such file or directory (os error 2)\n"
        )
    );
    assert_no_debug_text(&stderr);
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    // More output than a pipe holds, to a reader that has gone: no panic, exit 0.
    let files = vec![CNAME; 100];
    let mut child = Command::new(env!("CARGO_BIN_EXE_fqdnpath"))
        .arg("run")
        .args(&files)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
}
