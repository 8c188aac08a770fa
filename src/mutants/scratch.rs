//! The scratch copy the mutants are built in: one copy of the repository,
//! reused for every mutant, with a shared target directory and the
//! `mutants` cargo profile, so each mutant costs an incremental rebuild of
//! the agent and simctl only.
//!
//! Files are copied only when their content differs, so their timestamps
//! (cargo's fingerprints) stay put and nothing is rebuilt for nothing. A
//! mutant's edits are applied to the copy and undone after it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::catalog::Mutant;

/// Directories never copied into the scratch tree.
const SKIPPED_DIRS: [&str; 4] = [".git", "target", "bench-out", "node_modules"];

/// The cargo profile mutants are built with (see the root `Cargo.toml`).
pub const PROFILE: &str = "mutants";

/// Why the scratch copy could not be prepared or built.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run cargo: {0}")]
    Cargo(std::io::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScratchError + '_ {
    move |source| ScratchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Why a mutant's edits could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Stale {
    pub file: String,
    /// How often the snippet occurs (0: gone; 2 or more: ambiguous).
    pub occurrences: usize,
}

/// A repository and its scratch copy.
pub struct Scratch {
    source: PathBuf,
    root: PathBuf,
    target_dir: PathBuf,
}

impl Scratch {
    /// A scratch copy of `source` at `root`, building into `target_dir`.
    pub fn new(source: &Path, root: &Path, target_dir: &Path) -> Scratch {
        Scratch {
            source: source.to_path_buf(),
            root: root.to_path_buf(),
            target_dir: target_dir.to_path_buf(),
        }
    }

    /// Brings the copy in line with the source tree: changed files are
    /// rewritten, files gone from the source are removed.
    pub fn sync(&self) -> Result<(), ScratchError> {
        let mut files = BTreeSet::new();
        list_files(&self.source, Path::new(""), &self.root, &mut files)?;
        for rel in &files {
            let from = self.source.join(rel);
            let to = self.root.join(rel);
            let bytes = std::fs::read(&from).map_err(io(&from))?;
            write_if_changed(&to, &bytes)?;
        }
        let mut present = BTreeSet::new();
        if self.root.exists() {
            list_files(&self.root, Path::new(""), Path::new(""), &mut present)?;
        }
        for rel in present.difference(&files) {
            let path = self.root.join(rel);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        Ok(())
    }

    /// Checks that every edit of `mutant` finds its snippet exactly once in
    /// the source tree.
    pub fn check(&self, mutant: &Mutant) -> Result<Vec<Stale>, ScratchError> {
        let mut stale = Vec::new();
        for edit in &mutant.edits {
            let path = self.source.join(&edit.file);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(io(&path)(e)),
            };
            let occurrences = text.matches(edit.find.as_str()).count();
            if occurrences != 1 {
                stale.push(Stale {
                    file: edit.file.clone(),
                    occurrences,
                });
            }
        }
        Ok(stale)
    }

    /// Applies `mutant`'s edits to the copy (call [`Scratch::check`] first;
    /// edits of one file apply in catalog order).
    pub fn apply(&self, mutant: &Mutant) -> Result<(), ScratchError> {
        for edit in &mutant.edits {
            let path = self.root.join(&edit.file);
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let mutated = text.replacen(edit.find.as_str(), &edit.replace, 1);
            std::fs::write(&path, mutated).map_err(io(&path))?;
        }
        Ok(())
    }

    /// Undoes `mutant`'s edits: its files get the source's content back.
    pub fn restore(&self, mutant: &Mutant) -> Result<(), ScratchError> {
        for edit in &mutant.edits {
            let from = self.source.join(&edit.file);
            let bytes = std::fs::read(&from).map_err(io(&from))?;
            write_if_changed(&self.root.join(&edit.file), &bytes)?;
        }
        Ok(())
    }

    /// Builds simctl in the copy. `Err` carries the tail of cargo's output.
    pub fn build(&self) -> Result<Result<PathBuf, String>, ScratchError> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .args(["build", "--quiet", "--locked", "--profile", PROFILE, "--bin", "simctl"])
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .output()
            .map_err(ScratchError::Cargo)?;
        if output.status.success() {
            return Ok(Ok(self.target_dir.join(PROFILE).join("simctl")));
        }
        let text = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        Ok(Err(tail.into_iter().rev().collect::<Vec<_>>().join("\n")))
    }
}

/// Collects the files under `dir` (relative to the walk's root, `rel`),
/// skipping build output, VCS data and `exclude` itself.
fn list_files(dir: &Path, rel: &Path, exclude: &Path, out: &mut BTreeSet<PathBuf>) -> Result<(), ScratchError> {
    let here = dir.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&here)
        .map_err(io(&here))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let path = entry.path();
        let rel_path = rel.join(&name);
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            let skipped = SKIPPED_DIRS.iter().any(|d| name == *d);
            if !skipped && path != exclude {
                list_files(dir, &rel_path, exclude, out)?;
            }
        } else if kind.is_file() && !name.to_string_lossy().ends_with(".jsonl") {
            out.insert(rel_path);
        }
    }
    Ok(())
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), ScratchError> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(path, bytes).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::catalog::{Edit, Expect};

    fn mutant(find: &str) -> Mutant {
        Mutant {
            name: "m".into(),
            breaks: "x".into(),
            area: "executor".into(),
            origin: "own".into(),
            expect: Expect::Rule,
            rule: None,
            try_first: Vec::new(),
            edits: vec![Edit {
                file: "a/b.rs".into(),
                find: find.into(),
                replace: "NEW".into(),
            }],
        }
    }

    /// Sync copies, apply mutates only the copy, restore undoes it, and a
    /// missing or repeated snippet is reported stale.
    #[test]
    fn sync_apply_restore_and_stale() {
        let base = std::env::temp_dir().join(format!("simctl-scratch-test-{}", std::process::id()));
        let source = base.join("src");
        std::fs::create_dir_all(source.join("a")).unwrap();
        std::fs::create_dir_all(source.join("target")).unwrap();
        std::fs::write(source.join("a/b.rs"), "one OLD two old").unwrap();
        std::fs::write(source.join("target/big"), "build output").unwrap();
        let scratch = Scratch::new(&source, &base.join("copy"), &base.join("tgt"));
        scratch.sync().unwrap();
        assert!(!base.join("copy/target").exists(), "build output is not copied");
        let m = mutant("OLD");
        assert!(scratch.check(&m).unwrap().is_empty());
        scratch.apply(&m).unwrap();
        assert_eq!(
            std::fs::read_to_string(base.join("copy/a/b.rs")).unwrap(),
            "one NEW two old"
        );
        assert_eq!(
            std::fs::read_to_string(source.join("a/b.rs")).unwrap(),
            "one OLD two old"
        );
        scratch.restore(&m).unwrap();
        assert_eq!(
            std::fs::read_to_string(base.join("copy/a/b.rs")).unwrap(),
            "one OLD two old"
        );
        assert_eq!(scratch.check(&mutant("gone")).unwrap()[0].occurrences, 0);
        assert_eq!(scratch.check(&mutant("o")).unwrap()[0].occurrences, 3);
        std::fs::remove_file(source.join("a/b.rs")).unwrap();
        scratch.sync().unwrap();
        assert!(
            !base.join("copy/a/b.rs").exists(),
            "files gone from the source leave the copy"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
