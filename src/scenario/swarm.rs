//! `[swarm]`: swarm testing. A scenario names values written in its own file
//! and, for each, a range or a set to draw from:
//!
//! ```toml
//! [swarm]
//! "agent.max_concurrent" = { min = 2, max = 8 }
//! "coordinator.arrivals[0].rate_per_sec" = { min = 2.0, max = 20.0 }
//! "backends[0].overflow" = { one_of = ["queue", "reject_429"] }
//! ```
//!
//! Every run seed draws one value per target from a ChaCha8 RNG seeded from
//! the run seed alone, writes it over the value in the file's text and reads
//! the text again, so a drawn scenario is validated exactly like a written
//! one and a run is still a pure function of (file, seed).
//!
//! Loading checks every target: it must name a number, string or boolean the
//! file writes; bounds must have its type; and the scenario must stay valid
//! with each target at each of its extremes, alone and paired with every
//! other target at its extremes. The schema's cross-key rules compare two
//! keys at most (`latency_min_ms <= latency_max_ms`, a fault's time within
//! `duration_ms`, …) and are monotone in each, so a draw inside the checked
//! corners cannot break them.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue};

use super::error::ScenarioError;
use super::load::{invalid, parse_plain};
use super::locate::{KeyPath, Seg, span_of};
use super::model::Scenario;

/// Most targets one `[swarm]` table may name.
pub const SWARM_TARGETS_MAX: usize = 32;
/// Most values one `one_of` may list.
pub const ONE_OF_MAX: usize = 16;
/// Most scenario variants loading may read to check the corners; each is a
/// full parse, about a millisecond for a large scenario.
pub const CORNER_CHECKS_MAX: usize = 2_048;
/// Significant digits a drawn float keeps, so printed draws stay short and
/// the printed value is exactly the one applied.
const FLOAT_SIGNIFICANT_DIGITS: usize = 4;
/// Domain separator of the swarm RNG's seed, so its stream shares nothing
/// with the other RNGs derived from the same run seed.
const SEED_DOMAIN: &[u8] = b"simctl/swarm/";

/// One `[swarm]` entry as written: `{ min, max }` or `{ one_of }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwarmRange {
    pub min: Option<toml::Value>,
    pub max: Option<toml::Value>,
    pub one_of: Option<Vec<toml::Value>>,
}

/// A drawn (or candidate) value, printed as its TOML literal.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SwarmValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl fmt::Display for SwarmValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => write!(f, "{v}"),
            // `{:?}` keeps the decimal point (`12.0`), so TOML reads a float.
            Self::Float(v) => write!(f, "{v:?}"),
            Self::Bool(v) => write!(f, "{v}"),
            // toml's own writer escapes the string as TOML needs.
            Self::Str(v) => write!(f, "{}", toml::Value::String(v.clone())),
        }
    }
}

/// One value a run drew: the target key as written in `[swarm]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SwarmDraw {
    pub key: String,
    pub value: SwarmValue,
}

impl fmt::Display for SwarmDraw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.key, self.value)
    }
}

/// What a target may take.
#[derive(Clone, Debug, PartialEq)]
enum Choice {
    /// Uniform over `min..=max`.
    Int { min: i64, max: i64 },
    /// Uniform over `[min, max]`, rounded to a few significant digits.
    Float { min: f64, max: f64 },
    /// One of the listed values, each equally likely.
    OneOf(Vec<SwarmValue>),
}

