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

use super::panics::Captured;
use crate::scenario::model::NetworkSection;

/// The scenario key that sets turmoil's listen backlog (and per-connection
/// buffers): `[network] tcp_capacity`.
pub const TCP_CAPACITY_KEY: &str = "network.tcp_capacity";

/// The scenario key that sets each host's ephemeral ports:
/// `[network] ephemeral_ports`.
pub const EPHEMERAL_PORTS_KEY: &str = "network.ephemeral_ports";

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

/// The limits a scenario sets on the simulator, to name the one reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimLimits {
    /// `[network] tcp_capacity`: every listener's backlog.
    pub tcp_capacity: u64,
    /// `[network] ephemeral_ports`: each host's outbound connections.
    pub ephemeral_ports: u16,
}

impl SimLimits {
    /// The limits `network` sets.
    pub fn of(network: &NetworkSection) -> Self {
        Self {
            tcp_capacity: network.tcp_capacity,
            ephemeral_ports: network.ephemeral_ports,
        }
    }
}

impl HarnessError {
    /// A panic of the simulator, classified where its message is one of the
    /// limits we know. `host_of` names a simulated IP address.
    pub fn from_panic(
        message: String,
        at_us: Option<u64>,
        limits: SimLimits,
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
            error.limit = Some(format!(
                "listen backlog of {} pending connection(s)",
                limits.tcp_capacity
            ));
            error.key = Some(TCP_CAPACITY_KEY.to_owned());
        } else if let Some(host) = ports_exhausted(&error.message) {
            error.host = Some(host.to_owned());
            error.limit = Some(format!(
                "{} ephemeral port(s) of the host, all in use",
                limits.ephemeral_ports
            ));
            error.key = Some(EPHEMERAL_PORTS_KEY.to_owned());
        }
        error
    }

    /// The panic that unwound out of a step (`payload`), read together with
    /// the panics captured during that step. A limit turmoil reaches inside
    /// a host's software (its ephemeral ports) panics there first; tokio then
    /// shuts that host's runtime down with a panic of its own, and only the
    /// latter unwinds. So a captured panic naming a limit wins; otherwise the
    /// error is a host's own panic, attributed to the host it happened on
    /// (`limit` stays `None`: the run is the agent's or a mock's failure).
    pub fn from_step_panic(
        payload: String,
        captured: &[Captured],
        at_us: Option<u64>,
        limits: SimLimits,
        host_of: impl Fn(IpAddr) -> Option<String>,
    ) -> Self {
        for panic in captured {
            let error = Self::from_panic(panic.message.clone(), at_us, limits, &host_of);
            if error.limit.is_some() {
                return error;
            }
        }
        let mut error = Self::from_panic(payload, at_us, limits, &host_of);
        if error.limit.is_some() {
            return error;
        }
        // The first panic is the cause; tokio's shutdown panic follows it.
        if let Some(first) = captured.first() {
            error.host = first.host.clone();
            error.message = first.message.clone();
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

    /// A backlog of 4 and 2 ephemeral ports.
    const LIMITS: SimLimits = SimLimits {
        tcp_capacity: 4,
        ephemeral_ports: 2,
    };

    /// tokio's panic when a host's runtime shuts down on a task's panic.
    const SHUTDOWN: &str = "a spawned task panicked and the LocalSet is configured to shutdown on unhandled panic";

    /// A backlog overflow names the host, port, limit and scenario key.
    #[test]
    fn backlog_overflow_is_classified() {
        let message = "panicked at turmoil-0.7.2/src/host.rs:509:25:\n192.168.0.3:9000 server socket buffer full";
        let error = HarnessError::from_panic(message.to_owned(), Some(1_234_000), LIMITS, |ip| {
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

    /// Exhausted ephemeral ports name the host, the limit and its key.
    #[test]
    fn exhausted_ports_are_classified() {
        let error = HarnessError::from_panic("Host: 'agent' ports exhausted".to_owned(), None, LIMITS, |_| None);
        assert_eq!(error.host.as_deref(), Some("agent"));
        assert_eq!(error.key.as_deref(), Some(EPHEMERAL_PORTS_KEY));
        assert_eq!(
            error.limit.as_deref(),
            Some("2 ephemeral port(s) of the host, all in use")
        );
    }

    /// Any other panic keeps its message and claims nothing else.
    #[test]
    fn other_panics_keep_their_message() {
        let error = HarnessError::from_panic("duplicate segment 7".to_owned(), Some(5), LIMITS, |_| None);
        assert_eq!((error.host, error.port, error.limit), (None, None, None));
        assert_eq!(error.message, "duplicate segment 7");
    }

    /// A limit reached inside a host's software is found among the captured
    /// panics, behind tokio's shutdown panic that unwound.
    #[test]
    fn a_limit_inside_a_host_is_found_behind_the_shutdown_panic() {
        let captured = [
            Captured {
                host: Some("agent".to_owned()),
                message: "panicked at turmoil-0.7.2/src/host.rs:116:9:\nHost: 'agent' ports exhausted".to_owned(),
            },
            Captured {
                host: Some("agent".to_owned()),
                message: SHUTDOWN.to_owned(),
            },
        ];
        let error = HarnessError::from_step_panic(SHUTDOWN.to_owned(), &captured, Some(3_000), LIMITS, |_| None);
        assert_eq!(error.key.as_deref(), Some(EPHEMERAL_PORTS_KEY));
        assert_eq!(error.host.as_deref(), Some("agent"));
        assert!(error.message.contains("ports exhausted"), "{}", error.message);
    }

    /// A host's own panic is no limit: it keeps the first panic's message
    /// and names the host it happened on, not tokio's shutdown message.
    #[test]
    fn a_host_panic_names_its_host_and_cause() {
        let captured = [
            Captured {
                host: Some("vllm-1".to_owned()),
                message: "panicked at mock-backends/src/x.rs:1:1:\nboom".to_owned(),
            },
            Captured {
                host: Some("vllm-1".to_owned()),
                message: SHUTDOWN.to_owned(),
            },
        ];
        let error = HarnessError::from_step_panic(SHUTDOWN.to_owned(), &captured, Some(7), LIMITS, |_| None);
        assert_eq!((error.limit, error.key), (None, None));
        assert_eq!(error.host.as_deref(), Some("vllm-1"));
        assert!(error.message.ends_with("boom"), "{}", error.message);
    }
}
