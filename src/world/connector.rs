//! The agent's network inside the simulation: turmoil TCP streams, with the
//! client side of a kernel's SYN handling in front of them (see
//! [`super::backlog`]): a SYN that would overflow the listener's backlog is
//! dropped, recorded, and sent again after a back-off, as Linux does.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use provider_agent::net::{BoxStream, Connector};
use tokio::time::{Duration, sleep};

use super::backlog::SynLedger;
use super::clock::sim_now_us;
use super::hosts::HostEvents;
use crate::trace::{Event, EventKind};

/// First SYN retransmission timeout (Linux: 1 s), doubled on every retry.
pub const SYN_RETRANSMIT_INITIAL_MS: u64 = 1_000;
/// SYN retransmissions before the attempt fails with `TimedOut` (Linux's
/// `tcp_syn_retries` default: 6, about 127 s in all).
pub const SYN_RETRIES_MAX: u32 = 6;

/// Opens turmoil TCP connections to simulated hosts by name. Concurrency:
/// shares the world's [`SynLedger`] and [`HostEvents`] with the harness.
#[derive(Clone, Debug)]
pub struct TurmoilConnector {
    ledger: SynLedger,
    events: HostEvents,
    /// The simulated hosts' addresses by name, resolved when the world was
    /// built (resolving an unknown name in turmoil would register it).
    addrs: Arc<BTreeMap<String, IpAddr>>,
}

impl TurmoilConnector {
    pub fn new(ledger: SynLedger, events: HostEvents, addrs: Arc<BTreeMap<String, IpAddr>>) -> Self {
        Self { ledger, events, addrs }
    }

    fn record_dropped(&self, host: &str, port: u16) {
        let event = Event::new(
            sim_now_us(),
            EventKind::SynDropped {
                host: host.to_owned(),
                port,
            },
        );
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }
}

#[async_trait]
impl Connector for TurmoilConnector {
    async fn connect(&self, host: &str, port: u16) -> io::Result<BoxStream> {
        let Some(&ip) = self.addrs.get(host) else {
            // Not a host of this world: turmoil reports the unknown name.
            let stream = turmoil::net::TcpStream::connect((host, port)).await?;
            return Ok(Box::new(stream));
        };
        let dst = SocketAddr::new(ip, port);
        let mut retransmit_ms = SYN_RETRANSMIT_INITIAL_MS;
        for _ in 0..=SYN_RETRIES_MAX {
            if self.ledger.try_reserve(dst) {
                let stream = turmoil::net::TcpStream::connect(dst).await?;
                return Ok(Box::new(stream));
            }
            self.record_dropped(host, port);
            sleep(Duration::from_millis(retransmit_ms)).await;
            retransmit_ms *= 2;
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{host}:{port}: no SYN got into the listen backlog after {SYN_RETRIES_MAX} retransmissions"),
        ))
    }
}
