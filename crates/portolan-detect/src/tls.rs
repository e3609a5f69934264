//! TLS as a client that accepts any certificate (we describe servers, we don't trust
//! them): the handshake, then what it tells us.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::TlsInfo;

#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Accepted as for TLS 1.2: nothing is checked.
        self.verify_tls12_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client configuration offering `alpn`.
pub fn config(alpn: &[&str]) -> Result<Arc<ClientConfig>, rustls::Error> {
    config_noting(alpn, Arc::new(ClientAuthAsked::default()))
}

/// A client configuration offering `alpn` and no client certificate, that notes in
/// `asked` whether a server asked for one.
pub fn config_noting(
    alpn: &[&str],
    asked: Arc<ClientAuthAsked>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_client_cert_resolver(asked);
    cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// Whether a server asked for a client certificate (a CertificateRequest), and the
/// certificate authorities it named; the client sends none.
#[derive(Debug, Default)]
pub struct ClientAuthAsked(std::sync::Mutex<Option<Vec<String>>>);

impl ClientAuthAsked {
    /// `None`: not asked; `Some(names)`: asked, naming these CAs (at most 4).
    pub fn asked(&self) -> Option<Vec<String>> {
        self.0.lock().ok()?.clone()
    }
}

impl rustls::client::ResolvesClientCert for ClientAuthAsked {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let names = root_hint_subjects
            .iter()
            .take(4)
            .filter_map(|dn| {
                let (_, name) = <x509_parser::x509::X509Name<'_> as x509_parser::prelude::FromDer<'_, _>>::from_der(dn).ok()?;
                Some(crate::printable(name.to_string().as_bytes(), 80))
            })
            .collect();
        if let Ok(mut a) = self.0.lock() {
            a.get_or_insert(names);
        }
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// A stream that keeps the first bytes it reads, so that when a handshake fails we can
/// still look at what the peer said instead.
pub struct Recorder {
    inner: TcpStream,
    pub seen: Vec<u8>,
    limit: usize,
}

impl Recorder {
    pub fn new(inner: TcpStream, limit: usize) -> Recorder {
        Recorder {
            inner,
            seen: Vec::new(),
            limit,
        }
    }
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        // Never read more than the limit in total: a peer that floods us during the
        // handshake stops being read.
        let room = this.limit.saturating_sub(this.seen.len());
        if room == 0 {
            return Poll::Ready(Err(io::Error::other("read limit reached")));
        }
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &res {
            let new = &buf.filled()[before..];
            let keep = new.len().min(room);
            this.seen.extend_from_slice(&new[..keep]);
        }
        res
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A handshake's result: the stream, or the error and the bytes the peer sent.
pub async fn handshake(
    tcp: TcpStream,
    name: ServerName<'static>,
    cfg: Arc<ClientConfig>,
    limit: usize,
) -> Result<(TlsStream<Recorder>, TlsInfo), (io::Error, Vec<u8>)> {
    let connector = TlsConnector::from(cfg);
    // The recorder's limit bounds the handshake; afterwards the Conn's cap takes over.
    let rec = Recorder::new(tcp, limit);
    let stream = match connector
        .connect_with(name, rec, |_| {})
        .into_fallible()
        .await
    {
        Ok(s) => s,
        Err((e, rec)) => return Err((e, rec.seen)),
    };
    let info = info(stream.get_ref().1);
    Ok((stream, info))
}

pub fn info(c: &rustls::ClientConnection) -> TlsInfo {
    let version = c.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    });
    let cipher = c
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    let alpn = c
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let mut t = TlsInfo {
        version,
        cipher,
        subject: None,
        issuer: None,
        not_after: None,
        alpn,
    };
    if let Some(cert) = c.peer_certificates().and_then(|c| c.first()) {
        if let Ok((_, x)) = x509_parser::parse_x509_certificate(cert.as_ref()) {
            t.subject = Some(x.subject().to_string());
            t.issuer = Some(x.issuer().to_string());
            t.not_after = Some(rfc3339(x.validity().not_after.timestamp()));
        }
    }
    t
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (the registry's date arithmetic).
pub use portolan_registry::date::rfc3339;

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(2_000_000_000), "2033-05-18T03:33:20Z");
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
