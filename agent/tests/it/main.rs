//! Integration tests of the provider agent, one module per topic.

mod coord;
mod executor;
mod session;
mod support;
