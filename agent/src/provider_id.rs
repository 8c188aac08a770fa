//! The `provider_id` the coordinator grants in `auth_ok`, persisted so that
//! a restarted agent logs in as the same provider and never re-sends its
//! enrollment code (which a coordinator may accept only once).
//!
//! Where it is kept is the caller's choice, through [`ProviderIdStore`]: the
//! binary keeps it in a file beside the key ([`FileStore`]), a simulation in
//! memory that outlives its host's restarts ([`MemoryStore`]).
//!
//! File format (JSON, one object, mode 0600, replaced atomically):
//!
//! ```json
//! {"format":"provider-agent-provider-id-v1","provider_id":"prov-123"}
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The `format` tag of the provider id file.
pub const FILE_FORMAT: &str = "provider-agent-provider-id-v1";
/// Longest provider id the agent accepts and persists. Real ids are short;
/// a longer one is a coordinator bug, and the agent must not write whatever
/// a coordinator sends to disk.
pub const PROVIDER_ID_BYTES_MAX: usize = 256;
/// Largest provider id file read.
pub const FILE_BYTES_MAX: u64 = 4 * 1024;

/// Why a provider id could not be loaded or stored.
#[derive(Debug, thiserror::Error)]
pub enum ProviderIdError {
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: provider id file is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("provider id of {0} bytes is longer than {PROVIDER_ID_BYTES_MAX}: not persisted")]
    TooLong(usize),
}

/// Where the agent keeps its provider id between runs.
pub trait ProviderIdStore: Send + Sync {
    /// The stored id, if any.
    fn load(&self) -> Result<Option<String>, ProviderIdError>;
    /// Replaces the stored id.
    fn store(&self, provider_id: &str) -> Result<(), ProviderIdError>;
}

/// Shared store handle.
pub type SharedProviderIdStore = Arc<dyn ProviderIdStore>;

/// Checks what the agent is willing to persist.
pub fn check(provider_id: &str) -> Result<(), ProviderIdError> {
    if provider_id.len() > PROVIDER_ID_BYTES_MAX {
        return Err(ProviderIdError::TooLong(provider_id.len()));
    }
    Ok(())
}

/// Keeps the id in memory (tests, simulations). Clones share the id, so a
/// harness can hand the same store to every incarnation of an agent.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    id: Arc<Mutex<Option<String>>>,
}

impl ProviderIdStore for MemoryStore {
    fn load(&self) -> Result<Option<String>, ProviderIdError> {
        Ok(self.id.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn store(&self, provider_id: &str) -> Result<(), ProviderIdError> {
        check(provider_id)?;
        *self.id.lock().unwrap_or_else(|p| p.into_inner()) = Some(provider_id.to_owned());
        Ok(())
    }
}

/// Keeps the id in a file beside the key file: `<key_path>.provider_id`.
#[derive(Clone, Debug)]
pub struct FileStore {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdFile {
    format: String,
    provider_id: String,
}

impl FileStore {
    /// The store beside the key file at `key_path`.
    pub fn beside_key(key_path: &Path) -> FileStore {
        let mut name = key_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".provider_id");
        FileStore {
            path: key_path.with_file_name(name),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn malformed(&self, reason: String) -> ProviderIdError {
        ProviderIdError::Malformed {
            path: self.path.clone(),
            reason,
        }
    }
}

impl ProviderIdStore for FileStore {
    fn load(&self) -> Result<Option<String>, ProviderIdError> {
        let io = |action| {
            let path = self.path.clone();
            move |source| ProviderIdError::Io { path, action, source }
        };
        let metadata = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io("cannot inspect provider id file")(source)),
        };
        if metadata.len() > FILE_BYTES_MAX {
            return Err(self.malformed(format!("{} bytes, more than {FILE_BYTES_MAX}", metadata.len())));
        }
        let text = std::fs::read_to_string(&self.path).map_err(io("cannot read provider id file"))?;
        let file: IdFile = serde_json::from_str(&text).map_err(|e| self.malformed(e.to_string()))?;
        if file.format != FILE_FORMAT {
            return Err(self.malformed(format!("format is {:?}, expected {FILE_FORMAT:?}", file.format)));
        }
        check(&file.provider_id).map_err(|e| self.malformed(e.to_string()))?;
        Ok(Some(file.provider_id))
    }

    fn store(&self, provider_id: &str) -> Result<(), ProviderIdError> {
        check(provider_id)?;
        let file = IdFile {
            format: FILE_FORMAT.to_owned(),
            provider_id: provider_id.to_owned(),
        };
        let mut text = serde_json::to_string(&file).map_err(|e| self.malformed(e.to_string()))?;
        text.push('\n');
        crate::private_file::replace(&self.path, text.as_bytes()).map_err(|e| ProviderIdError::Io {
            path: e.path,
            action: e.action,
            source: e.source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the file store round-trips, sits beside the key, and replaces atomically.
    #[test]
    fn file_store_round_trips_beside_the_key() {
        let dir = std::env::temp_dir().join(format!("provider-agent-pid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = FileStore::beside_key(&dir.join("keys").join("agent.key"));
        assert_eq!(store.path(), dir.join("keys").join("agent.key.provider_id"));
        assert_eq!(store.load().expect("absent is fine"), None);
        store.store("prov-1").expect("stored");
        store.store("prov-2").expect("replaced");
        assert_eq!(store.load().expect("loads"), Some("prov-2".to_owned()));
        assert!(!dir.join("keys").join("agent.key.provider_id.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(store.path(), "garbage").unwrap();
        assert!(matches!(store.load(), Err(ProviderIdError::Malformed { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Proves an overlong id is refused, not persisted.
    #[test]
    fn overlong_ids_are_not_persisted() {
        let store = MemoryStore::default();
        let long = "p".repeat(PROVIDER_ID_BYTES_MAX + 1);
        assert!(matches!(store.store(&long), Err(ProviderIdError::TooLong(_))));
        assert_eq!(store.load().unwrap(), None);
    }
}
