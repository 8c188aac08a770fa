//! The agent's network inside the simulation: plain turmoil TCP streams.

use std::io;

use async_trait::async_trait;
use provider_agent::net::{BoxStream, Connector};

/// Opens turmoil TCP connections to simulated hosts by name.
#[derive(Clone, Copy, Debug, Default)]
pub struct TurmoilConnector;

#[async_trait]
impl Connector for TurmoilConnector {
    async fn connect(&self, host: &str, port: u16) -> io::Result<BoxStream> {
        let stream = turmoil::net::TcpStream::connect((host, port)).await?;
        Ok(Box::new(stream))
    }
}
