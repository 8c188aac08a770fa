//! The handshake section: how `auth_challenge` / `auth_response` is answered.

use serde::{Deserialize, Serialize};

/// Default time the coordinator waits for the agent's `auth_response`.
pub const HANDSHAKE_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Default nonce length in bytes.
pub const NONCE_BYTES_DEFAULT: u32 = 32;

/// Scripted handshake behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeMode {
    /// Challenge, verify, `auth_ok`.
    #[default]
    Normal,
    /// Challenge, then `auth_failed` whatever the signature, then close.
    Reject,
    /// Challenge, verify, wait `delay_ms`, then `auth_ok`.
    Late,
    /// Challenge, verify, `auth_ok`, then close at once.
    CloseAfterAuth,
    /// Never send the challenge; keep the connection open (recording
    /// anything the agent sends) until the agent closes it or `timeout_ms`.
    NoChallenge,
}

/// The `[coordinator.handshake]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Handshake {
    pub mode: HandshakeMode,
    /// `late`: how long `auth_ok` is held back.
    pub delay_ms: u64,
    /// Connection numbers (1-based, counted across coordinator restarts)
    /// that get `mode`; the others get `normal`. Absent: every connection.
    pub sessions: Option<Vec<u64>>,
    /// How long the coordinator waits for `auth_response` before closing.
    pub timeout_ms: u64,
    /// Length of the random nonce, in bytes (1..=1024).
    pub nonce_bytes: u32,
    /// Enrollment codes are single-use, as on a production coordinator: an
    /// `auth_response` carrying an `enrollment_code` that an earlier
    /// connection already enrolled with (it got `auth_ok`) is refused with
    /// `auth_failed`. An agent that forgets its `provider_id` and re-sends
    /// its code after a restart is then locked out.
    pub enrollment_single_use: bool,
}

impl Default for Handshake {
    fn default() -> Self {
        Handshake {
            mode: HandshakeMode::Normal,
            delay_ms: 0,
            sessions: None,
            timeout_ms: HANDSHAKE_TIMEOUT_MS_DEFAULT,
            nonce_bytes: NONCE_BYTES_DEFAULT,
            enrollment_single_use: false,
        }
    }
}

impl HandshakeMode {
    /// The mode's name as written in the script.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeMode::Normal => "normal",
            HandshakeMode::Reject => "reject",
            HandshakeMode::Late => "late",
            HandshakeMode::CloseAfterAuth => "close_after_auth",
            HandshakeMode::NoChallenge => "no_challenge",
        }
    }
}

impl Handshake {
    /// The mode that connection number `conn` gets.
    pub fn mode_for(&self, conn: u64) -> HandshakeMode {
        match &self.sessions {
            Some(list) if !list.contains(&conn) => HandshakeMode::Normal,
            _ => self.mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sessions` limits misbehaviour to the listed connections.
    #[test]
    fn sessions_select_connections() {
        let h = Handshake {
            mode: HandshakeMode::Reject,
            sessions: Some(vec![1, 2]),
            ..Handshake::default()
        };
        assert_eq!(h.mode_for(1), HandshakeMode::Reject);
        assert_eq!(h.mode_for(3), HandshakeMode::Normal);
        let all = Handshake {
            mode: HandshakeMode::Reject,
            ..Handshake::default()
        };
        assert_eq!(all.mode_for(7), HandshakeMode::Reject);
    }
}
