//! Integration tests of simctl, one binary with a module per topic.

mod backlog;
mod ci;
mod cli;
mod determinism;
mod explain;
mod harness_error;
mod html;
mod library;
mod live;
mod names;
mod oracle;
mod pty;
mod scenario;
mod support;
mod world;
