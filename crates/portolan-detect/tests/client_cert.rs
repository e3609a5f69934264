//! TLS servers on 127.0.0.1 that ask for a client certificate: one that requires it
//! (as dockerd --tlsverify does) refused the anonymous client; one that only asks, and
//! serves without, did not.

mod common;

use common::{ClientCert, TlsServer, opts};
use portolan_detect::Detector;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nServer: lighttpd/1.4.69\r\nContent-Length: 0\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_required_is_access_refused() {
    let addr = TlsServer {
        client_cert: ClientCert::Required,
        wait_for_request: true,
        ..TlsServer::default()
    }
    .start(OK)
    .await;
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
    let addr = TlsServer {
        client_cert: ClientCert::Optional,
        wait_for_request: true,
        ..TlsServer::default()
    }
    .start(OK)
    .await;
    let d = Detector::default().detect_tcp(addr, &opts()).await;
    assert_eq!(d.protocol.as_deref(), Some("http"), "{d:?}");
    assert_eq!(d.product.as_deref(), Some("lighttpd"), "{d:?}");
    assert_eq!(d.unauthenticated, None, "{d:?}");
}
