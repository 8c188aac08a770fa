//! One SSE `data:` payload, read for the two things the token rules need:
//! its `usage` counts and whether `choices[0].delta.content` is a non-empty
//! string.
//!
//! Why not `serde_json::Value`: the token rules read every line of every
//! body a run relayed (hundreds of thousands at scale), and building a
//! `Value` map with owned strings for each was most of the oracle's time.
//! This reads the same JSON in one pass, skipping what it does not need
//! (`IgnoredAny`), and gives exactly what `Value` would have given:
//! - a payload that is not valid JSON is `None`;
//! - a valid payload that is not an object carries no usage and no content;
//! - of a key written twice, the last one counts (as `Value`'s map keeps it);
//! - a count is a non-negative integer, or absent/`null`; anything else is
//!   [`Count::Spoiled`];
//! - `usage` and `choices` are absent/`null`, or of their type (object,
//!   array), or [`Field::Spoiled`].
//!
//! A test compares it with the `Value` reading over crafted payloads.
//!
//! The content events vLLM-style servers write, nearly every line of every
//! body, are recognised by their bytes first (`sse/shape.rs`); the rest is
//! parsed.

mod shape;

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A `usage` count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Count {
    /// Absent or `null`.
    #[default]
    Absent,
    /// A non-negative integer.
    Is(u64),
    /// Present, but not a non-negative integer.
    Spoiled,
}

impl Count {
    /// `Some(None)` when absent, `Some(Some(n))`, or `None` when spoiled
    /// (so `?` drops a spoiled event).
    pub fn get(self) -> Option<Option<u64>> {
        match self {
            Self::Absent => Some(None),
            Self::Is(n) => Some(Some(n)),
            Self::Spoiled => None,
        }
    }
}

/// The four counts a `usage` object may carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub prompt_tokens: Count,
    pub input_tokens: Count,
    pub completion_tokens: Count,
    pub output_tokens: Count,
}

/// A top-level field of the event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Field<T> {
    /// Absent or `null`.
    #[default]
    Absent,
    /// Of its type.
    Is(T),
    /// Present and of another type.
    Spoiled,
}

/// What the token rules read of one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// `usage`, as an object of counts.
    pub usage: Field<Counts>,
    /// `choices`, as an array: whether its first element's
    /// `delta.content` is a non-empty string.
    pub choices: Field<bool>,
}

/// The event in `payload`, or `None` when it is not valid JSON.
pub fn parse(payload: &[u8]) -> Option<Event> {
    if let Some(event) = shape::content_event(payload) {
        return Some(event);
    }
    let mut de = serde_json::Deserializer::from_slice(payload);
    let event = de.deserialize_any(EventVisitor).ok()?;
    de.end().ok()?;
    Some(event)
}

/// Visits of the named kinds of value, each giving `$v` (scalars are
/// consumed by being read).
macro_rules! give {
    ($($visit:ident($ty:ty)),* => $v:expr) => {
        $(fn $visit<E>(self, _: $ty) -> Result<Self::Value, E> {
            Ok($v)
        })*
    };
}

/// `null` gives `$v`.
macro_rules! unit {
    ($v:expr) => {
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}

/// An array is consumed whole and gives `$v`.
macro_rules! drain_seq {
    ($v:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($v)
        }
    };
}

/// An object is consumed whole and gives `$v`.
macro_rules! drain_map {
    ($v:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($v)
        }
    };
}

/// A visitor used as its own seed: it reads whatever JSON value comes.
macro_rules! seed_visits_any {
    ($visitor:ty, $value:ty) => {
        impl<'de> DeserializeSeed<'de> for $visitor {
            type Value = $value;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<$value, D::Error> {
                d.deserialize_any(self)
            }
        }
    };
}

