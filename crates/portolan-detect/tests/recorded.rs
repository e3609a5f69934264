//! Recorded answers of the test beds' daemons (tests/testbed3; OpenLDAP's from bed 1's
//! slapd 2.5.13 under the configurations tests/testbed/run.sh writes, and with an empty
//! database, which no bed runs), replayed by fake
//! servers on 127.0.0.1 on ports that suggest nothing: detection must name what the real
//! daemons made it name there, and no more. Squid's error pages are cut to a short body
//! (with a Content-Length to match); everything else is as the daemons sent it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use portolan_detect::{Detection, Detector, Options};

fn opts() -> Options {
    Options {
        timeout: Duration::from_secs(2),
        total: Duration::from_secs(15),
        read_cap: 64 * 1024,
        server_name: None,
    }
}

/// A server on 127.0.0.1 that answers up to `conns` connections with `serve`, each in a
/// thread of its own (the detector may hold one open while it tries another).
fn server(conns: usize, serve: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let serve = std::sync::Arc::new(serve);
    thread::spawn(move || {
        for c in l.incoming().take(conns).flatten() {
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let serve = serve.clone();
            thread::spawn(move || serve(c));
        }
    });
    addr
}

fn detect(addr: SocketAddr) -> Detection {
    Detector::default().detect_tcp_blocking(addr, &opts())
}

