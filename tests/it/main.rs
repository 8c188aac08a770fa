//! Integration tests of simctl, one binary with a module per topic.

mod cli;
mod determinism;
mod library;
mod live;
mod oracle;
mod scenario;
mod support;
mod world;
