//! Reports for people and for CI: the human summary ([`human`]) and its
//! aligned run lines ([`line`]), the `--json` document ([`json`]), the
//! `--junit` XML ([`junit`]) and the `--html` page with its timeline
//! ([`html`]); what each rule judged, for both ([`judged`]; `--json` carries
//! the verdict's tallies as they are); the submissions behind an unmet
//! expectation ([`worst`]).

pub mod html;
pub mod human;
pub mod json;
pub mod judged;
pub mod junit;
pub mod line;
pub mod worst;
