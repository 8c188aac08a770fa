//! Integration tests of mock-backends: real loopback TCP (and in-memory
//! pipes where paused time must be exact), with hyper's client as the
//! independent HTTP client.

mod binary;
mod by_hand;
mod capacity;
mod client_gone;
mod faults;
mod routes;
mod streaming;
mod support;
mod timing;
mod turmoil_sim;
