//! Atomic replacement of a small private file (the key file, the persisted
//! provider id): a temporary file in the same directory, created with mode
//! 0600 from the start (never readable by others, even briefly), fsynced,
//! then renamed over the target, and the directory fsynced so the rename
//! itself is durable. A crash leaves either the old file or the new one,
//! never a half-written one, and once `replace` returned, the new one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why a file could not be written: the path involved, what was being done,
/// and the I/O error.
#[derive(Debug)]
pub(crate) struct WriteError {
    pub path: PathBuf,
    pub action: &'static str,
    pub source: std::io::Error,
}

/// Replaces `path` with `bytes` atomically; creates missing parent
/// directories with mode 0700. `what` names the file in error actions.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    fn error(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> WriteError {
        let path = path.to_owned();
        move |source| WriteError { path, action, source }
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(error(parent, "cannot create directory"))?;
    }
    let tmp_path = temporary_path(path);
    // A stale temporary file from a crash may exist with any mode: remove it
    // so `create_new` below applies our mode to a fresh inode.
    match std::fs::remove_file(&tmp_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(error(&tmp_path, "cannot remove stale temporary file")(source)),
    }
    if let Err(source) = write_private(&tmp_path, bytes) {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(error(&tmp_path, "cannot write file")(source));
    }
    std::fs::rename(&tmp_path, path).map_err(error(path, "cannot move file into place"))?;
    // The rename is an entry of the directory: until the directory is on
    // disk, a power loss can bring back the old file (or none).
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sync_dir(dir).map_err(error(dir, "cannot sync directory"))
}

/// Flushes a directory's entries to disk (Unix; elsewhere a directory
/// cannot be opened for that, and the rename is left to the system).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `replace` creates the directory, replaces the file (directory synced
    /// on the way), leaves no temporary file, and keeps the mode private.
    #[test]
    fn replace_writes_through_a_synced_directory() {
        let dir = std::env::temp_dir().join(format!("private-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("key");
        replace(&path, b"one").expect("first write");
        replace(&path, b"two").expect("second write");
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!temporary_path(&path).exists());
        sync_dir(path.parent().unwrap()).expect("a directory syncs");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
