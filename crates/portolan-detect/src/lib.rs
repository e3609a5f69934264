//! Service detection: what really answers on a port.
//!
//! A port number is a convention; this crate asks the peer. For TCP it waits for a banner,
//! speaks the protocols that wait for the client (TLS, HTTP, LDAP, DNS, NetBIOS), follows
//! up with each protocol's own capability question (FEAT, EHLO, CAPA, CAPABILITY), and
//! runs the same questions inside TLS. For UDP it sends protocol payloads (DNS, NTP, SNMP,
//! NetBIOS, TFTP, DHCP). Probes are ordered by what the port number suggests, then fall
//! back to the rest. Signatures (a data file, see `docs/signatures.md`) turn the answers
//! into product and version.
//!
//! Every read is capped in bytes and time, and the whole detection of one port has a
//! deadline, so hostile peers (tarpits, endless banners, garbage) cost bounded time and
//! memory.
//!
//! ```no_run
//! # async fn f() {
//! use portolan_detect::{Detector, Options};
//! let d = Detector::default();
//! let found = d.detect_tcp("127.0.0.1:22".parse().unwrap(), &Options::default()).await;
//! println!("{:?} {:?}", found.protocol, found.product);
//! # }
//! ```
#![forbid(unsafe_code)]

mod conn;
mod enterprise;
mod pool;
mod proto;
mod service;
pub mod sig;
mod tcp;
mod tls;
mod udp;

use std::net::SocketAddr;
use std::time::Duration;

pub use pool::{Pool, Probe, detect_many};
/// The BER helpers SNMP and LDAP use (from `portolan-payload`).
pub use portolan_payload::ber;
pub use sig::{SigError, Signatures};

pub use portolan_model::{Detection, Proto, TlsInfo};

/// How long and how much detection may spend on one port.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connect, write and each read of a reply.
    pub timeout: Duration,
    /// The whole detection of one port.
    pub total: Duration,
    /// Bytes read from one connection at most.
    pub read_cap: usize,
    /// The name to send in TLS SNI and HTTP Host, when the target was given by name.
    pub server_name: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(3),
            total: Duration::from_secs(15),
            read_cap: 64 * 1024,
            server_name: None,
        }
    }
}

impl Options {
    /// Options scaled from one timeout: a whole port gets five times it.
    pub fn with_timeout(timeout: Duration) -> Options {
        Options {
            timeout,
            total: timeout * 5,
            ..Options::default()
        }
    }
}

/// Runs detection with a set of signatures. Cheap to share: clone it or keep it in an
/// `Arc`; all methods take `&self`.
#[derive(Debug, Clone)]
pub struct Detector {
    sigs: std::sync::Arc<Signatures>,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new(Signatures::builtin())
    }
}

impl Detector {
    /// A detector with these signatures only (use [`Detector::with_user`] to put your
    /// own in front of the built-in ones).
    pub fn new(sigs: Signatures) -> Detector {
        Detector {
            sigs: std::sync::Arc::new(sigs),
        }
    }

    /// Your signatures first, then the built-in ones.
    pub fn with_user(user: Signatures) -> Detector {
        Detector::new(user.then(Signatures::builtin()))
    }

    pub fn signatures(&self) -> &Signatures {
        &self.sigs
    }

    /// What answers on a TCP port. Never fails: an unreachable or silent port gives a
    /// detection with no protocol and the reason in `evidence`.
    pub async fn detect_tcp(&self, addr: SocketAddr, opts: &Options) -> Detection {
        match tokio::time::timeout(opts.total, tcp::detect(self, addr, opts)).await {
            Ok(d) => d,
            Err(_) => Detection::nothing(format!(
                "no answer recognised within {} ms",
                opts.total.as_millis()
            )),
        }
    }

    /// What answers on a UDP port.
    pub async fn detect_udp(&self, addr: SocketAddr, opts: &Options) -> Detection {
        match tokio::time::timeout(opts.total, udp::detect(self, addr, opts)).await {
            Ok(d) => d,
            Err(_) => Detection::nothing("no reply"),
        }
    }

