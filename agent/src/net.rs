//! The network the agent is given by its caller.
//!
//! The agent never opens a socket itself: it asks a [`Connector`] for a byte
//! stream to `host:port` and layers TLS (for `wss://` and `https://`) and the
//! protocols on top. Production passes [`TcpConnector`]; the simulation
//! passes a connector over `turmoil::net`. There is no `cfg` switch.

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

pub mod endpoint;
pub mod tls;

/// A bidirectional byte stream (TCP, TLS over TCP, or a simulated socket).
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> ByteStream for T {}

/// A boxed [`ByteStream`].
pub type BoxStream = Box<dyn ByteStream>;

/// Opens plain byte streams. TLS is the agent's business, not the connector's.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    async fn connect(&self, host: &str, port: u16) -> io::Result<BoxStream>;
}

/// Shared connector handle.
pub type SharedConnector = Arc<dyn Connector>;

/// Production connector: tokio TCP with `TCP_NODELAY` (the agent batches its
/// own writes, so Nagle would only add latency).
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

#[async_trait]
impl Connector for TcpConnector {
    async fn connect(&self, host: &str, port: u16) -> io::Result<BoxStream> {
        let stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(Box::new(stream))
    }
}
