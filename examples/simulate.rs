//! The simulator as a library: runs the article's gotcha scenario (DNS through node-local-dns
//! behind an LRP, a policy that allows only kube-dns) and its fix, and compares what the pod
//! saw.
//!
//! Run: `cargo run --example simulate`

use std::path::Path;

use fqdnpath::sim::{Scenario, Simulation};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    for name in ["nodelocal-lrp-gotcha", "nodelocal-lrp-fixed"] {
        let report = match Scenario::load(&dir.join(format!("{name}.yaml")))
            .and_then(Simulation::new)
            .and_then(Simulation::run)
        {
            Ok(report) => report,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let dropped = report
            .lines
            .iter()
            .filter(|line| line.text.contains("DROPPED"))
            .count();
        println!(
            "{name}: {} flows, {dropped} dropped, {} expectations failed",
            report.lines.len(),
            report.failures.len()
        );
        for line in &report.lines {
            println!("  {}", line.text);
        }
    }
}
