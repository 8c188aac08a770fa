//! Integration tests of the mock coordinator, one binary with a module per
//! topic. Every test drives the coordinator with a real tokio-tungstenite
//! client (`client`) over loopback TCP or an in-memory duplex pipe; tests
//! about timing run in paused tokio time, where the pipe keeps them exact.

mod arrivals;
mod backpressure;
mod binary;
mod by_hand;
mod cancels;
mod checks;
mod client;
mod digest;
mod faults;
mod handshake;
mod races;
mod record;
mod resends;
mod routing;
mod start;
