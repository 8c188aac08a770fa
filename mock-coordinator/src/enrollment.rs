//! Single-use enrollment codes (`[coordinator.handshake]
//! enrollment_single_use`).
//!
//! A code is used once a connection that carried it got `auth_ok`. The
//! sessions' records already hold each connection's code and whether it got
//! `auth_ok`, so no other state is kept: the rule survives coordinator
//! restarts exactly as the records do.

use serde_json::{Map, Value};

use crate::coordinator::Coordinator;
use crate::inbound::str_field;

/// `Err` with the `auth_failed` reason when `response` carries an
/// `enrollment_code` that an earlier connection than `conn` enrolled with.
pub(crate) fn check_single_use(coord: &Coordinator, conn: u64, response: &Map<String, Value>) -> Result<(), String> {
    let Some(code) = str_field(response, "enrollment_code") else {
        return Ok(());
    };
    let used = coord.log().with(|s| {
        s.sessions
            .iter()
            .any(|r| r.conn != conn && r.auth_ok_us.is_some() && r.enrollment_code.as_deref() == Some(code))
    });
    if used {
        Err("enrollment code already used".to_owned())
    } else {
        Ok(())
    }
}
