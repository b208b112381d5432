//! Reading a YAML file's text: the step that loading manifests and loading scenarios share, and
//! its error.

use std::fmt::Display;
use std::path::Path;

/// Why a file's text could not be had: it could not be read, or it is not YAML. Manifest and
/// scenario errors both carry it, with the same words.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML.
    #[error("{file}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
}

impl SourceError {
    /// The YAML parser's `error` for `file`.
    pub fn yaml(file: &str, error: impl Display) -> Self {
        Self::Yaml {
            file: file.to_owned(),
            message: error.to_string(),
        }
    }
}

/// The text of the file at `path`.
pub fn read_text(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|source| SourceError::Io {
        file: path.display().to_string(),
        source,
    })
}
