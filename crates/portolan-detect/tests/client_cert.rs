//! TLS servers on 127.0.0.1 that ask for a client certificate: one that requires it
//! (as dockerd --tlsverify does) refused the anonymous client; one that only asks, and
//! serves without, did not.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portolan_detect::{Detector, Options};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CERT: &[u8] = include_bytes!("data/cert.pem");
const KEY: &[u8] = include_bytes!("data/key.pem");

/// A TLS server whose client CA is the fixture certificate; it answers an HTTP request
/// with `reply`.
async fn server(required: bool, reply: &'static [u8]) -> SocketAddr {
    let cert = CertificateDer::from_pem_slice(CERT).unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let verifier = if required {
        builder.build().unwrap()
    } else {
        builder.allow_unauthenticated().build().unwrap()
    };
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
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
                let mut buf = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
                let _ = s.write_all(reply).await;
                let _ = s.flush().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            });
        }
    });
    addr
}

fn opts() -> Options {
    Options {
        timeout: Duration::from_millis(800),
        total: Duration::from_secs(4),
        ..Options::default()
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nServer: lighttpd/1.4.69\r\nContent-Length: 0\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_required_is_access_refused() {
    let addr = server(true, OK).await;
    let d = Detector::default().detect_tcp(addr, &opts()).await;
    assert_eq!(d.protocol.as_deref(), Some("tls"), "{d:?}");
    assert_eq!(d.product, None, "{d:?}");
    assert_eq!(d.unauthenticated, Some(false), "{d:?}");
    assert!(
        d.evidence.contains(
            "asks for a client certificate (CAs: CN=fixture.portolan.test, O=portolan tests)"
        ) && d.evidence.contains("closes with alert CertificateRequired"),
        "{}",
        d.evidence
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_asked_but_optional_is_no_refusal() {
    let addr = server(false, OK).await;
    let d = Detector::default().detect_tcp(addr, &opts()).await;
    assert_eq!(d.protocol.as_deref(), Some("http"), "{d:?}");
    assert_eq!(d.product.as_deref(), Some("lighttpd"), "{d:?}");
    assert_eq!(d.unauthenticated, None, "{d:?}");
}