/// A Squid error page with the headers Squid 5.7 sent and a short body.
fn squid_page(status: &str, error: &str, extra: &str) -> Vec<u8> {
    let body = format!("<html><body id={error}>cut</body></html>");
    format!(
        "HTTP/1.1 {status}\r\nServer: squid/5.7\r\nMime-Version: 1.0\r\nDate: Wed, 02 Dec 2026 03:24:22 GMT\r\n\
         Content-Type: text/html;charset=utf-8\r\nContent-Length: {}\r\nX-Squid-Error: {error} 0\r\n\
         Vary: Accept-Language\r\nContent-Language: en\r\n{extra}X-Cache: MISS from vm\r\n\
         X-Cache-Lookup: NONE from vm:3128\r\nVia: 1.1 vm (squid/5.7)\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Squid: a request for `/` is no proxy request (400, ERR_INVALID_URL); CONNECT gets
/// `connect`.
fn squid(connect: Vec<u8>) -> SocketAddr {
    let invalid = squid_page("400 Bad Request", "ERR_INVALID_URL", "");
    server(32, move |mut c| {
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let answer = if head.starts_with(b"CONNECT ") {
            &connect
        } else {
            &invalid
        };
        let _ = c.write_all(answer);
    })
}

#[test]
fn squid_that_wants_a_password_is_no_open_proxy() {
    let denied = squid_page(
        "407 Proxy Authentication Required",
        "ERR_CACHE_ACCESS_DENIED",
        "Proxy-Authenticate: Basic realm=\"portolan test bed 3\"\r\n",
    );
    let d = detect(squid(denied));
    assert_eq!(d.protocol.as_deref(), Some("http-proxy"), "{d:?}");
    assert_eq!(
        (d.product.as_deref(), d.version.as_deref()),
        (Some("Squid"), Some("5.7"))
    );
    assert_eq!(d.unauthenticated, Some(false), "{}", d.evidence);
    assert!(
        d.evidence.contains("CONNECT needs proxy authentication"),
        "{}",
        d.evidence
    );
}

#[test]
fn squid_that_relays_for_anyone_is_an_open_proxy() {
    let d = detect(squid(
        b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec(),
    ));
    assert_eq!(d.protocol.as_deref(), Some("http-proxy"), "{d:?}");
    assert_eq!(d.unauthenticated, Some(true), "{}", d.evidence);
    assert!(
        d.evidence
            .contains("CONNECT relayed without authentication"),
        "{}",
        d.evidence
    );
}

#[test]
fn squid_that_refuses_connect_leaves_authentication_unknown() {
    // CONNECT refused by an access rule (403) says nothing about credentials.
    let refused = squid_page("403 Forbidden", "ERR_ACCESS_DENIED", "");
    let d = detect(squid(refused));
    assert_eq!(d.protocol.as_deref(), Some("http-proxy"), "{d:?}");
    assert_eq!(d.unauthenticated, None, "{}", d.evidence);
    assert!(
        d.evidence.contains("CONNECT answered 403"),
        "{}",
        d.evidence
    );
}

/// A line server: `greeting`, then for each line the answer `reply` gives (`None`
/// closes).
fn lines(greeting: &'static str, reply: fn(&str) -> Option<String>) -> SocketAddr {
    server(32, move |mut c| {
        if c.write_all(greeting.as_bytes()).is_err() {
            return;
        }
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            match reply(line.trim_end()) {
                Some(a) => {
                    if c.write_all(a.as_bytes()).is_err() {
                        return;
                    }
                }
                None => return,
            }
            line.clear();
        }
    })
}

const COURIER_CAPS: &str = "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT \
    THREAD=REFERENCES SORT QUOTA IDLE ACL ACL2=UNION ENABLE UTF8=ACCEPT";

#[test]
fn courier_imap_is_named_by_its_greeting_without_a_version() {
    let greeting = "* OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT \
        THREAD=REFERENCES SORT QUOTA IDLE ACL ACL2=UNION ENABLE UTF8=ACCEPT] Courier-IMAP ready. \
        Copyright 1998-2019 Double Precision, Inc.  See COPYING for distribution information.\r\n";
    let addr = lines(greeting, |l| {
        let (tag, cmd) = l.split_once(' ')?;
        match cmd {
            "CAPABILITY" => Some(format!(
                "* CAPABILITY {COURIER_CAPS}\r\n{tag} OK CAPABILITY completed\r\n"
            )),
            _ => None,
        }
    });
    let d = detect(addr);
    assert_eq!(d.protocol.as_deref(), Some("imap"), "{d:?}");
    assert_eq!(d.product.as_deref(), Some("Courier imapd"));
    assert_eq!(d.version, None, "the greeting names no version");
    assert!(!d.starttls);
    assert!(d.evidence.contains("Courier-IMAP ready"), "{}", d.evidence);
}

#[test]
fn courier_pop3_is_named_by_its_capa_implementation_line() {
    let addr = lines("+OK Hello there.\r\n", |l| match l {
        "CAPA" => Some(
            "+OK Here's what I can do:\r\nTOP\r\nUSER\r\nLOGIN-DELAY 10\r\nPIPELINING\r\nUIDL\r\n\
             UTF8 USER\r\nIMPLEMENTATION Courier Mail Server\r\n.\r\n"
                .into(),
        ),
        "QUIT" => Some("+OK Better luck next time.\r\n".into()),
        _ => None,
    });
    let d = detect(addr);
    assert_eq!(d.protocol.as_deref(), Some("pop3"), "{d:?}");
    assert_eq!(d.product.as_deref(), Some("Courier pop3d"));
    assert_eq!(d.version, None);
    // The evidence says what named it: the greeting alone does not.
    assert_eq!(
        d.evidence,
        "+OK Hello there.; CAPA IMPLEMENTATION Courier Mail Server"
    );
}

#[test]
fn pop3_without_an_implementation_line_is_not_named() {
    let addr = lines("+OK Hello there.\r\n", |l| match l {
        "CAPA" => Some("+OK Here's what I can do:\r\nTOP\r\nUSER\r\nUIDL\r\n.\r\n".into()),
        _ => None,
    });
    let d = detect(addr);
    assert_eq!(d.protocol.as_deref(), Some("pop3"), "{d:?}");
    assert_eq!(d.product, None, "nothing on the wire names it");
    assert_eq!(d.evidence, "+OK Hello there.");
}

/// A directory that answers portolan's root DSE search (base "") with `root_dse` and
/// any other search with `search`, the answers recorded from a bed's daemon, and drops
/// anything else (portolan tries a greeting and HTTP first on a port that suggests
/// nothing; a StartTLS request gets no answer either).
fn directory(root_dse: &'static [u8], search: &'static [u8]) -> SocketAddr {
    server(32, move |mut c| {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let Some(n) = portolan_detect::ber::element_len(&buf).filter(|n| buf.len() >= *n)
            else {
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
                if buf[0] != 0x30 {
                    return;
                }
                continue;
            };
            let msg: Vec<u8> = buf.drain(..n).collect();
            let Some(base) = search_base(&msg) else {
                return;
            };
            let answer = if base.is_empty() { root_dse } else { search };
            if c.write_all(answer).is_err() {
                return;
            }
        }
    })
}

