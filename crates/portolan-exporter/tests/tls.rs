//! TLS from an exporter-toolkit web config, with certificates made for the test.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use portolan_exporter::WebConfig;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Pki {
    ca_pem: String,
    files: tempfile::TempDir,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(vec![]).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issue = |name: &str, usage| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        p.extended_key_usages = vec![usage];
        let c = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
        (c.pem(), key.serialize_pem())
    };
    let (srv, srv_key) = issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (cli, cli_key) = issue("prometheus", ExtendedKeyUsagePurpose::ClientAuth);
    let files = tempfile::tempdir().unwrap();
    let w = |n: &str, t: &str| std::fs::write(files.path().join(n), t).unwrap();
    w("ca.pem", &ca_cert.pem());
    w("server.pem", &srv);
    w("server.key", &srv_key);
    w("client.pem", &cli);
    w("client.key", &cli_key);
    Pki {
        ca_pem: ca_cert.pem(),
        files,
    }
}

fn web(dir: &Path, extra: &str) -> WebConfig {
    let path = dir.join("web.yml");
    // Relative paths are taken from the config's directory.
    std::fs::write(
        &path,
        format!("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS12\n{extra}"),
    )
    .unwrap();
    WebConfig::load(&path).unwrap()
}

fn client(pki: &Pki, with_cert: bool) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = if with_cert {
        let certs = CertificateDer::pem_file_iter(pki.files.path().join("client.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(pki.files.path().join("client.key")).unwrap();
        b.with_client_auth_cert(certs, key).unwrap()
    } else {
        b.with_no_client_auth()
    };
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// GET /metrics over TLS; the status, or the error that stopped it.
async fn tls_get(
    addr: std::net::SocketAddr,
    conn: &tokio_rustls::TlsConnector,
) -> Result<u16, String> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").unwrap();
        let mut s = conn.connect(name, tcp).await.map_err(|e| e.to_string())?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        Ok(parse_reply(&buf).status)
    })
    .await
    .expect("bounded")
}

#[tokio::test]
async fn scrape_over_tls_and_garbage_fails_the_handshake() {
    let pki = pki();
    let mut cfg = config();
    cfg.web = web(pki.files.path(), "");
    let srv = start(cfg, Arc::new(Fake::new(1))).await;
    assert_eq!(tls_get(srv.addr, &client(&pki, false)).await, Ok(200));

    for junk in [
        &b"\x16\x03\x01\x00\x05garbage-garbage"[..],
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(junk).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
            .await
            .expect("the server closes the connection");
        assert!(
            !buf.starts_with(b"HTTP/"),
            "no HTTP answer to a failed handshake"
        );
        assert!(!String::from_utf8_lossy(&buf).contains("portolan_"));
        // At most a TLS alert record.
        assert!(buf.is_empty() || buf[0] == 0x15, "{buf:?}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn client_certificates_are_required_when_configured() {
    let pki = pki();
    let mut cfg = config();
    cfg.web = web(
        pki.files.path(),
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n",
    );
    let srv = start(cfg, Arc::new(Fake::new(1))).await;
    assert!(tls_get(srv.addr, &client(&pki, false)).await.is_err());
    assert_eq!(tls_get(srv.addr, &client(&pki, true)).await, Ok(200));
    srv.stop().await;
}

#[test]
fn unverified_client_auth_types_are_refused() {
    let pki = pki();
    let path = pki.files.path().join("web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAnyClientCert\n",
    )
    .unwrap();
    let e = WebConfig::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("tls_server_config.client_auth_type") && e.contains("web.yml"),
        "{e}"
    );
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: ca.pem\n",
    )
    .unwrap();
    let e = WebConfig::load(&path).unwrap_err().to_string();
    assert!(e.contains("tls_server_config.key_file"), "{e}");
}