    /// What answers on `addr` over `proto`: TCP and UDP are probed; SCTP and DCCP give
    /// a detection that says they were not.
    pub async fn detect(&self, addr: SocketAddr, proto: Proto, opts: &Options) -> Detection {
        match proto {
            Proto::Tcp => self.detect_tcp(addr, opts).await,
            Proto::Udp => self.detect_udp(addr, opts).await,
            other => Detection::nothing(format!(
                "not probed: detection speaks tcp and udp, not {other}"
            )),
        }
    }

    /// [`Detector::detect_tcp`] for callers without a runtime.
    pub fn detect_tcp_blocking(&self, addr: SocketAddr, opts: &Options) -> Detection {
        match runtime() {
            Ok(rt) => rt.block_on(self.detect_tcp(addr, opts)),
            Err(e) => Detection::nothing(format!("starting the runtime: {e}")),
        }
    }

    /// [`Detector::detect_udp`] for callers without a runtime.
    pub fn detect_udp_blocking(&self, addr: SocketAddr, opts: &Options) -> Detection {
        match runtime() {
            Ok(rt) => rt.block_on(self.detect_udp(addr, opts)),
            Err(e) => Detection::nothing(format!("starting the runtime: {e}")),
        }
    }

    /// Fills product and version from the signatures for `protocol`, matched against
    /// `text` (the transcript a probe made).
    fn identify(&self, d: &mut Detection, text: &str) {
        let Some(p) = d.protocol.as_deref() else {
            return;
        };
        if let Some(m) = self.sigs.identify(Some(p), text) {
            d.product = Some(m.product);
            if m.version.is_some() {
                d.version = m.version;
            }
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Printable, one-line, at most `max` characters: control bytes become `\xNN`.
pub(crate) fn printable(data: &[u8], max: usize) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(data).chars() {
        if out.chars().count() >= max {
            out.push('…');
            break;
        }
        match c {
            '\r' => {}
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32 & 0xff)),
            c => out.push(c),
        }
    }
    out.trim_end_matches("\\n").to_string()
}

