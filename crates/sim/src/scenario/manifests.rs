//! `manifests[]` and the `apply` step: Cilium manifests from a file or inline YAML.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use fqdnpath_policy::{Manifest, load_str};
use serde::Deserialize;

/// A manifest source: a file (relative to the scenario) or inline YAML, exactly one of them
/// (checked when the scenario is loaded).
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawManifestSource")]
pub struct ManifestSource {
    /// A file, relative to the scenario file.
    pub path: Option<PathBuf>,
    /// YAML text.
    pub inline: Option<String>,
    /// The inline text as loaded, the first time it is: the clones of a scenario share it, so
    /// a simulation built again from the same scenario (the determinism checks, the
    /// structured fuzz target) parses nothing twice. YAML parsing is most of building one.
    loaded: Arc<OnceLock<Result<Vec<Manifest>, String>>>,
}

/// A manifest source as written, before the check that it sets exactly one key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct ManifestSource")]
struct RawManifestSource {
    path: Option<PathBuf>,
    inline: Option<String>,
}

impl TryFrom<RawManifestSource> for ManifestSource {
    type Error = &'static str;

    fn try_from(raw: RawManifestSource) -> Result<Self, Self::Error> {
        if raw.path.is_some() == raw.inline.is_some() {
            return Err("set exactly one of path or inline");
        }
        Ok(Self {
            path: raw.path,
            inline: raw.inline,
            loaded: Arc::default(),
        })
    }
}

impl ManifestSource {
    /// Inline YAML.
    pub fn inline(text: impl Into<String>) -> Self {
        Self {
            path: None,
            inline: Some(text.into()),
            loaded: Arc::default(),
        }
    }

    /// A file, relative to the scenario file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            inline: None,
            loaded: Arc::default(),
        }
    }

    /// The manifests of the inline `text` (this source's), loaded under the name `file` the
    /// first time; the error is the loader's message.
    pub(crate) fn load_inline(&self, file: &str, text: &str) -> Result<Vec<Manifest>, String> {
        self.loaded
            .get_or_init(|| {
                load_str(file, text)
                    .map(|l| l.manifests.into_iter().map(|m| m.value).collect())
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// Equal when they name the same file or hold the same text.
impl PartialEq for ManifestSource {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.inline == other.inline
    }
}

impl Eq for ManifestSource {}