/// Reads the map of `map` key by key, handing the value of each key to
/// `on_key` (which must consume it) and skipping the rest.
fn each_key<'de, A: MapAccess<'de>>(
    mut map: A,
    mut on_key: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<KeyName>()? {
        if !on_key(key.0, &mut map)? {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(())
}

/// A map key, borrowed where the input allows (escaped keys are owned).
struct KeyName(&'static str);

impl<'de> serde::Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, key: &str) -> Result<KeyName, E> {
                // Only the few keys this module reads are kept by name.
                const KNOWN: &[&str] = &[
                    "usage",
                    "choices",
                    "delta",
                    "content",
                    "prompt_tokens",
                    "input_tokens",
                    "completion_tokens",
                    "output_tokens",
                ];
                Ok(KeyName(KNOWN.iter().copied().find(|k| *k == key).unwrap_or("")))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    give!(visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str) => Event::default());
    unit!(Event::default());
    drain_seq!(Event::default());
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Event, A::Error> {
        let mut event = Event::default();
        each_key(map, |key, map| {
            match key {
                "usage" => event.usage = map.next_value_seed(UsageSeed)?,
                "choices" => event.choices = map.next_value_seed(ChoicesSeed)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(event)
    }
}

/// `usage`: `null`, an object of counts, or spoiled.
struct UsageSeed;

seed_visits_any!(UsageSeed, Field<Counts>);

impl<'de> Visitor<'de> for UsageSeed {
    type Value = Field<Counts>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a usage object")
    }
    give!(visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str) => Field::Spoiled);
    unit!(Field::Absent);
    drain_seq!(Field::Spoiled);
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut counts = Counts::default();
        each_key(map, |key, map| {
            let slot = match key {
                "prompt_tokens" => &mut counts.prompt_tokens,
                "input_tokens" => &mut counts.input_tokens,
                "completion_tokens" => &mut counts.completion_tokens,
                "output_tokens" => &mut counts.output_tokens,
                _ => return Ok(false),
            };
            *slot = map.next_value_seed(CountSeed)?;
            Ok(true)
        })?;
        Ok(Field::Is(counts))
    }
}

/// One count: a non-negative integer, `null`, or spoiled.
struct CountSeed;

seed_visits_any!(CountSeed, Count);

impl<'de> Visitor<'de> for CountSeed {
    type Value = Count;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a count")
    }
    fn visit_u64<E>(self, n: u64) -> Result<Count, E> {
        Ok(Count::Is(n))
    }
    give!(visit_bool(bool), visit_i64(i64), visit_f64(f64), visit_str(&str) => Count::Spoiled);
    unit!(Count::Absent);
    drain_seq!(Count::Spoiled);
    drain_map!(Count::Spoiled);
}

/// `choices`: `null`, an array (read: its first element's content), or
/// spoiled.
struct ChoicesSeed;

seed_visits_any!(ChoicesSeed, Field<bool>);

impl<'de> Visitor<'de> for ChoicesSeed {
    type Value = Field<bool>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a choices array")
    }
    give!(visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str) => Field::Spoiled);
    unit!(Field::Absent);
    drain_map!(Field::Spoiled);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let content = seq.next_element_seed(Within(&["delta", "content"]))?.unwrap_or(false);
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Is(content))
    }
}

/// Whether the value at the path of keys (inside nested objects; last of a
/// repeated key wins) is a non-empty string. Anything else is `false`.
#[derive(Clone, Copy)]
struct Within(&'static [&'static str]);

seed_visits_any!(Within, bool);

impl<'de> Visitor<'de> for Within {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    give!(visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64) => false);
    unit!(false);
    drain_seq!(false);
    fn visit_str<E>(self, text: &str) -> Result<bool, E> {
        Ok(self.0.is_empty() && !text.is_empty())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            // A path's end must be a string, not an object.
            let mut map = map;
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(false);
        };
        let mut found = false;
        each_key(map, |key, map| {
            if key != *first {
                return Ok(false);
            }
            found = map.next_value_seed(Within(rest))?;
            Ok(true)
        })?;
        Ok(found)
    }
}

