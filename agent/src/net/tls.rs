//! TLS on top of any [`BoxStream`], so `wss://` and `https://` work over
//! whatever byte stream the caller's [`crate::net::Connector`] provides.
//!
//! The crypto provider is `ring`, passed explicitly: rustls then never has to
//! guess a process-wide default, which would fail when several providers are
//! compiled in.

use std::io;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::net::endpoint::Endpoint;
use crate::net::{BoxStream, Connector};

/// A client config trusting the Mozilla root set (webpki-roots), with the
/// `ring` provider and rustls's safe default protocol versions.
///
/// ALPN offers only `http/1.1`: both HTTP requests to backends and the
/// WebSocket upgrade to the coordinator are HTTP/1.1.
pub fn client_config_webpki() -> Arc<rustls::ClientConfig> {
    let roots: rustls::RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        // Cannot fail: `ring` implements every protocol version rustls
        // considers a safe default. A failure here is a build defect, not
        // something input can cause.
        .expect("the ring provider supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Runs a TLS client handshake over `stream`, verifying the server's
/// certificate for `server_name` (a DNS name or an IP address), and returns
/// the encrypted stream.
pub async fn wrap(stream: BoxStream, server_name: &str, config: Arc<rustls::ClientConfig>) -> io::Result<BoxStream> {
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid TLS server name `{server_name}`: {e}"),
        )
    })?;
    let tls_stream = TlsConnector::from(config).connect(name, stream).await?;
    Ok(Box::new(tls_stream))
}

/// Connects to `ep` through `connector`, wrapping the stream in TLS (with
/// `ep.host` as the server name) when `ep.tls`.
pub async fn open(connector: &dyn Connector, ep: &Endpoint, tls: &Arc<rustls::ClientConfig>) -> io::Result<BoxStream> {
    let stream = connector.connect(&ep.host, ep.port).await?;
    if ep.tls {
        wrap(stream, &ep.host, Arc::clone(tls)).await
    } else {
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the webpki client config offers ALPN http/1.1 only.
    #[test]
    fn webpki_config_has_roots_and_http11_alpn() {
        let config = client_config_webpki();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    /// Proves an invalid TLS server name is an InvalidInput error, not a panic.
    #[tokio::test]
    async fn bad_server_name_is_an_input_error_not_a_panic() {
        let (client, _server) = tokio::io::duplex(64);
        let err = match wrap(Box::new(client), "not a name!", client_config_webpki()).await {
            Ok(_) => panic!("an invalid server name must be rejected"),
            Err(err) => err,
        };
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    /// Proves a handshake against a plaintext peer fails with an error.
    #[tokio::test]
    async fn handshake_against_a_non_tls_peer_fails_cleanly() {
        use tokio::io::AsyncWriteExt;
        let (client, mut server) = tokio::io::duplex(4096);
        let peer = tokio::spawn(async move {
            // Answer the ClientHello with plaintext HTTP, then hang up.
            let _ = server.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            drop(server);
        });
        let result = wrap(Box::new(client), "example.com", client_config_webpki()).await;
        assert!(result.is_err(), "a plaintext peer must fail the handshake");
        peer.await.expect("peer task");
    }
}
