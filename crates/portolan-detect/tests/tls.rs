//! TLS on 127.0.0.1 with a fixture certificate: the handshake's facts are recorded, and
//! the protocol inside the tunnel is found, on a port that suggests neither.

mod common;

use common::{TlsServer, opts};
use portolan_detect::Detector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_on_an_odd_port_with_certificate_facts() {
    let addr = TlsServer {
        alpn: &["http/1.1"],
        wait_for_request: true,
        ..TlsServer::default()
    }
    .start(b"HTTP/1.1 200 OK\r\nServer: lighttpd/1.4.69\r\nContent-Length: 0\r\n\r\n")
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
    let addr = TlsServer::default()
        .start(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.\r\n")
        .await;
    let d = Detector::default().detect_tcp(addr, &opts()).await;
    assert_eq!(d.protocol.as_deref(), Some("imap"), "{d:?}");
    assert_eq!(d.product.as_deref(), Some("Dovecot imapd"));
    assert!(d.tls.is_some() && !d.cleartext);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_nothing_recognisable_inside() {
    let addr = TlsServer {
        wait_for_request: true,
        ..TlsServer::default()
    }
    .start(b"\x00\x01\x02binary")
    .await;
    let d = Detector::default().detect_tcp(addr, &opts()).await;
    assert_eq!(d.protocol.as_deref(), Some("tls"), "{d:?}");
    assert!(d.tls.is_some());
    assert_eq!(d.nmap_service()[0], ("name", "ssl".to_string()));
}
