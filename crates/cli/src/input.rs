//! A FILE argument: a path, or `-` for standard input, read into memory (with a cap) and
//! named `<stdin>` in messages.

use std::io::Read;
use std::path::{Path, PathBuf};

use fqdnpath_policy::manifest::SourceError;
use fqdnpath_sim::{Scenario, ScenarioError};

/// Standard input's name in messages.
pub(crate) const STDIN: &str = "<stdin>";

/// The most bytes read from standard input: `run - < /dev/zero` fails at once.
const STDIN_CAP: u64 = 64 << 20;

/// One FILE argument.
#[derive(Clone, Copy)]
pub(crate) enum Input<'a> {
    /// `-`.
    Stdin,
    /// A file.
    Path(&'a Path),
}

impl<'a> Input<'a> {
    /// The FILE argument `path`.
    pub(crate) fn of(path: &'a Path) -> Self {
        if path.as_os_str() == "-" {
            Self::Stdin
        } else {
            Self::Path(path)
        }
    }

    /// The scenario it holds. One from standard input has the current directory as its base:
    /// its relative manifest paths resolve from there.
    pub(crate) fn scenario(self) -> Result<Scenario, ScenarioError> {
        match self {
            Self::Path(path) => Scenario::load(path),
            Self::Stdin => Scenario::from_str(STDIN, &read_stdin()?),
        }
    }
}

/// Standard input's text, up to [`STDIN_CAP`] bytes.
pub(crate) fn read_stdin() -> Result<String, SourceError> {
    let mut bytes = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(STDIN_CAP + 1)
        .read_to_end(&mut bytes);
    let error = |source| SourceError::Io {
        file: STDIN.to_owned(),
        source,
    };
    read.map_err(error)?;
    if bytes.len() as u64 > STDIN_CAP {
        return Err(error(std::io::Error::other(format!(
            "longer than {} MiB, the most fqdnpath reads",
            STDIN_CAP >> 20
        ))));
    }
    String::from_utf8(bytes).map_err(|_| {
        error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })
}

/// Refuses `-` given more than once: standard input can be read only once.
pub(crate) fn stdin_once(files: &[PathBuf]) -> Result<(), String> {
    let count = files.iter().filter(|f| f.as_os_str() == "-").count();
    if count > 1 {
        return Err(format!(
            "- (standard input) is given {count} times: it can be read only once"
        ));
    }
    Ok(())
}