impl Choice {
    /// The values loading checks: both bounds, or every listed value.
    fn extremes(&self) -> Vec<SwarmValue> {
        match self {
            Self::Int { min, max } => vec![SwarmValue::Int(*min), SwarmValue::Int(*max)],
            Self::Float { min, max } => vec![SwarmValue::Float(*min), SwarmValue::Float(*max)],
            Self::OneOf(values) => values.clone(),
        }
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> SwarmValue {
        match self {
            Self::Int { min, max } => SwarmValue::Int(rng.random_range(*min..=*max)),
            Self::Float { min, max } => {
                let raw = min + (max - min) * rng.random::<f64>();
                SwarmValue::Float(round_significant(raw).clamp(*min, *max))
            }
            Self::OneOf(values) => values[rng.random_range(0..values.len())].clone(),
        }
    }
}

/// `value` kept to [`FLOAT_SIGNIFICANT_DIGITS`] significant digits.
fn round_significant(value: f64) -> f64 {
    let text = format!("{value:.prec$e}", prec = FLOAT_SIGNIFICANT_DIGITS - 1);
    text.parse().unwrap_or(value)
}

/// One checked target: where its value sits in the text and what it takes.
#[derive(Clone, Debug, PartialEq)]
struct Target {
    key: String,
    span: Range<usize>,
    choice: Choice,
}

/// The text of a swarm scenario and its checked targets; each run rewrites
/// the targets' spans and reads the text again.
#[derive(Debug, PartialEq)]
pub struct SwarmSource {
    file: String,
    text: String,
    /// In `[swarm]` key order (a `BTreeMap`), which is also the draw order.
    targets: Vec<Target>,
}

/// The seed of the swarm RNG for run seed `seed`.
pub fn swarm_seed(seed: u64) -> u64 {
    let digest = Sha256::new()
        .chain_update(SEED_DOMAIN)
        .chain_update(seed.to_le_bytes())
        .finalize();
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// Checks the `[swarm]` table of `scenario` (read from `text`) and returns
/// what each run needs to draw from it; `None` when there is no table.
pub fn prepare(file: &str, text: &str, scenario: &Scenario) -> Result<Option<SwarmSource>, ScenarioError> {
    if scenario.swarm.is_empty() {
        return Ok(None);
    }
    let entry_error = |key: &str, field: Option<&str>, message: String| {
        let mut path = KeyPath::root().key("swarm").key(key);
        let mut shown = format!("swarm.\"{key}\"");
        if let Some(field) = field {
            path = path.key(field);
            shown = format!("{shown}.{field}");
        }
        let span = span_of(text, &path, field.is_none()).unwrap_or(0..0);
        invalid(file, text, span, shown, message)
    };
    if scenario.swarm.len() > SWARM_TARGETS_MAX {
        let first = scenario.swarm.keys().next().map_or("", String::as_str);
        let message = format!("{} targets, at most {SWARM_TARGETS_MAX}", scenario.swarm.len());
        return Err(entry_error(first, None, message));
    }
    let root = DeTable::parse(text).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        invalid(file, text, span, "(syntax)".to_owned(), err.message().to_owned())
    })?;
    let root = DeValue::Table(root.into_inner());
    let mut targets = Vec::new();
    for (key, range) in &scenario.swarm {
        let (span, written) = find_scalar(&root, key).map_err(|message| entry_error(key, None, message))?;
        let choice = choice_of(range, written).map_err(|(field, message)| entry_error(key, field, message))?;
        targets.push(Target {
            key: key.clone(),
            span,
            choice,
        });
    }
    let source = SwarmSource {
        file: file.to_owned(),
        text: text.to_owned(),
        targets,
    };
    check_corners(&source).map_err(|(key, message)| entry_error(&key, None, message))?;
    Ok(Some(source))
}

/// The kind of value a target has in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Written {
    Int,
    Float,
    Bool,
    Str,
}

impl Written {
    fn name(self) -> &'static str {
        match self {
            Self::Int => "an integer",
            Self::Float => "a float",
            Self::Bool => "a boolean",
            Self::Str => "a string",
        }
    }
}

/// The span and kind of the scalar at `key` in the document.
fn find_scalar(root: &DeValue<'_>, key: &str) -> Result<(Range<usize>, Written), String> {
    let path = KeyPath::parse(key);
    if matches!(path.0.first(), Some(Seg::Key(first)) if first == "swarm") {
        return Err("a swarm target cannot be inside [swarm] itself".to_owned());
    }
    if path.0.is_empty() {
        return Err("names no key".to_owned());
    }
    let unknown = || {
        format!(
            "unknown target key `{key}`: this file writes no such value. A target must be \
             written in the file first, even where it has a default (write `{key} = …` in its \
             table; that value stands for runs without [swarm]); it names a number, string or \
             boolean, e.g. `agent.max_concurrent` or `coordinator.arrivals[0].rate_per_sec`"
        )
    };
    let mut current = root;
    let mut span = 0..0;
    for seg in &path.0 {
        let next = match (seg, current) {
            (Seg::Key(name), DeValue::Table(table)) => table.iter().find(|(k, _)| k.get_ref() == name).map(|(_, v)| v),
            (Seg::Index(index), DeValue::Array(array)) => array.get(*index),
            _ => None,
        };
        let next = next.ok_or_else(unknown)?;
        span = next.span();
        current = next.get_ref();
    }
    let written = match current {
        DeValue::Integer(_) => Written::Int,
        DeValue::Float(_) => Written::Float,
        DeValue::Boolean(_) => Written::Bool,
        DeValue::String(_) => Written::Str,
        other => {
            return Err(format!(
                "`{key}` is {}, not a number, string or boolean",
                other.type_str()
            ));
        }
    };
    Ok((span, written))
}

