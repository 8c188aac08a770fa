//! Finding a key in the scenario text: key paths (`faults[2].host`), their
//! byte spans in the TOML document, and line/column numbers.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A path from the document root to a key, e.g. `backends[0].models[1].id`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// The root.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses `a.b[2].c` (the form serde_path_to_error and the mock crates
    /// print). `.` and the empty string are the root.
    pub fn parse(text: &str) -> Self {
        let mut segs = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
            if !name.is_empty() {
                segs.push(Seg::Key(name.to_owned()));
            }
            while let Some((index, after)) = rest.split_once(']') {
                match index.parse() {
                    Ok(i) => segs.push(Seg::Index(i)),
                    Err(_) => segs.push(Seg::Key(index.to_owned())),
                }
                rest = after.strip_prefix('[').unwrap_or(after);
            }
        }
        Self(segs)
    }

    /// This path with `key` appended.
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    /// This path with `index` appended.
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    /// `other` appended to this path.
    pub fn join(&self, other: &KeyPath) -> Self {
        Self(self.0.iter().chain(&other.0).cloned().collect())
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => f.write_str(key)?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// The span of the deepest part of `path` present in `text`: the value's
/// span when the whole path exists (its key's span when the key is the
/// last step and `want_key`), else the nearest existing ancestor's.
pub fn span_of(text: &str, path: &KeyPath, want_key: bool) -> Option<Range<usize>> {
    let root = DeTable::parse(text).ok()?;
    let mut span = root.span();
    let mut current = DeValue::Table(root.into_inner());
    for (i, seg) in path.0.iter().enumerate() {
        let last = i + 1 == path.0.len();
        let next = match (seg, &current) {
            (Seg::Key(key), DeValue::Table(table)) => {
                let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref() == key) else {
                    break;
                };
                span = if last && want_key { k.span() } else { v.span() };
                v.get_ref().clone()
            }
            (Seg::Index(index), DeValue::Array(array)) => {
                let Some(v) = array.get(*index) else { break };
                span = v.span();
                v.get_ref().clone()
            }
            _ => break,
        };
        current = next;
    }
    Some(span)
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name = \"x\"\n[[faults]]\nat_ms = 1\n[[faults]]\nat_ms = 2\nhost = \"nope\"\n";

    /// Key paths parse from and print to the dotted form.
    #[test]
    fn parses_and_prints_paths() {
        let path = KeyPath::parse("coordinator.arrivals[0].rate_per_sec");
        assert_eq!(path.to_string(), "coordinator.arrivals[0].rate_per_sec");
        assert_eq!(path.0.len(), 4);
        assert_eq!(KeyPath::parse(".").to_string(), "(top level)");
        assert_eq!(
            KeyPath::parse("a[1][2]").0,
            vec![Seg::Key("a".into()), Seg::Index(1), Seg::Index(2)]
        );
    }

    /// A value inside an array of tables is located at its line and column.
    #[test]
    fn finds_a_value_in_an_array_of_tables() {
        let span = span_of(DOC, &KeyPath::parse("faults[1].host"), false).unwrap();
        assert_eq!(&DOC[span.clone()], "\"nope\"");
        assert_eq!(line_column(DOC, span.start), (6, 8));
    }

    /// The key itself, not its value, is located when asked.
    #[test]
    fn finds_the_key_itself_when_asked() {
        let span = span_of(DOC, &KeyPath::parse("faults[1].host"), true).unwrap();
        assert_eq!(&DOC[span], "host");
    }

    /// A missing key is located at its nearest existing ancestor.
    #[test]
    fn missing_keys_fall_back_to_the_nearest_ancestor() {
        let span = span_of(DOC, &KeyPath::parse("faults[0].between"), false).unwrap();
        assert_eq!(line_column(DOC, span.start).0, 2);
    }

    /// Columns count characters, not bytes.
    #[test]
    fn columns_count_characters() {
        assert_eq!(line_column("é = 1\nab", 8), (2, 2));
    }
}
