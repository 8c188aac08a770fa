//! Scenario files: the schema ([`model`]), reading and error locations
//! ([`load`], [`locate`], [`error`]), paths given ([`files`]), cross-checks
//! ([`validate`]) and the agent configuration a scenario implies
//! ([`agent`]), the values a swarm scenario draws per run seed ([`swarm`]),
//! and the settings of live runs against an agent process ([`live`]);
//! [`warn`]: what loads but may never happen.

pub mod agent;
pub mod error;
pub mod files;
pub mod live;
pub mod load;
pub mod locate;
pub mod model;
pub mod swarm;
pub mod validate;
pub mod warn;

pub use error::ScenarioError;
pub use load::{SCENARIO_BYTES_MAX, load, parse};
pub use model::Scenario;
