//! The production TLS path over real loopback TCP: `net::tls::open` with
//! `TcpConnector` completes a rustls handshake against a server whose
//! certificate chains to the configured roots, and refuses one that does not.

use std::sync::Arc;

use provider_agent::net::TcpConnector;
use provider_agent::net::endpoint::Endpoint;
use provider_agent::net::tls;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Starts a TLS echo-once server for `localhost`; returns its port and cert.
async fn server() -> (u16, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut hello = [0u8; 5];
            if tls.read_exact(&mut hello).await.is_ok() && &hello == b"hello" {
                let _ = tls.write_all(b"world").await;
                let _ = tls.flush().await;
            }
        }
    });
    (port, cert)
}

/// A server certificate that chains to the configured root is accepted and
/// bytes flow both ways through the agent's TLS stream.
#[tokio::test]
async fn handshake_succeeds_with_a_trusted_root() {
    let (port, cert) = server().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let endpoint = Endpoint::parse(&format!("https://localhost:{port}/")).unwrap();
    let mut stream = tls::open(&TcpConnector, &endpoint, &Arc::new(config))
        .await
        .expect("handshake");
    stream.write_all(b"hello").await.unwrap();
    stream.flush().await.unwrap();
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"world");
}

/// The production configuration (webpki roots) refuses a self-signed server.
#[tokio::test]
async fn handshake_refuses_an_untrusted_certificate() {
    let (port, _cert) = server().await;
    let endpoint = Endpoint::parse(&format!("https://localhost:{port}/")).unwrap();
    let refused = tls::open(&TcpConnector, &endpoint, &tls::client_config_webpki()).await;
    assert!(refused.is_err(), "a self-signed certificate must not pass webpki roots");
}
