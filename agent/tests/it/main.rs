//! Integration tests of `provider-agent`: the OpenAI-compatible adapter over
//! real loopback HTTP (wiremock, and hand-written TCP servers where the test
//! needs control of every byte and of the connection), discovery against
//! live servers, and the binary's command line.

mod adapter;
mod board;
mod cli;
mod coord;
mod e2e;
mod executor;
mod executor_stress;
mod fixtures;
mod hardening;
mod loopback;
mod process;
mod run;
mod session;
mod stream;
mod support;
mod tls;
