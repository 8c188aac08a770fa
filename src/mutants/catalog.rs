//! The mutation catalog: one TOML file per planted defect under
//! `mutants/catalog/`, each a list of exact find/replace edits to the agent's
//! sources plus what the defect breaks and what the harness should do about
//! it.
//!
//! A find/replace edit (rather than a context diff) survives unrelated edits
//! to the agent: only the snippet itself must still be there. A snippet that
//! is missing, or occurs more than once, makes the mutant STALE, which the
//! runner reports as an error rather than a pass.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the harness must do with a mutant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// Killed by at least one oracle rule (the goal for every defect).
    Rule,
    /// Killed, by a rule or, for now, by an `[expect]` count only.
    Killed,
    /// Not caught today; the rule named in `rule` is meant to catch it.
    /// Reported, never gated.
    SurvivesUntilRule,
    /// An equivalent mutant: behaviour is unchanged, so it must survive
    /// (a kill is a false alarm of the harness, or a non-equivalent control).
    Control,
}

impl Expect {
    /// The catalog spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Rule => "rule",
            Expect::Killed => "killed",
            Expect::SurvivesUntilRule => "survives-until-rule",
            Expect::Control => "control",
        }
    }
}

/// One exact find/replace edit.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    /// Path relative to the repository root, e.g. `agent/src/executor/board.rs`.
    pub file: String,
    /// The exact text to find; it must occur exactly once in `file`.
    pub find: String,
    /// What replaces it.
    pub replace: String,
}

/// The TOML form of one catalog file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MutantFile {
    /// What the defect breaks, in one line.
    breaks: String,
    /// Where the defect lives: executor, session, backend, heartbeat, run.
    area: String,
    /// Where the defect comes from: `seed` (a defect code of the seed's
    /// shape has) or `own`.
    #[serde(default = "own")]
    origin: String,
    #[serde(default = "rule")]
    expect: Expect,
    /// The rule that kills it (or, for `survives-until-rule`, should).
    #[serde(default)]
    rule: Option<String>,
    /// Scenario files (names under the scenario directory) to try first.
    #[serde(default)]
    try_first: Vec<String>,
    #[serde(rename = "edit")]
    edits: Vec<Edit>,
}

fn own() -> String {
    "own".to_owned()
}

fn rule() -> Expect {
    Expect::Rule
}

/// One mutant of the catalog.
#[derive(Clone, Debug, Serialize)]
pub struct Mutant {
    /// The file stem, e.g. `07-cancel-no-purge`.
    pub name: String,
    pub breaks: String,
    pub area: String,
    pub origin: String,
    pub expect: Expect,
    pub rule: Option<String>,
    pub try_first: Vec<String>,
    pub edits: Vec<Edit>,
}

/// A catalog file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{dir}: cannot read the catalog directory: {source}")]
    ReadDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// Loads every `*.toml` of `dir`, in file-name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Mutant>, CatalogError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CatalogError::ReadDir {
        dir: dir.display().to_string(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files.iter().map(|file| load_file(file)).collect()
}

/// Loads one catalog file.
pub fn load_file(file: &Path) -> Result<Mutant, CatalogError> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| CatalogError::Read {
        file: shown.clone(),
        source,
    })?;
    let name = file
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    parse(&name, &shown, &text)
}

/// Parses the text of one catalog file named `name` (shown as `shown`).
pub fn parse(name: &str, shown: &str, text: &str) -> Result<Mutant, CatalogError> {
    let parsed: MutantFile = toml::from_str(text).map_err(|e| CatalogError::Parse {
        file: shown.to_owned(),
        message: e.to_string(),
    })?;
    let invalid = |message: &str| CatalogError::Invalid {
        file: shown.to_owned(),
        message: message.to_owned(),
    };
    if parsed.edits.is_empty() {
        return Err(invalid("a mutant needs at least one [[edit]]"));
    }
    if parsed.breaks.trim().is_empty() {
        return Err(invalid("`breaks` must say what the mutant breaks"));
    }
    for edit in &parsed.edits {
        if edit.find.is_empty() {
            return Err(invalid("an [[edit]] has an empty `find`"));
        }
        if edit.find == edit.replace {
            return Err(invalid("an [[edit]] replaces its snippet by itself"));
        }
        if edit.file.starts_with('/') || edit.file.split('/').any(|part| part == "..") {
            return Err(invalid("an [[edit]]'s `file` must be relative to the repository root"));
        }
    }
    if parsed.expect == Expect::SurvivesUntilRule && parsed.rule.is_none() {
        return Err(invalid(
            "`survives-until-rule` needs `rule`: the rule meant to catch it",
        ));
    }
    Ok(Mutant {
        name: name.to_owned(),
        breaks: parsed.breaks,
        area: parsed.area,
        origin: parsed.origin,
        expect: parsed.expect,
        rule: parsed.rule,
        try_first: parsed.try_first,
        edits: parsed.edits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete catalog file parses with its defaults.
    #[test]
    fn parses_a_mutant() {
        let text = r#"
breaks = "admits one job too many"
area = "executor"
try_first = ["overload.toml"]
[[edit]]
file = "agent/src/executor/board.rs"
find = "a >= b"
replace = "a > b"
"#;
        let m = parse("01-x", "01-x.toml", text).expect("parses");
        assert_eq!(m.expect, Expect::Rule);
        assert_eq!(m.origin, "own");
        assert_eq!(m.edits.len(), 1);
        assert_eq!(m.try_first, vec!["overload.toml"]);
    }

    /// Unknown keys, missing edits, no-op edits and untargeted survivors are refused.
    #[test]
    fn refuses_bad_files() {
        let base = "breaks = \"x\"\narea = \"executor\"\n";
        assert!(parse("m", "m", &format!("{base}bogus = 1\n")).is_err());
        assert!(parse("m", "m", &format!("{base}edit = []\n")).is_err());
        let noop = format!("{base}[[edit]]\nfile = \"a\"\nfind = \"x\"\nreplace = \"x\"\n");
        assert!(parse("m", "m", &noop).is_err());
        let survivor =
            format!("{base}expect = \"survives-until-rule\"\n[[edit]]\nfile = \"a\"\nfind = \"x\"\nreplace = \"y\"\n");
        assert!(parse("m", "m", &survivor).is_err());
        let escape = format!("{base}[[edit]]\nfile = \"../a\"\nfind = \"x\"\nreplace = \"y\"\n");
        assert!(parse("m", "m", &escape).is_err());
    }
}
