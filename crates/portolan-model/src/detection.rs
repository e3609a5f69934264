//! What really answers on a port.

use serde::{Deserialize, Serialize};

/// What a TLS handshake told us.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: Option<String>,
    /// The IANA name of the cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: Option<String>,
    /// The certificate's subject and issuer as RFC 4514 strings.
    pub subject: Option<String>,
    pub issuer: Option<String>,
    /// The certificate's expiry, RFC 3339 in UTC.
    pub not_after: Option<String>,
    /// The application protocol the server chose (ALPN), e.g. `h2`.
    pub alpn: Option<String>,
}

/// What answers on a port. Every string in it came from the peer: escape it for the
/// medium it goes into.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Detection {
    /// The application protocol (`ssh`, `http`, `smtp`, `dns`...), or `None` when nothing
    /// was recognised. With implicit TLS this is the protocol inside it (`http` on 443);
    /// `tls` when the protocol inside was not recognised.
    pub protocol: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    /// What the TLS handshake told us: for a service that speaks TLS from the first
    /// byte (implicit TLS, then `starttls` is false), or after taking the upgrade it
    /// offers (`starttls` true, and `cleartext` stays true).
    pub tls: Option<TlsInfo>,
    /// True when the protocol, as offered, carries its data in clear text.
    pub cleartext: bool,
    /// True when the service offers an upgrade to TLS (STARTTLS, STLS, AUTH TLS...).
    pub starttls: bool,
    /// A short, printable excerpt of what the peer said (or why nothing was found).
    pub evidence: String,
    /// Whether the service answered without authentication (`Some(true)`: it served
    /// data to an anonymous client; `Some(false)`: it asked for credentials); `None`
    /// when the probe cannot tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unauthenticated: Option<bool>,
}

impl Detection {
    /// Nothing recognised, with what was heard (or why nothing was).
    pub fn nothing(evidence: impl Into<String>) -> Detection {
        Detection {
            evidence: evidence.into(),
            ..Detection::default()
        }
    }

    /// True when a protocol was recognised.
    pub fn is_identified(&self) -> bool {
        self.protocol.is_some()
    }

    /// nmap's service name for the protocol (`domain` for dns).
    pub fn nmap_name(&self) -> Option<&'static str> {
        let p = self.protocol.as_deref()?;
        Some(match p {
            "dns" => "domain",
            "dhcp" => "dhcps",
            "netbios-ns" => "netbios-ns",
            "netbios-ssn" => "netbios-ssn",
            "ssh" => "ssh",
            "ftp" => "ftp",
            "telnet" => "telnet",
            "smtp" => "smtp",
            "http" => "http",
            "pop3" => "pop3",
            "imap" => "imap",
            "nntp" => "nntp",
            "ntp" => "ntp",
            "snmp" => "snmp",
            "ldap" => "ldap",
            "tftp" => "tftp",
            "tls" => "ssl",
            "mysql" => "mysql",
            "postgresql" => "postgresql",
            "redis" => "redis",
            "memcached" => "memcached",
            "mqtt" => "mqtt",
            "rpcbind" => "rpcbind",
            "rsync" => "rsync",
            "vnc" => "vnc",
            "mongodb" => "mongodb",
            "amqp" => "amqp",
            "nfs" => "nfs",
            "rpc" => "rpc",
            "rdp" => "ms-wbt-server",
            "x11" => "X11",
            "socks" => "socks5",
            "http-proxy" => "http-proxy",
            "docker" => "docker",
            "etcd" => "etcd-client",
            "kubelet" => "kubelet",
            "elasticsearch" => "elasticsearch",
            _ => "unknown",
        })
    }

    /// `ssl` when the service is wrapped in TLS from the first byte, as nmap's `tunnel`
    /// attribute says (an upgrade by STARTTLS is not a tunnel).
    pub fn nmap_tunnel(&self) -> Option<&'static str> {
        (self.tls.is_some() && !self.starttls).then_some("ssl")
    }

    /// The attributes of nmap's `<service>` element for this detection, in nmap's order
    /// (`name`, `product`, `version`, `tunnel`, `method`, `conf`), values unescaped.
    /// Empty when nothing was recognised: the caller then keeps its port-table guess.
    pub fn nmap_service(&self) -> Vec<(&'static str, String)> {
        let Some(name) = self.nmap_name() else {
            return Vec::new();
        };
        let mut attrs = vec![("name", name.to_string())];
        if let Some(p) = &self.product {
            attrs.push(("product", p.clone()));
        }
        if let Some(v) = &self.version {
            attrs.push(("version", v.clone()));
        }
        if let Some(t) = self.nmap_tunnel() {
            attrs.push(("tunnel", t.to_string()));
        }
        attrs.push(("method", "probed".into()));
        attrs.push(("conf", "10".into()));
        attrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let d = Detection {
            protocol: Some("http".into()),
            product: Some("nginx".into()),
            version: Some("1.22.1".into()),
            tls: Some(TlsInfo {
                version: Some("TLSv1.3".into()),
                alpn: Some("h2".into()),
                ..TlsInfo::default()
            }),
            cleartext: false,
            starttls: false,
            evidence: "HTTP/1.1 200 OK; Server: nginx/1.22.1".into(),
            unauthenticated: None,
        };
        let j = serde_json::to_string(&d).unwrap();
        assert!(!j.contains("unauthenticated"));
        assert_eq!(serde_json::from_str::<Detection>(&j).unwrap(), d);
        assert_eq!(d.nmap_tunnel(), Some("ssl"));
    }
}
