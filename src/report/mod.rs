//! Reports for people and for CI: the human summary ([`human`]), the
//! `--json` document ([`json`]) and the `--junit` XML ([`junit`]); what
//! each rule judged, for both ([`judged`]; `--json` carries the verdict's
//! tallies as they are).

pub mod human;
pub mod json;
pub mod judged;
pub mod junit;
