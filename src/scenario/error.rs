//! Why a scenario file was refused: always the file, and for anything in the
//! file its line, column and key.

use std::io;

/// A scenario file that cannot be used. Every variant maps to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: cannot read scenario: {source}")]
    Read {
        file: String,
        #[source]
        source: io::Error,
    },
    /// The file is larger than [`super::SCENARIO_BYTES_MAX`].
    #[error("{file}: scenario is {bytes_len} bytes, more than the {bytes_max}-byte limit")]
    TooLarge {
        file: String,
        bytes_len: u64,
        bytes_max: u64,
    },
    /// Bad TOML, an unknown key, a wrong type or an impossible value.
    #[error("{file}:{line}:{column}: `{key}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
}

impl ScenarioError {
    /// The key at fault, when the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// `(line, column)`, when the error is about a place in the file.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        match self {
            Self::Invalid { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}