/// JSON payloads crafted to reach every branch of the reader: content,
/// counts of every type, repeated and escaped keys, invalid JSON.
#[cfg(test)]
pub(super) const CRAFTED_PAYLOADS: &[&str] = &[
    r#"{"id":"x","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#,
    r#"{"choices":[{"delta":{"content":""}}]}"#,
    r#"{"choices":[{"delta":{"content":"a\"b"}}]}"#,
    r#"{"choices":[{"delta":{"content":"\u00e9"}}]}"#,
    r#"{"choices":[{"delta":{"content":null}}]}"#,
    r#"{"choices":[{"delta":{"content":3}}]}"#,
    r#"{"choices":[{"delta":{"content":{"x":"y"}}}]}"#,
    r#"{"choices":[{"delta":"text"}]}"#,
    r#"{"choices":["text"]}"#,
    r#"{"choices":[]}"#,
    r#"{"choices":[{"delta":{}}, {"delta":{"content":"second"}}]}"#,
    r#"{"choices":null}"#,
    r#"{"choices":{"delta":{"content":"x"}}}"#,
    r#"{"choices":"x"}"#,
    r#"{"choices":[{"delta":{"content":"a","content":""}}]}"#,
    r#"{"choices":[{"delta":{"content":""},"delta":{"content":"b"}}]}"#,
    r#"{"usage":{"prompt_tokens":3,"completion_tokens":9}}"#,
    r#"{"usage":{"input_tokens":3,"output_tokens":9,"total":12}}"#,
    r#"{"usage":{"prompt_tokens":-1}}"#,
    r#"{"usage":{"prompt_tokens":1.0}}"#,
    r#"{"usage":{"prompt_tokens":"3"}}"#,
    r#"{"usage":{"prompt_tokens":null,"completion_tokens":[1]}}"#,
    r#"{"usage":{"completion_tokens":{"n":1}}}"#,
    r#"{"usage":{"prompt_tokens":18446744073709551615}}"#,
    r#"{"usage":{"prompt_tokens":18446744073709551616}}"#,
    r#"{"usage":{"prompt_tokens":1,"prompt_tokens":2}}"#,
    r#"{"usage":{"prompt_tokens":1},"usage":null}"#,
    r#"{"usage":null,"usage":{"output_tokens":5}}"#,
    r#"{"usage":null}"#,
    r#"{"usage":[1]}"#,
    r#"{"usage":7}"#,
    r#"{"us\u0061ge":{"prompt_tokens":4}}"#,
    r#"{"choices":[{"d\u0065lta":{"content":"x"}}]}"#,
    r#"  {"usage":{"prompt_tokens":2}}  "#,
    r#"[1,2]"#,
    r#""text""#,
    r#"42"#,
    r#"null"#,
    r#"[DONE]"#,
    r#"{"usage":{"prompt_tokens":2}"#,
    r#"{"usage":{"prompt_tokens":2}} trailing"#,
    r#""#,
    r#"{"a":{"b":[{"c":null}]},"choices":[{"delta":{"role":"assistant"}}]}"#,
];

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The `Value` reading this module replaces, field by field.
    pub(super) fn by_value(payload: &[u8]) -> Option<Event> {
        let event: Value = serde_json::from_slice(payload).ok()?;
        let count = |usage: &serde_json::Map<String, Value>, key: &str| match usage.get(key) {
            None | Some(Value::Null) => Count::Absent,
            Some(value) => value.as_u64().map_or(Count::Spoiled, Count::Is),
        };
        let usage = match event.get("usage") {
            None | Some(Value::Null) => Field::Absent,
            Some(Value::Object(u)) => Field::Is(Counts {
                prompt_tokens: count(u, "prompt_tokens"),
                input_tokens: count(u, "input_tokens"),
                completion_tokens: count(u, "completion_tokens"),
                output_tokens: count(u, "output_tokens"),
            }),
            Some(_) => Field::Spoiled,
        };
        let choices = match event.get("choices") {
            None | Some(Value::Null) => Field::Absent,
            Some(Value::Array(choices)) => Field::Is(
                choices
                    .first()
                    .and_then(|c| c.get("delta"))
                    .and_then(|d| d.get("content"))
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty()),
            ),
            Some(_) => Field::Spoiled,
        };
        Some(Event { usage, choices })
    }

    /// Every crafted payload reads the same as through `serde_json::Value`.
    #[test]
    fn reads_what_value_reads() {
        for payload in CRAFTED_PAYLOADS {
            assert_eq!(parse(payload.as_bytes()), by_value(payload.as_bytes()), "{payload}");
        }
    }
}
