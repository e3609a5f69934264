//! TLS on 127.0.0.1 with a fixture certificate: the handshake's facts are recorded, and
//! the protocol inside the tunnel is found, on a port that suggests neither.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portolan_detect::{Detector, Options};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CERT: &[u8] = include_bytes!("data/cert.pem");
const KEY: &[u8] = include_bytes!("data/key.pem");

/// A TLS server that answers each connection with `reply` (after reading what the
/// client sends, when `wait_for_request`).
async fn tls_server(alpn: &[&str], reply: &'static [u8], wait_for_request: bool) -> SocketAddr {
    let certs = vec![CertificateDer::from_pem_slice(CERT).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
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
                let Ok(Ok(mut s)) =
                    tokio::time::timeout(Duration::from_secs(2), acceptor.accept(tcp)).await
                else {
                    return;
                };
                if wait_for_request {
                    let mut buf = [0u8; 1024];
                    let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
                }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_on_an_odd_port_with_certificate_facts() {
    let addr = tls_server(
        &["http/1.1"],
        b"HTTP/1.1 200 OK\r\nServer: lighttpd/1.4.69\r\nContent-Length: 0\r\n\r\n",
        true,
    )
    .await;
    let d = Detector::default().detect_tcp(addr, &opts()).await;
    assert_eq!(d.protocol.as_deref(), Some("http"), "{d:?}");
    assert_eq!(d.product.as_deref(), Some("lighttpd"));
    assert_eq!(d.version.as_deref(), Some("1.4.69"));
    assert!(!d.cleartext && !d.starttls);
    let t = d.tls.expect("TLS facts");
    assert_eq!(t.version.as_deref(), Some("TLSv1.3"));
    assert!(
        t.cipher.as_deref().is_some_and(|c| c.starts_with("TLS13_")),
        "{t:?}"
    );
    assert_eq!(
        t.subject.as_deref(),
        Some("CN=fixture.portolan.test, O=portolan tests")
    );
    assert_eq!(t.issuer, t.subject);
    assert!(
        t.not_after
            .as_deref()
            .is_some_and(|n| n.starts_with("2126-11-")),
        "{t:?}"
    );
    assert_eq!(t.alpn.as_deref(), Some("http/1.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaps_greeting_inside_tls() {
    let addr = tls_server(
        &[],
        b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.\r\n",
        false,
    )
    .await;
    let d = Detector::default().detect_tcp(addr, &opts()).await;
    assert_eq!(d.protocol.as_deref(), Some("imap"), "{d:?}");
    assert_eq!(d.product.as_deref(), Some("Dovecot imapd"));
    assert!(d.tls.is_some() && !d.cleartext);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_nothing_recognisable_inside() {
    let addr = tls_server(&[], b"\x00\x01\x02binary", true).await;
    let d = Detector::default().detect_tcp(addr, &opts()).await;
    assert_eq!(d.protocol.as_deref(), Some("tls"), "{d:?}");
    assert!(d.tls.is_some());
    assert_eq!(d.nmap_service()[0], ("name", "ssl".to_string()));
}