/// The value `value` as a candidate for a target written as `written`.
fn candidate(value: &toml::Value, written: Written) -> Option<SwarmValue> {
    match (written, value) {
        (Written::Int, toml::Value::Integer(v)) => Some(SwarmValue::Int(*v)),
        (Written::Float, toml::Value::Float(v)) if v.is_finite() => Some(SwarmValue::Float(*v)),
        // An integer bound of a float target is read as that float.
        (Written::Float, toml::Value::Integer(v)) => Some(SwarmValue::Float(*v as f64)),
        (Written::Bool, toml::Value::Boolean(v)) => Some(SwarmValue::Bool(*v)),
        (Written::Str, toml::Value::String(v)) => Some(SwarmValue::Str(v.clone())),
        _ => None,
    }
}

/// The choice `range` describes for a target written as `written`, or the
/// field at fault and why.
fn choice_of(range: &SwarmRange, written: Written) -> Result<Choice, (Option<&'static str>, String)> {
    let wrong = |field: &'static str| {
        (
            Some(field),
            format!(
                "the target is {} in the file; give {} here",
                written.name(),
                written.name()
            ),
        )
    };
    match (&range.min, &range.max, &range.one_of) {
        (None, None, Some(values)) => {
            if values.is_empty() || values.len() > ONE_OF_MAX {
                return Err((
                    Some("one_of"),
                    format!("lists {} values, needs 1..={ONE_OF_MAX}", values.len()),
                ));
            }
            let values = values
                .iter()
                .map(|v| candidate(v, written).ok_or_else(|| wrong("one_of")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Choice::OneOf(values))
        }
        (Some(min), Some(max), None) => {
            let min = candidate(min, written).ok_or_else(|| wrong("min"))?;
            let max = candidate(max, written).ok_or_else(|| wrong("max"))?;
            match (min, max) {
                (SwarmValue::Int(min), SwarmValue::Int(max)) if min <= max => Ok(Choice::Int { min, max }),
                (SwarmValue::Float(min), SwarmValue::Float(max)) if min <= max => Ok(Choice::Float { min, max }),
                (SwarmValue::Int(_) | SwarmValue::Float(_), _) => Err((Some("min"), "must be <= max".to_owned())),
                _ => Err((
                    None,
                    format!(
                        "the target is {}: draw it with `one_of`, not `min`/`max`",
                        written.name()
                    ),
                )),
            }
        }
        _ => Err((
            None,
            "give `min` and `max` (a uniform range), or `one_of` (a list), and nothing else".to_owned(),
        )),
    }
}

/// `text` with each target that has a value in `values` rewritten to it.
fn render(source: &SwarmSource, values: &[Option<&SwarmValue>]) -> String {
    let mut edits: Vec<(Range<usize>, String)> = source
        .targets
        .iter()
        .zip(values)
        .filter_map(|(target, value)| value.map(|v| (target.span.clone(), v.to_string())))
        .collect();
    // Rewrite from the end of the text so earlier spans stay valid.
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut text = source.text.clone();
    for (span, literal) in edits {
        text.replace_range(span, &literal);
    }
    text
}

/// Reads `source` with `values` applied; the error says which assignment
/// broke which key.
fn read_with(source: &SwarmSource, values: &[Option<&SwarmValue>]) -> Result<Scenario, String> {
    parse_plain(&source.file, &render(source, values)).map_err(|err| {
        let assigned: Vec<String> = source
            .targets
            .iter()
            .zip(values)
            .filter_map(|(t, v)| v.map(|v| format!("`{}` = {v}", t.key)))
            .collect();
        let why = match &err {
            ScenarioError::Invalid { key, message, .. } => format!("`{key}`: {message}"),
            other => other.to_string(),
        };
        format!("with {} the scenario is invalid: {why}", assigned.join(" and "))
    })
}

