//! What the TLS tests share: a TLS server on 127.0.0.1 with the fixture certificate.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portolan_detect::Options;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CERT: &[u8] = include_bytes!("../data/cert.pem");
const KEY: &[u8] = include_bytes!("../data/key.pem");

/// Whether the server asks the client for a certificate, whose CA is then the fixture
/// certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientCert {
    #[default]
    NotAsked,
    /// Asked for, and served without.
    Optional,
    /// Asked for, and the handshake fails without (as dockerd --tlsverify does).
    Required,
}

/// A TLS server's settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsServer<'a> {
    pub alpn: &'a [&'a str],
    pub client_cert: ClientCert,
    /// Reads what the client sends before replying.
    pub wait_for_request: bool,
}

impl TlsServer<'_> {
    /// Starts the server; it answers each of up to 32 connections with `reply`.
    pub async fn start(self, reply: &'static [u8]) -> SocketAddr {
        let cert = CertificateDer::from_pem_slice(CERT).unwrap();
        let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if self.client_cert == ClientCert::NotAsked {
            builder.with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(cert.clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if self.client_cert == ClientCert::Required {
                verifier.build().unwrap()
            } else {
                verifier.allow_unauthenticated().build().unwrap()
            };
            builder.with_client_cert_verifier(verifier)
        };
        let mut cfg = builder.with_single_cert(vec![cert], key).unwrap();
        cfg.alpn_protocols = self.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let wait_for_request = self.wait_for_request;
        tokio::spawn(async move {
            for _ in 0..32 {
                let Ok((tcp, _)) = l.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // Without a client certificate, a server that requires one fails here
                    // and sends its alert.
                    let Ok(Ok(mut s)) =
                        tokio::time::timeout(Duration::from_secs(2), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    if wait_for_request {
                        let mut buf = [0u8; 1024];
                        let _ =
                            tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
                    }
                    let _ = s.write_all(reply).await;
                    let _ = s.flush().await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                });
            }
        });
        addr
    }
}

/// The detector's options for a server on loopback.
pub fn opts() -> Options {
    Options {
        timeout: Duration::from_millis(800),
        total: Duration::from_secs(4),
        ..Options::default()
    }
}
