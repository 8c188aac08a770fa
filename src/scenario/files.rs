//! Scenario paths as given on the command line: a file is itself; a
//! directory stands for its `*.toml` files, in name order (not recursive).

use std::io;
use std::path::{Path, PathBuf};

use super::ScenarioError;

/// The scenario files `paths` name, each directory expanded; an unreadable
/// directory, or one without a `*.toml` file, is an error naming it.
pub fn expand(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<ScenarioError>) {
    let (mut files, mut errors) = (Vec::new(), Vec::new());
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        match toml_files_in(path) {
            Ok(found) if found.is_empty() => errors.push(ScenarioError::Read {
                file: path.display().to_string(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "a directory without any *.toml scenario file (give scenario files or a directory holding them)",
                ),
            }),
            Ok(found) => files.extend(found),
            Err(source) => errors.push(ScenarioError::Read {
                file: path.display().to_string(),
                source,
            }),
        }
    }
    (files, errors)
}

fn toml_files_in(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory expands to its `*.toml` files in order; a file stays itself.
    #[test]
    fn directories_expand_to_their_scenarios() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
        let small = fixtures.join("small.toml");
        let (files, errors) = expand(&[fixtures.clone(), small.clone()]);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(files.contains(&small));
        assert_eq!(files.last(), Some(&small));
        assert!(files.iter().all(|f| f.extension().is_some_and(|x| x == "toml")));
    }

    /// A directory without scenarios is an error that says what is expected.
    #[test]
    fn an_empty_directory_says_what_it_expects() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let (files, errors) = expand(&[dir]);
        assert!(files.is_empty());
        assert!(
            errors[0].to_string().contains("without any *.toml scenario file"),
            "{}",
            errors[0]
        );
    }
}
