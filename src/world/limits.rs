//! Limits of the simulator itself. turmoil panics when a run reaches one of
//! its limits (a listener's backlog of `tcp_capacity` SYNs, a host's
//! ephemeral ports): the panic unwinds out of `Sim::step`, in the middle of
//! delivering a batch of segments, and the world cannot go on. That is the
//! harness failing to simulate, never the agent failing a rule, so it is
//! reported as a [`HarnessError`] (exit 4), naming the host, port, simulated
//! time, the limit and the scenario key that sets it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

/// The scenario key that sets turmoil's listen backlog (and per-connection
/// buffers): `[network] tcp_capacity`.
pub const TCP_CAPACITY_KEY: &str = "network.tcp_capacity";

/// A run the simulator could not carry to its end.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HarnessError {
    /// Simulated time of the step that failed, in µs (`None`: outside a step).
    pub at_us: Option<u64>,
    /// The host whose limit was reached, when known.
    pub host: Option<String>,
    /// The port whose limit was reached, when known.
    pub port: Option<u16>,
    /// The limit, in words: "listen backlog of 4 pending connections".
    pub limit: Option<String>,
    /// The scenario key that sets the limit, when one does.
    pub key: Option<String>,
    /// The simulator's own message.
    pub message: String,
}

impl HarnessError {
    /// A panic of the simulator, classified where its message is one of the
    /// limits we know. `host_of` names a simulated IP address.
    pub fn from_panic(
        message: String,
        at_us: Option<u64>,
        tcp_capacity: u64,
        host_of: impl Fn(IpAddr) -> Option<String>,
    ) -> Self {
        let mut error = HarnessError {
            at_us,
            host: None,
            port: None,
            limit: None,
            key: None,
            message,
        };
        if let Some(addr) = backlog_overflow(&error.message) {
            error.host = host_of(addr.ip()).or_else(|| Some(addr.ip().to_string()));
            error.port = Some(addr.port());
            error.limit = Some(format!("listen backlog of {tcp_capacity} pending connection(s)"));
            error.key = Some(TCP_CAPACITY_KEY.to_owned());
        } else if let Some(host) = ports_exhausted(&error.message) {
            error.host = Some(host.to_owned());
            error.limit = Some("the host's ephemeral ports".to_owned());
        }
        error
    }
}

/// `"{addr} server socket buffer full"`: more SYNs reached a listener in one
/// step than its backlog (`tcp_capacity`) holds (turmoil 0.7.2, host.rs).
fn backlog_overflow(message: &str) -> Option<SocketAddr> {
    let (before, _) = message.split_once(" server socket buffer full")?;
    before.rsplit(char::is_whitespace).next()?.parse().ok()
}

/// `"Host: '{name}' ports exhausted"` (turmoil 0.7.2, host.rs).
fn ports_exhausted(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("Host: '")?;
    let (host, rest) = rest.split_once('\'')?;
    rest.trim_start().starts_with("ports exhausted").then_some(host)
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("simulator limit reached")?;
        if let Some(at_us) = self.at_us {
            write!(f, " at {:.3} s", at_us as f64 / 1e6)?;
        }
        match (&self.host, self.port) {
            (Some(host), Some(port)) => write!(f, " on {host}:{port}")?,
            (Some(host), None) => write!(f, " on {host}")?,
            _ => {}
        }
        if let Some(limit) = &self.limit {
            write!(f, ": {limit}")?;
        }
        if let Some(key) = &self.key {
            write!(f, " (raise `{key}`)")?;
        }
        write!(f, "; the simulator said: {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backlog overflow names the host, port, limit and scenario key.
    #[test]
    fn backlog_overflow_is_classified() {
        let message = "panicked at turmoil-0.7.2/src/host.rs:509:25:\n192.168.0.3:9000 server socket buffer full";
        let error = HarnessError::from_panic(message.to_owned(), Some(1_234_000), 4, |ip| {
            (ip.to_string() == "192.168.0.3").then(|| "coordinator".to_owned())
        });
        assert_eq!(error.host.as_deref(), Some("coordinator"));
        assert_eq!(error.port, Some(9000));
        assert_eq!(error.key.as_deref(), Some(TCP_CAPACITY_KEY));
        let text = error.to_string();
        assert!(
            text.contains("at 1.234 s on coordinator:9000: listen backlog of 4"),
            "{text}"
        );
    }

    /// Exhausted ephemeral ports name the host; no scenario key sets them.
    #[test]
    fn exhausted_ports_are_classified() {
        let error = HarnessError::from_panic("Host: 'agent' ports exhausted".to_owned(), None, 4, |_| None);
        assert_eq!(error.host.as_deref(), Some("agent"));
        assert_eq!(error.key, None);
    }

    /// Any other panic keeps its message and claims nothing else.
    #[test]
    fn other_panics_keep_their_message() {
        let error = HarnessError::from_panic("duplicate segment 7".to_owned(), Some(5), 4, |_| None);
        assert_eq!((error.host, error.port, error.limit), (None, None, None));
        assert_eq!(error.message, "duplicate segment 7");
    }
}
