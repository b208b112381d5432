//! The `fqdnpath` binary: exit codes, and `run --kernel` printing what the model prints.

use std::path::PathBuf;
use std::process::{Command, Output};

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
