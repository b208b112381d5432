//! The in-kernel enforcement demo (`examples/kernel_demo.rs`) end to end: the same function
//! the example runs (`fqdnpath_node::demo::run`), with the policy file the example loads. It
//! needs root and the eBPF object; elsewhere it skips with one line.

use std::path::{Path, PathBuf};

use fqdnpath_node::demo;

/// The example's default policy file.
fn default_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/policy.yaml")
}

#[test]
fn the_kernel_demo_behaves_as_it_says() {
    if !fqdnpath_kernel::kernel_tests_enabled("the_kernel_demo_behaves_as_it_says") {
        return;
    }
    let mut out = Vec::new();
    let report = demo::run(&default_policy(), &mut out).expect("the demo runs");
    let text = String::from_utf8_lossy(&out);
    let failures = report.failures();
    assert!(failures.is_empty(), "{failures:#?}\n{text}");
    assert_eq!(
        report.steps.len(),
        8,
        "seven steps and the counters\n{text}"
    );

    // The lines a reader is promised, in the format the simulator prints.
    let has = |needle: &str| text.lines().any(|l| l.contains(needle));
    for needle in [
        "-> kube-system/node-local-dns:53 (ID:",
        "EGRESS ALLOWED (UDP) REDIRECTED (to-proxy)",
        "default/client dns-response app.demo.test. A NOERROR [198.51.100.10]",
        "-> 198.51.100.10:8080 (ID:16777217) policy-verdict:L3-L4 EGRESS ALLOWED (TCP Flags: SYN) \
         FORWARDED",
        "-> 198.51.100.11:8080 (ID:2) policy-verdict:none EGRESS DENIED (TCP Flags: SYN) DROPPED \
         (Policy denied)",
        "default/client dns-response evil.example.org. A REFUSED []",
        "upstream not asked",
        "programmed in",
        "answer released",
        "ipcache delete 198.51.100.10/32",
    ] {
        assert!(has(needle), "no line with {needle:?}\n{text}");
    }

    // Nothing is left behind.
    assert_eq!(demo::remove_namespaces(std::process::id()), 0);
    assert!(default_policy().exists());
}
