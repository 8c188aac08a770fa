//! Reports for people and for CI: the human summary ([`human`]), the
//! `--json` document ([`json`]) and the `--junit` XML ([`junit`]).

pub mod human;
pub mod json;
pub mod junit;
