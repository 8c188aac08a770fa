//! Reports for people and for CI: the human summary ([`human`]), the
//! `--json` document ([`json`]), the `--junit` XML ([`junit`]) and the
//! `--html` page with its timeline ([`html`]).

pub mod html;
pub mod human;
pub mod json;
pub mod junit;