/// The base of a SearchRequest message; `None` for any other message.
fn search_base(msg: &[u8]) -> Option<Vec<u8>> {
    use portolan_detect::ber;
    let (m, _) = ber::parse(msg).ok()?;
    let parts = ber::children(m.content).ok()?;
    let op = parts.get(1).filter(|op| op.tag == 0x63)?;
    Some(ber::children(op.content).ok()?.first()?.content.to_vec())
}

/// 389 Directory Server 2.3.1's answers as bed 3 had it before it held a database: a
/// root DSE that names no naming context.
const ROOT_DSE: &[u8] = include_bytes!("data/389ds-2.3.1-rootdse.ber");
/// Its root DSE with the database `dc=portolan,dc=test` (sample entries of dscreate).
const ROOT_DSE_CONTEXTS: &[u8] = include_bytes!("data/389ds-2.3.1-rootdse-contexts.ber");

#[test]
fn ds389_is_named_with_its_version_by_the_root_dse() {
    let d = detect(directory(ROOT_DSE, b""));
    assert_eq!(d.protocol.as_deref(), Some("ldap"), "{d:?}");
    assert_eq!(
        (d.product.as_deref(), d.version.as_deref()),
        (Some("389 Directory Server"), Some("2.3.1"))
    );
    assert!(
        d.evidence
            .contains("vendorVersion 389-Directory/2.3.1 B2025.016.1616"),
        "{}",
        d.evidence
    );
    assert!(!d.starttls, "no StartTLS extension without a certificate");
    // Nothing to search: no verdict.
    assert_eq!(d.unauthenticated, None);
    assert!(
        d.evidence
            .ends_with("the root DSE names no naming context to search"),
        "{}",
        d.evidence
    );
}

#[test]
fn ds389_open_to_anonymous_clients_serves_an_entry() {
    let d = detect(directory(
        ROOT_DSE_CONTEXTS,
        include_bytes!("data/389ds-2.3.1-search-entry.ber"),
    ));
    assert_eq!(d.product.as_deref(), Some("389 Directory Server"), "{d:?}");
    assert_eq!(d.unauthenticated, Some(true), "{}", d.evidence);
    assert!(
        d.evidence.ends_with(
            "; anonymous search of dc=portolan,dc=test returned entry dc=portolan,dc=test"
        ),
        "{}",
        d.evidence
    );
}

#[test]
fn ds389_that_serves_only_the_root_dse_refuses_anonymous_clients() {
    // nsslapd-allow-anonymous-access: rootdse
    let d = detect(directory(
        ROOT_DSE_CONTEXTS,
        include_bytes!("data/389ds-2.3.1-search-48.ber"),
    ));
    assert_eq!(d.product.as_deref(), Some("389 Directory Server"), "{d:?}");
    assert_eq!(d.unauthenticated, Some(false), "{}", d.evidence);
    assert!(
        d.evidence.ends_with(
            "anonymous search of dc=portolan,dc=test refused (48 inappropriateAuthentication: \
             Anonymous access is not allowed.)"
        ),
        "{}",
        d.evidence
    );
}

#[test]
fn openldap_that_requires_authentication_refuses_even_the_root_dse() {
    // slapd's `require authc`: the root DSE is refused, so nothing names the product.
    let d = detect(directory(
        include_bytes!("data/openldap-2.5-rootdse-53.ber"),
        b"",
    ));
    assert_eq!(d.protocol.as_deref(), Some("ldap"), "{d:?}");
    assert_eq!(d.product, None);
    assert_eq!(d.unauthenticated, Some(false), "{}", d.evidence);
    assert!(
        d.evidence
            .contains("(53 unwillingToPerform: authentication required)"),
        "{}",
        d.evidence
    );
}

#[test]
fn openldap_with_an_empty_database_decides_nothing() {
    let d = detect(directory(
        include_bytes!("data/openldap-2.5-rootdse.ber"),
        include_bytes!("data/openldap-2.5-search-32.ber"),
    ));
    assert_eq!(d.product.as_deref(), Some("OpenLDAP"), "{d:?}");
    assert_eq!(d.unauthenticated, None, "{}", d.evidence);
    assert!(d.evidence.contains("32 noSuchObject"), "{}", d.evidence);
}
