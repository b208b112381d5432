//! Scenario files (`apiVersion: fqdnpath/v1`, `kind: Scenario`): the user-facing format that
//! SCENARIOS.md fixes. Everything is checked when the file is loaded: unknown keys are errors
//! that name the key's path; so are bad durations, protocols, query types and zone records,
//! and steps that set no action or more than one. A key that may be left out is an `Option`
//! (absent: `None`) or `#[serde(default)]`.
//!
//! - `duration`: Go-style durations ([`Dur`]);
//! - `settings`: `agent:` (Cilium's flags) and `datapath:`;
//! - `cluster`: `cluster:` (nodes, pods, `DaemonSet`s, services, DNS roles);
//! - `manifests`: `manifests[]` and `apply` ([`ManifestSource`]);
//! - `zone`: `zone[]` and `update-zone` ([`ZoneRecord`]);
//! - `step`: `steps[]`, one [`Action`] per [`Step`], and `expect`.

mod cluster;
mod duration;
mod manifests;
mod settings;
mod step;
mod zone;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use fqdnpath_datapath::DatapathError;
use fqdnpath_policy::manifest::{SourceError, read_text};

pub use cluster::{
    ClusterSpec, DaemonSetSpec, DnsMode, DnsRole, DnsRoleKind, PodSpec, ServicePortSpec,
    ServiceSpec,
};
pub use duration::{Dur, parse_duration};
pub use manifests::ManifestSource;
pub use settings::{AgentFlags, DatapathSettings, RejectResponseCode};
pub use step::{
    Action, ConnectStep, ConnectionRef, DeleteStep, Destination, Expect, Protocol, QueryType,
    ResolveStep, RestartStep, Step, UnknownProtocol,
};
pub use zone::ZoneRecord;

/// The format version this build reads.
pub const API_VERSION: &str = "fqdnpath/v1";

/// Why a scenario could not be loaded. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read, or is not YAML (the same error as a manifest file's).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A node's datapath could not be made; the backend's error is the source.
    #[error("{file}: cluster.nodes: datapath for {node}")]
    Datapath {
        /// The scenario file.
        file: String,
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: DatapathError,
    },
    /// A key is missing, unknown or wrong.
    #[error("{file}: {path}: {reason}", path = if path.is_empty() { "(document)" } else { path })]
    Invalid {
        /// The file.
        file: String,
        /// The key path, e.g. `steps[3].connect.port`.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl ScenarioError {
    /// An [`Invalid`](Self::Invalid) key of `file`.
    pub(crate) fn invalid(file: &str, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            file: file.to_owned(),
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// A scenario.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    /// `fqdnpath/v1`.
    pub api_version: String,
    /// `Scenario`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Agent flags.
    #[serde(default)]
    pub agent: AgentFlags,
    /// Datapath settings.
    #[serde(default)]
    pub datapath: DatapathSettings,
    /// The cluster.
    pub cluster: ClusterSpec,
    /// Cilium manifests.
    #[serde(default)]
    pub manifests: Vec<ManifestSource>,
    /// The authoritative server's records.
    #[serde(default)]
    pub zone: Vec<ZoneRecord>,
    /// The timeline.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The scenario file's directory (manifest paths are relative to it).
    #[serde(skip)]
    pub base: PathBuf,
    /// The scenario file's name, for messages.
    #[serde(skip)]
    pub file: String,
}

fn typed<T: DeserializeOwned>(file: &str, value: serde_json::Value) -> Result<T, ScenarioError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ScenarioError::invalid(
            file,
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })
}

impl Scenario {
    /// The error of an invalid value at `path` of this scenario.
    pub(crate) fn invalid(
        &self,
        path: impl Into<String>,
        reason: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::invalid(&self.file, path, reason)
    }

    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = read_text(path)?;
        let mut scenario = Self::from_str(&path.display().to_string(), &text)?;
        scenario.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(scenario)
    }

    /// Reads a scenario from text; `file` names it in errors.
    pub fn from_str(file: &str, text: &str) -> Result<Self, ScenarioError> {
        let value: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| SourceError::yaml(file, e))?;
        Self::from_value(file, value)
    }

    /// Reads a scenario from the value of its document (as `from_str` reads it from YAML, or
    /// a program builds it); `file` names it in errors.
    pub fn from_value(file: &str, value: serde_json::Value) -> Result<Self, ScenarioError> {
        match value.get("apiVersion").and_then(serde_json::Value::as_str) {
            Some(API_VERSION) => {}
            Some(other) => {
                return Err(ScenarioError::invalid(
                    file,
                    "apiVersion",
                    format!("this build reads {API_VERSION}, not {other}"),
                ));
            }
            None => {
                return Err(ScenarioError::invalid(
                    file,
                    "apiVersion",
                    format!("is required ({API_VERSION})"),
                ));
            }
        }
        if value.get("kind").and_then(serde_json::Value::as_str) != Some("Scenario") {
            return Err(ScenarioError::invalid(file, "kind", "must be Scenario"));
        }
        let mut scenario: Self = typed(file, value)?;
        file.clone_into(&mut scenario.file);
        scenario.check_records()?;
        Ok(scenario)
    }

    /// Checks the records of `zone` and of every `update-zone`.
    fn check_records(&self) -> Result<(), ScenarioError> {
        let zone = self
            .zone
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("zone[{i}]"), r));
        let updates = self.steps.iter().enumerate().flat_map(|(i, step)| {
            let records = match &step.action {
                Action::UpdateZone(records) => records.as_slice(),
                _ => &[],
            };
            records
                .iter()
                .enumerate()
                .map(move |(k, r)| (format!("steps[{i}].update-zone[{k}]"), r))
        });
        for (path, record) in zone.chain(updates) {
            record
                .check()
                .map_err(|(key, reason)| self.invalid(format!("{path}.{key}"), reason))?;
        }
        Ok(())
    }
}