/// Reads the scenario with every target at each extreme alone, and with
/// every pair of targets at every pair of extremes.
fn check_corners(source: &SwarmSource) -> Result<(), (String, String)> {
    let extremes: Vec<Vec<SwarmValue>> = source.targets.iter().map(|t| t.choice.extremes()).collect();
    let singles: usize = extremes.iter().map(Vec::len).sum();
    let mut pairs = 0_usize;
    for i in 0..extremes.len() {
        for j in i + 1..extremes.len() {
            pairs += extremes[i].len() * extremes[j].len();
        }
    }
    let first_key = || source.targets.first().map_or_else(String::new, |t| t.key.clone());
    if singles + pairs > CORNER_CHECKS_MAX {
        let message = format!(
            "checking every pair of extremes would read the scenario {} times, more than \
             {CORNER_CHECKS_MAX}: name fewer targets or shorter `one_of` lists",
            singles + pairs
        );
        return Err((first_key(), message));
    }
    let count = source.targets.len();
    // Singles first, so a bound that is wrong on its own is blamed on its
    // own target rather than on the first pair it happens to join.
    for (i, values) in extremes.iter().enumerate() {
        for value in values {
            let mut assigned = vec![None; count];
            assigned[i] = Some(value);
            read_with(source, &assigned).map_err(|why| (source.targets[i].key.clone(), why))?;
        }
    }
    for (i, values) in extremes.iter().enumerate() {
        for value in values {
            for (j, others) in extremes.iter().enumerate().skip(i + 1) {
                for other in others {
                    let mut assigned = vec![None; count];
                    assigned[i] = Some(value);
                    assigned[j] = Some(other);
                    read_with(source, &assigned).map_err(|why| (source.targets[j].key.clone(), why))?;
                }
            }
        }
    }
    Ok(())
}

/// The scenario `scenario` becomes for run seed `seed`, with the values it
/// drew in `[swarm]` order; `None` when it has no `[swarm]` table.
pub fn draw(scenario: &Scenario, seed: u64) -> Result<Option<(Scenario, Vec<SwarmDraw>)>, ScenarioError> {
    let Some(source) = scenario.swarm_source.as_deref() else {
        return Ok(None);
    };
    let mut rng = ChaCha8Rng::seed_from_u64(swarm_seed(seed));
    let values: Vec<SwarmValue> = source.targets.iter().map(|t| t.choice.draw(&mut rng)).collect();
    let assigned: Vec<Option<&SwarmValue>> = values.iter().map(Some).collect();
    let drawn = parse_plain(&source.file, &render(source, &assigned))?;
    let draws = source
        .targets
        .iter()
        .zip(values)
        .map(|(t, value)| SwarmDraw {
            key: t.key.clone(),
            value,
        })
        .collect();
    Ok(Some((drawn, draws)))
}

