//! Reading a scenario file: TOML syntax, then the schema (with the key path
//! of any problem), then the cross-checks of [`super::validate`]. Every
//! failure names the file, line, column and key.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_path_to_error::Segment;

use super::error::ScenarioError;
use super::locate::{KeyPath, line_column, span_of};
use super::model::Scenario;
use super::swarm::prepare;
use super::validate::{Problem, validate};

/// Largest scenario file accepted, in bytes.
pub const SCENARIO_BYTES_MAX: u64 = 4 << 20;

/// Reads, parses and validates the scenario at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let bytes_len = std::fs::metadata(path)
        .map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?
        .len();
    if bytes_len > SCENARIO_BYTES_MAX {
        return Err(ScenarioError::TooLarge {
            file,
            bytes_len,
            bytes_max: SCENARIO_BYTES_MAX,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&file, &text)
}

/// Parses and validates scenario `text`; `file` names it in errors. A
/// `[swarm]` table is checked too, and kept with the text each run redraws.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let mut scenario = parse_plain(file, text)?;
    scenario.swarm_source = prepare(file, text, &scenario)?.map(Arc::new);
    Ok(scenario)
}

/// [`parse`] without the `[swarm]` checks: what a run's drawn text goes
/// through (its targets were checked when the file was loaded).
pub(crate) fn parse_plain(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let deserializer = toml::de::Deserializer::parse(text).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        invalid(file, text, span, "(syntax)".to_owned(), err.message().to_owned())
    })?;
    let scenario: Scenario =
        serde_path_to_error::deserialize(deserializer).map_err(|err| schema_error(file, text, err))?;
    if let Some(problem) = validate(&scenario).into_iter().next() {
        return Err(problem_error(file, text, problem));
    }
    Ok(scenario)
}

/// A [`ScenarioError::Invalid`] at byte `span` of `text`.
pub(crate) fn invalid(file: &str, text: &str, span: Range<usize>, key: String, message: String) -> ScenarioError {
    let (line, column) = line_column(text, span.start);
    ScenarioError::Invalid {
        file: file.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// A schema error: the path serde was at, plus the unknown key's name when
/// the message names one (serde reports it at the parent's path).
fn schema_error(file: &str, text: &str, err: serde_path_to_error::Error<toml::de::Error>) -> ScenarioError {
    let mut path = KeyPath::root();
    for segment in err.path().iter() {
        path = match segment {
            Segment::Seq { index } => path.index(*index),
            Segment::Map { key } | Segment::Enum { variant: key } => path.key(key),
            Segment::Unknown => path,
        };
    }
    let message = err.inner().message().to_owned();
    let parent = path.clone();
    let mut want_key = false;
    if let Some(name) = field_named(&message, "unknown field `")
        && path.0.last() != Some(&super::locate::Seg::Key(name.to_owned()))
    {
        path = path.key(name);
        want_key = true;
    }
    // A missing key has no place of its own: point at its table.
    let missing = field_named(&message, "missing field `");
    if let Some(name) = missing {
        path = path.key(name);
    }
    let located = if missing.is_some() {
        span_of(text, &parent, false)
    } else {
        None
    };
    let span = located
        .or_else(|| err.inner().span())
        .or_else(|| span_of(text, &path, want_key))
        .unwrap_or(0..0);
    invalid(file, text, span, path.to_string(), message)
}

/// The field name in serde's "unknown field `x`, expected …" or "missing
/// field `x`", given the message's opening up to the backquote.
fn field_named<'a>(message: &'a str, opening: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(opening)?;
    rest.split_once('`').map(|(name, _)| name)
}

fn problem_error(file: &str, text: &str, problem: Problem) -> ScenarioError {
    let span = span_of(text, &problem.path, false).unwrap_or(0..0);
    invalid(file, text, span, problem.path.to_string(), problem.message)
}
