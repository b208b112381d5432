//! The simulator's output, read and printed again: every line `fqdnpath run --output json`
//! printed for the scenarios under `tests/data/sim/` reads into a [`GetFlowsResponse`] and
//! writes back to the same JSON (the same bytes once through `serde_json::Value`, as the
//! simulator prints it), and the compact printer gives, for each, the line `fqdnpath run`
//! printed in text. See `tests/data/sim/README.md` for how the files were made.

use std::fs;
use std::path::{Path, PathBuf};

use fqdnpath_hubble::{GetFlowsResponse, compact};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sim")
}

/// Every scenario's name with its JSON lines and its text lines.
fn runs() -> Vec<(String, String, String)> {
    let mut runs: Vec<_> = fs::read_dir(data())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let json = fs::read_to_string(&p).unwrap();
            let text = fs::read_to_string(p.with_extension("txt")).unwrap();
            (name, json, text)
        })
        .collect();
    runs.sort();
    assert!(runs.len() >= 9, "the fixtures are missing: {runs:?}");
    runs
}

#[test]
fn every_simulator_line_reads_and_writes_back_the_same_json() {
    let mut lines = 0;
    for (name, json, _) in runs() {
        for (i, line) in json.lines().enumerate() {
            let at = format!("{name}.jsonl:{}", i + 1);
            let response =
                GetFlowsResponse::from_json_line(line).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(response.flow.is_some(), "{at}: no flow");
            let read: serde_json::Value = serde_json::from_str(line).unwrap();
            let written = serde_json::to_value(&response).unwrap();
            assert_eq!(written, read, "{at}");
            assert_eq!(written.to_string(), line, "{at}: not the same bytes");
            // Straight to text too (fields in the proto's order), and back.
            let direct = serde_json::to_string(&response).unwrap();
            let again: GetFlowsResponse = serde_json::from_str(&direct).unwrap();
            assert_eq!(again, response, "{at}");
            lines += 1;
        }
    }
    assert!(lines >= 50, "only {lines} lines");
}

#[test]
fn the_compact_form_of_every_simulator_flow_is_the_line_it_printed() {
    for (name, json, text) in runs() {
        let flows: Vec<_> = json.lines().collect();
        let printed: Vec<_> = text.lines().collect();
        // The text output is the flows, then the summary (every expectation held).
        assert_eq!(printed.len(), flows.len() + 1, "{name}");
        assert!(
            printed[flows.len()].ends_with(" passed, 0 failed"),
            "{name}: {}",
            printed[flows.len()]
        );
        for (i, (line, want)) in flows.iter().zip(&printed).enumerate() {
            let response = GetFlowsResponse::from_json_line(line).unwrap();
            let flow = response.flow.unwrap();
            assert_eq!(compact(&flow).to_string(), *want, "{name}, line {}", i + 1);
        }
    }
}