/// The `[swarm]` table: target key → what to draw.
pub type SwarmSection = BTreeMap<String, SwarmRange>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    const BASE: &str = "name = \"s\"\nduration_ms = 1000\n\n[agent]\nmax_concurrent = 4\n\n\
                        [network]\nlatency_min_ms = 1\nlatency_max_ms = 5\nfail_rate = 0.0\n";

    fn with_swarm(swarm: &str) -> String {
        format!("{BASE}\n[swarm]\n{swarm}\n")
    }

    /// Each run seed draws values inside the ranges, the same ones every time.
    #[test]
    fn draws_are_in_range_and_repeatable() {
        let text = with_swarm(
            "\"agent.max_concurrent\" = { min = 2, max = 6 }\n\"network.fail_rate\" = { min = 0.0, max = 0.01 }",
        );
        let scenario = parse("s.toml", &text).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let (drawn, draws) = draw(&scenario, seed).unwrap().unwrap();
            assert_eq!(draw(&scenario, seed).unwrap().unwrap().1, draws);
            assert!((2..=6).contains(&drawn.agent.max_concurrent));
            assert!((0.0..=0.01).contains(&drawn.network.fail_rate));
            assert_eq!(draws[0].key, "agent.max_concurrent");
            assert_eq!(draws[0].value, SwarmValue::Int(i64::from(drawn.agent.max_concurrent)));
            seen.insert(drawn.agent.max_concurrent);
        }
        assert_eq!(seen.len(), 5, "every value of 2..=6 is drawn over 50 seeds");
    }

    /// A scenario without `[swarm]` draws nothing and is used as written.
    #[test]
    fn no_swarm_table_draws_nothing() {
        let scenario = parse("s.toml", BASE).unwrap();
        assert!(draw(&scenario, 3).unwrap().is_none());
    }

    /// `one_of` picks among listed strings and the draw is printed as TOML.
    #[test]
    fn one_of_picks_listed_values() {
        let text = format!(
            "{BASE}\n[[backends]]\nhost = \"b\"\nkind = \"vllm\"\noverflow = \"queue\"\n\
             [[backends.models]]\nid = \"m\"\ncontext_window = 100\n\n[swarm]\n\
             \"backends[0].overflow\" = {{ one_of = [\"queue\", \"reject_429\"] }}\n"
        );
        let scenario = parse("s.toml", &text).unwrap();
        let (_, draws) = draw(&scenario, 1).unwrap().unwrap();
        let shown = draws[0].to_string();
        assert!(
            shown == "backends[0].overflow = \"queue\"" || shown == "backends[0].overflow = \"reject_429\"",
            "{shown}"
        );
    }

    /// A target the file does not write is refused at its `[swarm]` line.
    #[test]
    fn unknown_target_is_named_with_its_line() {
        let text = with_swarm("\"agent.max_concurent\" = { min = 1, max = 2 }");
        let err = parse("s.toml", &text).unwrap_err();
        let ScenarioError::Invalid { key, message, line, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(key, "swarm.\"agent.max_concurent\"");
        assert!(
            message.contains("unknown target key `agent.max_concurent`"),
            "{message}"
        );
        assert_eq!(
            *line,
            text.lines().position(|l| l.contains("max_concurent")).unwrap() + 1
        );
    }

    /// Bounds of the wrong type, reversed bounds and mixed forms are refused.
    #[test]
    fn malformed_ranges_are_refused() {
        for (swarm, wanted) in [
            (
                "\"agent.max_concurrent\" = { min = 1.5, max = 2 }",
                "swarm.\"agent.max_concurrent\".min",
            ),
            (
                "\"agent.max_concurrent\" = { min = 3, max = 2 }",
                "swarm.\"agent.max_concurrent\".min",
            ),
            (
                "\"agent.max_concurrent\" = { min = 1 }",
                "swarm.\"agent.max_concurrent\"",
            ),
            (
                "\"agent.max_concurrent\" = { one_of = [] }",
                "swarm.\"agent.max_concurrent\".one_of",
            ),
            ("\"agent\" = { min = 1, max = 2 }", "swarm.\"agent\""),
        ] {
            let err = parse("s.toml", &with_swarm(swarm)).unwrap_err();
            assert_eq!(err.key(), Some(wanted), "{swarm}: {err}");
        }
    }

    /// A bound outside what the schema accepts is refused when loading.
    #[test]
    fn out_of_schema_extreme_is_refused() {
        let err = parse(
            "s.toml",
            &with_swarm("\"agent.max_concurrent\" = { min = 1, max = 300 }"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`agent.max_concurrent` = 300"), "{text}");
    }

    /// Two targets whose extremes conflict with each other are refused,
    /// though each is fine alone against the file's other values.
    #[test]
    fn conflicting_pair_is_refused() {
        let text = "name = \"s\"\nduration_ms = 1000\n\n[network]\nlatency_min_ms = 2\n\
                    latency_max_ms = 9\n\n[swarm]\n\
                    \"network.latency_min_ms\" = { min = 1, max = 8 }\n\
                    \"network.latency_max_ms\" = { min = 4, max = 10 }\n";
        let err = parse("s.toml", text).unwrap_err();
        assert_eq!(err.key(), Some("swarm.\"network.latency_min_ms\""));
        let text = err.to_string();
        assert!(
            text.contains("with `network.latency_max_ms` = 4 and `network.latency_min_ms` = 8"),
            "{text}"
        );
    }

    /// Floats keep four significant digits and stay inside their range.
    #[test]
    fn floats_are_rounded_within_bounds() {
        assert_eq!(round_significant(0.012_345_6), 0.012_35);
        assert_eq!(round_significant(123_456.0), 123_500.0);
        let choice = Choice::Float { min: 0.1, max: 0.2 };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..100 {
            let SwarmValue::Float(v) = choice.draw(&mut rng) else {
                unreachable!()
            };
            assert!((0.1..=0.2).contains(&v));
        }
        assert_eq!(SwarmValue::Float(12.0).to_string(), "12.0");
    }

    /// Different run seeds give the swarm RNG different seeds.
    #[test]
    fn swarm_seeds_differ_by_run_seed() {
        assert_ne!(swarm_seed(1), swarm_seed(2));
        assert_ne!(swarm_seed(1), 1);
    }
}