/// Runs every reply parser on `data`: for the fuzz target and property tests only.
#[doc(hidden)]
pub fn parse_all(data: &[u8]) {
    let _ = proto::classify_greeting(data);
    let _ = proto::telnet_parse(data);
    let _ = proto::http_parse(data);
    let _ = proto::dns_parse(0, data);
    let _ = proto::ntp_parse(data);
    let _ = proto::ntp_readvar_parse(data);
    let _ = proto::snmp_parse(data, 0);
    let _ = proto::nbstat_parse(0, data);
    let _ = proto::nb_session_parse(data);
    let _ = proto::tftp_parse(data);
    let _ = proto::dhcp_parse(0, data);
    let _ = proto::end_of_ldap_search(data);
    if let Some(r) = proto::ldap_parse(data) {
        let _ = proto::ldap_contexts(&r);
        let _ = proto::ldap_rootdse_refused(&r);
        let _ = proto::ldap_search_access("dc=x", Some(&r));
    }
    let _ = proto::smb_parse(data);
    let _ = conn::end_of_coded_reply(data);
    let _ = conn::end_of_dot_list(data);
    let _ = proto::end_of_http_message(data);
    let _ = proto::http_body(data);
    service::parse_all(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fuzz corpus's seeds (fuzz/corpus/detect_signatures, detect_replies).
    const SEEDS: &[&[u8]] = &[
        include_bytes!("../../../fuzz/corpus/detect_replies/ldap-rootdse.ber"),
        include_bytes!("../../../fuzz/corpus/detect_replies/ldap-search-entry.ber"),
        include_bytes!("../../../fuzz/corpus/detect_replies/ldap-search-refused.ber"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/pg-trust"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/pg-error"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/mysql-handshake"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/redis-info"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/mongo"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/mqtt-publish"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/amqp-start"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/rpc-dump"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/rfb"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/rdp"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/x11"),
        include_bytes!("../../../fuzz/corpus/detect_signatures/http-chunked"),
    ];

    #[test]
    fn nmap_service_attributes() {
        let d = Detection {
            protocol: Some("http".into()),
            product: Some("nginx".into()),
            version: Some("1.22.1".into()),
            tls: Some(TlsInfo::default()),
            ..Detection::default()
        };
        let attrs = d.nmap_service();
        let names: Vec<&str> = attrs.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            ["name", "product", "version", "tunnel", "method", "conf"]
        );
        assert_eq!(attrs[3].1, "ssl");
        let dns = Detection {
            protocol: Some("dns".into()),
            ..Detection::default()
        };
        assert_eq!(dns.nmap_service()[0].1, "domain");
        assert!(Detection::default().nmap_service().is_empty());
    }

    #[test]
    fn json_field_names_are_stable() {
        let v = serde_json::to_value(Detection::default()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "cleartext",
                "evidence",
                "product",
                "protocol",
                "starttls",
                "tls",
                "version"
            ]
        );
        let t = serde_json::to_value(TlsInfo::default()).unwrap();
        let mut keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "alpn",
                "cipher",
                "issuer",
                "not_after",
                "subject",
                "version"
            ]
        );
    }

    #[test]
    fn mariadb_compat_prefix_is_not_the_version() {
        let sigs = Signatures::builtin();
        let m = sigs
            .identify(Some("mysql"), "version: 5.5.5-10.11.19-MariaDB-0+deb12u1\n")
            .unwrap();
        assert_eq!(
            (m.product.as_str(), m.version.as_deref()),
            ("MariaDB", Some("10.11.19"))
        );
        let m = sigs
            .identify(Some("mysql"), "version: 11.4.2-MariaDB\n")
            .unwrap();
        assert_eq!(m.version.as_deref(), Some("11.4.2"));
        let m = sigs
            .identify(Some("mysql"), "version: 8.0.36-0ubuntu0.22.04.1\n")
            .unwrap();
        assert_eq!(
            (m.product.as_str(), m.version.as_deref()),
            ("MySQL", Some("8.0.36"))
        );
    }

    #[test]
    fn ntpsec_mode6_version_names_ntpsec_not_ntpd() {
        let sigs = Signatures::builtin();
        let m = sigs
            .identify(Some("ntp"), "version=\"ntpd ntpsec-1.2.2\", leap=11")
            .unwrap();
        assert_eq!(
            (m.product.as_str(), m.version.as_deref()),
            ("NTPsec", Some("1.2.2"))
        );
        let m = sigs
            .identify(Some("ntp"), "version=\"ntpd 4.2.8p15@1.3728-o\", leap=00")
            .unwrap();
        assert_eq!(
            (m.product.as_str(), m.version.as_deref()),
            ("ntpd", Some("4.2.8p15"))
        );
    }

    proptest! {
        #[test]
        fn reply_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            super::parse_all(&data);
        }

        /// Seeds of every reply format, cut short and with one byte changed: the
        /// parsers' deeper paths, which random bytes rarely reach.
        #[test]
        fn mangled_replies_never_panic(
            seed in 0usize..SEEDS.len(),
            cut in 0usize..400,
            at in 0usize..400,
            byte in any::<u8>(),
        ) {
            let mut data = SEEDS[seed].to_vec();
            if !data.is_empty() {
                let i = at % data.len();
                data[i] = byte;
            }
            data.truncate(cut);
            super::parse_all(&data);
        }

        /// Whatever a directory answers, the reason given for its verdict stays short.
        #[test]
        fn ldap_verdicts_are_bounded(
            dn in "\\PC{0,300}",
            diagnostic in "\\PC{0,300}",
            code in any::<i64>(),
            entries in 0usize..3,
        ) {
            let r = proto::LdapReply {
                entries,
                first_dn: Some(dn.clone()),
                result: Some(code),
                diagnostic,
                ..proto::LdapReply::default()
            };
            let a = proto::ldap_search_access(&dn, Some(&r));
            prop_assert!(a.why.chars().count() <= 260, "{}", a.why);
            prop_assert_eq!(a.served == Some(true), entries > 0);
            if let Some(a) = proto::ldap_rootdse_refused(&r) {
                prop_assert!(a.why.chars().count() <= 160, "{}", a.why);
            }
        }

        #[test]
        fn printable_is_one_bounded_line(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let p = super::printable(&data, 50);
            prop_assert!(!p.contains('\n') && !p.contains('\r'));
            // The last character may be an escape (4) followed by the ellipsis.
            prop_assert!(p.chars().count() <= 50 + 4 + 1);
        }
    }
}
