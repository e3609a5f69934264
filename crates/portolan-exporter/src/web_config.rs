//! `--web-config FILE`: the YAML schema of the Prometheus exporter-toolkit, so operators
//! reuse the files they have (`tls_server_config`, `http_server_config`,
//! `basic_auth_users`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;

/// The largest web config file read.
pub const MAX_WEB_CONFIG_BYTES: u64 = 1 << 20;

/// A web config file that could not be used; every variant names the file and the key.
/// At most this many characters of a parser's message are kept.
pub const MESSAGE_CHARS: usize = 300;

fn cut(message: &str) -> String {
    match message.char_indices().nth(MESSAGE_CHARS) {
        Some((at, _)) => format!("{}... (cut)", &message[..at]),
        None => message.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read web config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The YAML parser's message, cut to [`MESSAGE_CHARS`] characters: it may quote the
    /// whole offending value.
    #[error("web config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("web config {path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// The headers the exporter-toolkit lets a config set.
const ALLOWED_HEADERS: [&str; 5] = [
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "x-xss-protection",
    "strict-transport-security",
];

/// A loaded, checked web config.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// The TLS server configuration, when `tls_server_config` has a certificate.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User name to bcrypt hash.
    pub users: BTreeMap<String, String>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The file it came from.
    pub path: Option<PathBuf>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .field("path", &self.path)
            .finish()
    }
}

