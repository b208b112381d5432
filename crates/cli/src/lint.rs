//! `fqdnpath lint`: prints each finding with its file and key path, then the count; exit 1
//! if there are any.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fqdnpath_sim::lint::{Finding, lint_files, lint_scenario};
use fqdnpath_sim::{Scenario, ScenarioError};

use crate::args::LintArgs;
use crate::chain;
use crate::input::{STDIN, read_stdin, stdin_once};

pub(crate) fn lint(args: &LintArgs) -> ExitCode {
    let findings = match findings(&args.files) {
        Ok(findings) => findings,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::from(2);
        }
    };
    for f in &findings {
        out!("{f}");
    }
    out!("{} finding(s)", findings.len());
    if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The findings on `files`, or the message of the first error.
fn findings(files: &[PathBuf]) -> Result<Vec<Finding>, String> {
    stdin_once(files)?;
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let Some(at) = files.iter().position(|f| f.as_os_str() == "-") else {
        return lint_files(&paths).map_err(|e| message(&e));
    };
    let text = read_stdin().map_err(|e| chain(&e))?;
    let mut others = paths;
    // A scenario stands alone (its relative manifest paths resolve from the current
    // directory); its findings come first.
    if let Ok(scenario) = Scenario::from_str(STDIN, &text) {
        others.remove(at);
        let mut findings = lint_scenario(&scenario).map_err(|e| message(&e))?;
        findings.extend(lint_files(&others).map_err(|e| message(&e))?);
        return Ok(findings);
    }
    // Manifests meet the other files' manifests in `lint_files`, which reads files: standard
    // input goes there as a temporary file, whose name is then `<stdin>` again.
    let temporary = temporary_file(&text).map_err(|e| format!("{STDIN}: {e}"))?;
    let name = temporary.path().display().to_string();
    others[at] = temporary.path();
    let rename = |text: &str| text.replace(&name, STDIN);
    match lint_files(&others) {
        Ok(findings) => Ok(findings
            .into_iter()
            .map(|f| Finding {
                origin: rename(&f.origin),
                path: rename(&f.path),
                message: rename(&f.message),
                ..f
            })
            .collect()),
        Err(e) => Err(rename(&message(&e))),
    }
}

/// An error as the user reads it. A manifest file's error, which `lint_files` wraps in one
/// about the whole file, is said once: `f.yaml: document 1: ...`, not `f.yaml: (document):
/// f.yaml: document 1: ...`.
fn message(error: &ScenarioError) -> String {
    if let ScenarioError::Invalid { file, path, reason } = error
        && path.is_empty()
        && reason
            .strip_prefix(file.as_str())
            .is_some_and(|r| r.starts_with(": "))
    {
        return reason.clone();
    }
    chain(error)
}

/// A temporary file holding `text`, deleted when dropped.
fn temporary_file(text: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix("fqdnpath-stdin-")
        .suffix(".yaml")
        .tempfile()?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(file)
}
