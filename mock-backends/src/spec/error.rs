//! The one error type of profile parsing and validation.

use std::fmt::Display;

/// Why a profile was refused. `key` is a path into the `[[backends]]` table
/// such as `models[1].inter_token_ms` or `faults[0].after_tokens`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The text is not TOML at all; the message carries line and column.
    #[error("TOML syntax: {0}")]
    Syntax(String),
    /// A key is missing, mistyped, unknown, or has a value out of range.
    #[error("{key}: {reason}")]
    Invalid {
        /// Path of the offending key.
        key: String,
        /// What is wrong with it, in a sentence.
        reason: String,
    },
}

impl SpecError {
    /// A refused value at `key`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Converts a serde error that carries the path where it happened. The
    /// root path (`.`) is shown as `(profile)` so the message never starts
    /// with a bare dot.
    pub(crate) fn from_path_error<E: Display>(err: serde_path_to_error::Error<E>) -> Self {
        let path = err.path().to_string();
        let key = if path == "." { "(profile)".to_owned() } else { path };
        SpecError::invalid(key, err.inner().to_string())
    }
}