impl WebConfig {
    /// Reads and checks `path`. Relative certificate paths are taken from the file's
    /// directory, as the exporter-toolkit does.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        use std::io::Read as _;
        let read = |source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        // Bounded: a FIFO or a device given by mistake costs at most this much.
        let mut buf = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_WEB_CONFIG_BYTES + 1).read_to_end(&mut buf))
            .map_err(read)?;
        if buf.len() as u64 > MAX_WEB_CONFIG_BYTES {
            return Err(read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than {MAX_WEB_CONFIG_BYTES} bytes"),
            )));
        }
        let text = String::from_utf8(buf).map_err(|_| {
            read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not valid UTF-8",
            ))
        })?;
        WebConfig::parse(&text, path)
    }

    /// Parses a config's text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<WebConfig, WebConfigError> {
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| WebConfigError::Parse {
                path: path.to_path_buf(),
                message: cut(&e.to_string()),
            })?
        };
        let invalid = |key: &str, message: String| WebConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));

        let mut users = BTreeMap::new();
        for (user, hash) in file.basic_auth_users.unwrap_or_default() {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(invalid(
                    &format!("basic_auth_users.{user}"),
                    "not a bcrypt hash (make one with `htpasswd -nBC 10 USER`)".into(),
                ));
            }
            users.insert(user, hash);
        }

        let mut headers = Vec::new();
        let http = file.http_server_config.unwrap_or_default();
        let _ = http.http2; // portolan serves HTTP/1.1; the key is accepted for reuse.
        for (name, value) in http.headers.unwrap_or_default() {
            let key = format!("http_server_config.headers.{name}");
            let hn = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| invalid(&key, format!("not a header name: {e}")))?;
            if !ALLOWED_HEADERS.contains(&hn.as_str()) {
                return Err(invalid(
                    &key,
                    format!(
                        "this header cannot be set (allowed: {})",
                        ALLOWED_HEADERS.join(", ")
                    ),
                ));
            }
            let hv = HeaderValue::from_str(&value)
                .map_err(|e| invalid(&key, format!("not a header value: {e}")))?;
            headers.push((hn, hv));
        }

        let tls = match file.tls_server_config {
            None => None,
            Some(t) => tls_config(t, base, &invalid)?,
        };
        Ok(WebConfig {
            tls,
            users,
            headers,
            path: Some(path.to_path_buf()),
        })
    }

    /// True when basic authentication is on.
    pub fn has_auth(&self) -> bool {
        !self.users.is_empty()
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn tls_config(
    t: TlsFile,
    base: &Path,
    invalid: &dyn Fn(&str, String) -> WebConfigError,
) -> Result<Option<Arc<rustls::ServerConfig>>, WebConfigError> {
    let key = "tls_server_config";
    if t.cipher_suites.as_ref().is_some_and(|v| !v.is_empty())
        || t.curve_preferences.as_ref().is_some_and(|v| !v.is_empty())
    {
        return Err(invalid(
            &format!("{key}.cipher_suites"),
            "portolan uses rustls' safe defaults; remove cipher_suites and curve_preferences"
                .into(),
        ));
    }
    let _ = t.prefer_server_cipher_suites;
    if t.client_allowed_sans
        .as_ref()
        .is_some_and(|v| !v.is_empty())
    {
        return Err(invalid(
            &format!("{key}.client_allowed_sans"),
            "not supported by portolan".into(),
        ));
    }
    let (cert, keyf) = match (t.cert_file, t.key_file) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (resolve(base, &c), resolve(base, &k)),
        (None, Some(_)) => {
            return Err(invalid(
                &format!("{key}.cert_file"),
                "missing (key_file is set)".into(),
            ));
        }
        (Some(_), None) => {
            return Err(invalid(
                &format!("{key}.key_file"),
                "missing (cert_file is set)".into(),
            ));
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            invalid(
                &format!("{key}.cert_file"),
                format!("{}: {e}", cert.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(invalid(
            &format!("{key}.cert_file"),
            format!("{}: no certificate in it", cert.display()),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(&keyf).map_err(|e| {
        invalid(
            &format!("{key}.key_file"),
            format!("{}: {e}", keyf.display()),
        )
    })?;

    let version = |field: &str, v: &Option<String>| -> Result<Option<u8>, WebConfigError> {
        match v.as_deref() {
            None | Some("") => Ok(None),
            Some("TLS10") => Ok(Some(10)),
            Some("TLS11") => Ok(Some(11)),
            Some("TLS12") => Ok(Some(12)),
            Some("TLS13") => Ok(Some(13)),
            Some(other) => Err(invalid(
                &format!("{key}.{field}"),
                format!("unknown TLS version '{other}' (expected TLS10, TLS11, TLS12 or TLS13)"),
            )),
        }
    };
    // rustls speaks TLS 1.2 and 1.3 only: an older minimum means 1.2.
    let min = version("min_version", &t.min_version)?.unwrap_or(12);
    let max = version("max_version", &t.max_version)?.unwrap_or(13);
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if min <= 12 && max >= 12 {
        versions.push(&rustls::version::TLS12);
    }
    if max >= 13 {
        versions.push(&rustls::version::TLS13);
    }
    if versions.is_empty() {
        return Err(invalid(
            &format!("{key}.max_version"),
            "no TLS version left between min_version and max_version that rustls speaks".into(),
        ));
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| invalid(key, e.to_string()))?;

    let auth_type = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let ca_key = format!("{key}.client_ca_file");
    let roots = || -> Result<rustls::RootCertStore, WebConfigError> {
        let Some(ca) = &t.client_ca_file else {
            return Err(invalid(
                &ca_key,
                format!("required by client_auth_type {auth_type}"),
            ));
        };
        let ca = resolve(base, ca);
        let mut store = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&ca)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| invalid(&ca_key, format!("{}: {e}", ca.display())))?;
        for c in certs {
            store
                .add(c)
                .map_err(|e| invalid(&ca_key, format!("{}: {e}", ca.display())))?;
        }
        if store.is_empty() {
            return Err(invalid(
                &ca_key,
                format!("{}: no certificate in it", ca.display()),
            ));
        }
        Ok(store)
    };
    let builder = match auth_type {
        "NoClientCert" => builder.with_no_client_auth(),
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let mut v = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots()?),
                Arc::clone(&provider),
            );
            if auth_type == "VerifyClientCertIfGiven" {
                v = v.allow_unauthenticated();
            }
            let v = v
                .build()
                .map_err(|e| invalid(&format!("{key}.client_auth_type"), e.to_string()))?;
            builder.with_client_cert_verifier(v)
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(invalid(
                &format!("{key}.client_auth_type"),
                format!(
                    "{auth_type} accepts unverified certificates, which portolan does not do; \
                     use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ),
            ));
        }
        other => {
            return Err(invalid(
                &format!("{key}.client_auth_type"),
                format!(
                    "unknown value '{other}' (expected NoClientCert, VerifyClientCertIfGiven \
                     or RequireAndVerifyClientCert)"
                ),
            ));
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, private)
        .map_err(|e| invalid(&format!("{key}.key_file"), e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebConfig, WebConfigError> {
        WebConfig::parse(text, Path::new("/etc/portolan/web.yml"))
    }

    #[test]
    fn empty_file_is_plain_http() {
        let c = parse("").unwrap();
        assert!(c.tls.is_none() && !c.has_auth());
    }

    #[test]
    fn a_parse_error_quoting_a_huge_value_is_cut() {
        // A wrong type quoted the whole value: up to the 1 MiB file in one message.
        let text = format!("tls_server_config: \"{}\"\n", "x".repeat(1 << 20));
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.len() < MESSAGE_CHARS + 200, "{} bytes", e.len());
        assert!(e.contains("web config") && e.contains("(cut)"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let e = parse("tls_server_config:\n  cert_fil: x\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/portolan/web.yml") && e.contains("cert_fil"),
            "{e}"
        );
        let e = parse("basic_auth_users:\n  alice: plain\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("basic_auth_users.alice") && e.contains("bcrypt"),
            "{e}"
        );
        let e = parse("http_server_config:\n  headers:\n    Content-Type: x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("headers.Content-Type"), "{e}");
        let e = parse("tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: k\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tls_server_config.cert_file") && e.contains("/nonexistent.pem"),
            "{e}"
        );
        let e = parse("tls_server_config:\n  key_file: k\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls_server_config.cert_file: missing"), "{e}");
    }

    #[test]
    fn users_and_headers_are_read() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let c = parse(&format!(
            "basic_auth_users:\n  alice: {hash}\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"
        ))
        .unwrap();
        assert!(c.has_auth());
        assert_eq!(c.headers[0].0.as_str(), "x-frame-options");
    }
}
