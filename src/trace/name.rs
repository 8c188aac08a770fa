//! The user-facing name of a submission: the number the scenario's
//! `job = N` keys use (`cancels`, `duplicates`), not the coordinator's
//! record index `sub`. Malformed frames and re-sends are records too, so
//! `sub` drifts from the scenario's numbers as soon as one is written; the
//! name does not.
//!
//! - an original job of an arrival process is `#N`, `N` its arrival number
//!   (the `job = N` of the scenario, from 0);
//! - a re-send of job `N` is `#N re-send K`, the `K`-th re-send of it (from
//!   1, in the coordinator's record order);
//! - a deliberately broken frame (`invalid` or `malformed`) is
//!   `malformed K`, the `K`-th such frame (from 1, in record order);
//! - a submission of a trace written before the arrival number was
//!   recorded is `record N`, its `sub`.
//!
//! `sub` stays the internal key: rules and attribution use it. Every
//! reader of a trace (the oracle's [`super::TraceView`], `simctl trace`,
//! the HTML report) names submissions with [`name_submissions`], so they
//! agree.

use std::collections::BTreeMap;
use std::fmt;

use super::event::{Event, EventKind, JobKind};

/// Which kind of submission is being named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A job of an arrival process.
    Original,
    /// A re-send of an earlier job's frame.
    Resend,
    /// A deliberately broken frame (`invalid` or `malformed`).
    Broken,
}

impl NameKind {
    /// The kind of a submission of trace kind `kind` (`normal`,
    /// `duplicate`, `invalid`, `malformed`, as serialised).
    pub fn of_trace_kind(kind: &str) -> Self {
        match kind {
            "duplicate" => Self::Resend,
            "invalid" | "malformed" => Self::Broken,
            _ => Self::Original,
        }
    }
}

/// A submission's user-facing name (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SubName {
    /// `#N`: the job of arrival number `N`.
    Job(u64),
    /// `#N re-send K`.
    Resend { of: u64, nth: u64 },
    /// `malformed K`.
    Malformed(u64),
    /// `record N`: no arrival number recorded; `N` is the record index.
    Record(u64),
}

impl Default for SubName {
    fn default() -> Self {
        Self::Record(0)
    }
}

impl fmt::Display for SubName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Job(n) => write!(f, "#{n}"),
            Self::Resend { of, nth } => write!(f, "#{of} re-send {nth}"),
            Self::Malformed(nth) => write!(f, "malformed {nth}"),
            Self::Record(sub) => write!(f, "record {sub}"),
        }
    }
}

impl SubName {
    /// Parses what a person types for a name: `5`, `#5`, `#5 re-send 2`,
    /// `5r2`, `malformed 3`, `m3`, `record 7` (case, `#` and spaces do not
    /// matter). `None` when `text` is none of these.
    pub fn parse(text: &str) -> Option<Self> {
        let squeezed: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '#')
            .collect::<String>()
            .to_lowercase()
            .replace("re-send", "r")
            .replace("resend", "r")
            .replace("malformed", "m")
            .replace("record", "s");
        let number = |digits: &str| digits.parse::<u64>().ok();
        if let Some(rest) = squeezed.strip_prefix('m') {
            return number(rest).map(Self::Malformed);
        }
        if let Some(rest) = squeezed.strip_prefix('s') {
            return number(rest).map(Self::Record);
        }
        match squeezed.split_once('r') {
            Some((of, nth)) => Some(Self::Resend {
                of: number(of)?,
                nth: number(nth)?,
            }),
            None => number(&squeezed).map(Self::Job),
        }
    }
}

/// Names every submission `(sub, kind, arrival)`; `arrival` is the arrival
/// number the submission carries (a re-send carries its original's), `None`
/// for broken frames. Re-sends and broken frames are counted in `sub`
/// order, whatever order they are given in.
pub fn name_submissions(subs: impl IntoIterator<Item = (u64, NameKind, Option<u64>)>) -> BTreeMap<u64, SubName> {
    let ordered: BTreeMap<u64, (NameKind, Option<u64>)> = subs
        .into_iter()
        .map(|(sub, kind, arrival)| (sub, (kind, arrival)))
        .collect();
    let mut resends: BTreeMap<u64, u64> = BTreeMap::new();
    let mut broken = 0;
    let mut names = BTreeMap::new();
    for (sub, (kind, arrival)) in ordered {
        let name = match (kind, arrival) {
            (NameKind::Broken, _) => {
                broken += 1;
                SubName::Malformed(broken)
            }
            (NameKind::Original, Some(n)) => SubName::Job(n),
            (NameKind::Resend, Some(of)) => {
                let nth = resends.entry(of).or_default();
                *nth += 1;
                SubName::Resend { of, nth: *nth }
            }
            (_, None) => SubName::Record(sub),
        };
        names.insert(sub, name);
    }
    names
}

/// The user-facing name of every submission of `events`, written or not.
pub fn submission_names(events: &[Event]) -> BTreeMap<u64, SubName> {
    let kind_of = |kind: &JobKind| match kind {
        JobKind::Normal => NameKind::Original,
        JobKind::Duplicate => NameKind::Resend,
        JobKind::Invalid | JobKind::Malformed => NameKind::Broken,
    };
    name_submissions(events.iter().filter_map(|event| match &event.kind {
        EventKind::JobSent { sub, kind, arrival, .. } | EventKind::JobUndeliverable { sub, kind, arrival, .. } => {
            Some((*sub, kind_of(kind), *arrival))
        }
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Originals keep their arrival number whatever records come between;
    /// re-sends count per original and broken frames count on their own.
    #[test]
    fn names_follow_arrivals_not_records() {
        let names = name_submissions([
            (0, NameKind::Original, Some(0)),
            (1, NameKind::Broken, None),
            (2, NameKind::Original, Some(1)),
            (3, NameKind::Resend, Some(1)),
            (5, NameKind::Resend, Some(1)),
            (4, NameKind::Original, Some(2)),
            (6, NameKind::Broken, None),
            (7, NameKind::Original, None),
        ]);
        let shown: Vec<String> = names.values().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "#0",
                "malformed 1",
                "#1",
                "#1 re-send 1",
                "#2",
                "#1 re-send 2",
                "malformed 2",
                "record 7"
            ]
        );
    }

    /// Every name parses back from its printed form and from a short form.
    #[test]
    fn names_parse_back() {
        for name in [
            SubName::Job(5),
            SubName::Resend { of: 5, nth: 2 },
            SubName::Malformed(3),
            SubName::Record(7),
        ] {
            assert_eq!(SubName::parse(&name.to_string()), Some(name));
        }
        assert_eq!(SubName::parse("5"), Some(SubName::Job(5)));
        assert_eq!(SubName::parse("5r2"), Some(SubName::Resend { of: 5, nth: 2 }));
        assert_eq!(SubName::parse("m3"), Some(SubName::Malformed(3)));
        assert_eq!(SubName::parse("9f3c2a1e"), None);
        assert_eq!(SubName::parse("r2"), None);
    }
}
