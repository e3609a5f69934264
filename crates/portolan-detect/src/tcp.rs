//! TCP detection: wait for a greeting, or speak first, then ask each protocol its own
//! capability question; with implicit TLS, the same inside the tunnel.

mod http;
mod services;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;
use std::sync::Arc;
use tokio::net::TcpStream;

use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::conn::{Conn, end_of_coded_reply, end_of_dot_list};
use crate::proto::{self, Greeting};
use crate::{Detection, Detector, Options, TlsInfo, printable, tls};

/// The most connections one port's probes hold open at once. A server with a limit on
/// its clients serves the first ones and leaves the rest unread (Unbound's default
/// `incoming-num-tcp` is 10), so a burst of every probe could starve the one that it
/// would answer; the probes most likely to be answered come first in [`ALL`].
const PER_PORT: usize = 8;

/// How long the first probe of that burst runs alone.
const HEAD_START: Duration = Duration::from_millis(200);

/// One way of starting a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Say nothing and wait for the server's greeting.
    Greeting,
    Tls,
    Http,
    Ldap,
    Dns,
    NetbiosSsn,
    Smb,
    Postgres,
    /// memcached's `version`, then Redis's `INFO server` to a RESP error.
    Kv,
    Mongo,
    Mqtt,
    Amqp,
    /// ONC RPC: the portmapper's DUMP, then NFS's NULL procedure.
    Rpc,
    Rdp,
    X11,
    Socks,
}

const ALL: [Step; 16] = [
    Step::Greeting,
    Step::Tls,
    Step::Http,
    Step::Ldap,
    Step::Dns,
    Step::NetbiosSsn,
    Step::Smb,
    Step::Postgres,
    Step::Kv,
    Step::Mongo,
    Step::Mqtt,
    Step::Amqp,
    Step::Rpc,
    Step::Rdp,
    Step::X11,
    Step::Socks,
];

/// Ports whose service usually speaks TLS from the first byte.
const TLS_PORTS: &[u16] = &[
    443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 2376, 3269, 4443, 5061, 5986, 6443,
    6697, 8443, 8883, 9443, 10250,
];
/// Of those, the ones where the server greets first inside TLS.
const TLS_GREETING_PORTS: &[u16] = &[465, 563, 989, 990, 992, 993, 994, 995, 6697];
const GREETING_PORTS: &[u16] = &[
    21, 22, 23, 25, 110, 119, 143, 587, 873, 2121, 2222, 2525, 3306, 4190, 2323, 5900, 5901, 5902,
    5903,
];
const HTTP_PORTS: &[u16] = &[
    80, 591, 2375, 2379, 3000, 3128, 5000, 8000, 8008, 8080, 8081, 8088, 8118, 8888, 9200, 10255,
];
/// Ports where an HTTP server is likely a forward proxy: there, CONNECT is tried.
const PROXY_PORTS: &[u16] = &[3128, 8118, 8123, 8888, 8080];

/// The protocols detection speaks (their signatures match their own transcripts, never
/// an unrecognised greeting).
const SPOKEN: &[&str] = &[
    "ssh",
    "telnet",
    "pop3",
    "imap",
    "nntp",
    "smtp",
    "ftp",
    "http",
    "dns",
    "ntp",
    "snmp",
    "netbios-ns",
    "netbios-ssn",
    "ldap",
    "tftp",
    "dhcp",
    "smb",
    "tls",
    "mysql",
    "postgresql",
    "redis",
    "memcached",
    "mongodb",
    "mqtt",
    "amqp",
    "rpcbind",
    "nfs",
    "rpc",
    "rsync",
    "vnc",
    "rdp",
    "x11",
    "socks",
    "http-proxy",
    "docker",
    "etcd",
    "kubelet",
    "elasticsearch",
];

/// The step a port number suggests, if any.
fn hint(port: u16) -> Option<Step> {
    Some(if TLS_PORTS.contains(&port) {
        Step::Tls
    } else if GREETING_PORTS.contains(&port) {
        Step::Greeting
    } else if HTTP_PORTS.contains(&port) {
        Step::Http
    } else {
        match port {
            53 => Step::Dns,
            139 => Step::NetbiosSsn,
            389 | 3268 => Step::Ldap,
            445 => Step::Smb,
            5432 => Step::Postgres,
            6379 | 11211 => Step::Kv,
            27017 => Step::Mongo,
            1883 => Step::Mqtt,
            5672 => Step::Amqp,
            111 | 2049 => Step::Rpc,
            3389 => Step::Rdp,
            6000..=6063 => Step::X11,
            1080 => Step::Socks,
            _ => return None,
        }
    })
}

/// The steps for a port: what its number suggests first, then the rest.
fn plan(port: u16) -> Vec<Step> {
    let first = hint(port);
    let mut steps: Vec<Step> = first.into_iter().collect();
    steps.extend(ALL.iter().filter(|s| Some(**s) != first));
    steps
}

/// The steps inside TLS.
fn tls_plan(port: u16) -> Vec<Step> {
    if TLS_GREETING_PORTS.contains(&port) {
        vec![Step::Greeting, Step::Http, Step::Ldap]
    } else if matches!(port, 636 | 3269) {
        vec![Step::Ldap, Step::Greeting, Step::Http]
    } else {
        vec![Step::Http, Step::Greeting, Step::Ldap]
    }
}

/// How one step ended.
#[allow(clippy::large_enum_variant)] // one per step; boxing buys nothing
enum Outcome {
    Found(Detection),
    /// Recognised, but from an answer to the wrong question (an HTTP 400 to a TLS
    /// hello): used when nothing better turns up.
    Weak(Detection),
    /// The server said something we did not recognise.
    Spoke(String),
    /// It greeted us before reading our question: ask again by waiting.
    Greeter,
    /// It said nothing (or closed).
    Silent,
    /// No connection.
    Unreachable(io::Error),
}

struct Ctx {
    det: Detector,
    addr: SocketAddr,
    opts: Options,
    host: String,
    /// Whether a TLS server asked for a client certificate.
    client_auth: Arc<tls::ClientAuthAsked>,
}

pub async fn detect(det: &Detector, addr: SocketAddr, opts: &Options) -> Detection {
    let host = opts.server_name.clone().unwrap_or_else(|| match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    });
    let cx = Arc::new(Ctx {
        det: det.clone(),
        addr,
        opts: opts.clone(),
        host,
        client_auth: Arc::default(),
    });
    let steps = plan(addr.port());
    let mut heard: Option<String> = None;
    let mut weak: Option<Detection> = None;
    let mut refused: Option<Detection> = None;
    let mut note = |o: Outcome| -> Option<Detection> {
        match o {
            Outcome::Found(d) => Some(d),
            Outcome::Weak(d) => {
                weak.get_or_insert(d);
                None
            }
            // One refused connection among several (a server with a connection limit)
            // is not the answer; all of them refused is.
            Outcome::Unreachable(e) => {
                refused.get_or_insert(unreachable(&e));
                None
            }
            Outcome::Spoke(s) => {
                heard.get_or_insert(s);
                None
            }
            Outcome::Greeter | Outcome::Silent => None,
        }
    };
    // What the port suggests goes first, alone.
    let mut rest = steps;
    if hint(addr.port()).is_some() {
        let first = rest.remove(0);
        match cx.step(first, opts.timeout).await {
            Outcome::Unreachable(e) => return unreachable(&e),
            o => {
                if let Some(d) = note(o) {
                    return d;
                }
            }
        }
    }
    // Then everything else, each on its own connection (waiting for a greeting is one
    // of them), at most PER_PORT at once in ALL's order; the first answer wins. A
    // speak-first server that gets a question it did not expect still greets, and is
    // then heard again properly.
    let mut waiting = rest.into_iter();
    let mut set = JoinSet::new();
    let spawn = |set: &mut JoinSet<Outcome>, step: Step| {
        let cx = cx.clone();
        set.spawn(async move { cx.step(step, cx.opts.timeout).await });
    };
    // The first (waiting for a greeting, unless the port suggested that) starts alone:
    // a server that speaks first is heard on one connection, not a burst of them.
    if let Some(step) = waiting.next() {
        spawn(&mut set, step);
        if let Ok(Some(Ok(o))) = timeout(HEAD_START, set.join_next()).await {
            if let Some(d) = note(o) {
                return d;
            }
        }
    }
    while set.len() < PER_PORT {
        let Some(step) = waiting.next() else { break };
        spawn(&mut set, step);
    }
    while let Some(r) = set.join_next().await {
        if let Ok(o) = r {
            if let Some(d) = note(o) {
                set.abort_all();
                return d;
            }
        }
        if let Some(step) = waiting.next() {
            spawn(&mut set, step);
        }
    }
    match (weak, heard, refused) {
        (Some(d), _, _) => d,
        (None, Some(h), _) => Detection::nothing(h),
        (None, None, Some(r)) => r,
        (None, None, None) => Detection::nothing("open, but no probe got an answer"),
    }
}

/// The detection an outcome inside TLS settles on, noting what was heard otherwise.
fn take(o: Outcome, heard: &mut Option<String>, weak: &mut Option<Detection>) -> Option<Detection> {
    match o {
        Outcome::Found(d) => Some(d),
        Outcome::Weak(d) => {
            weak.get_or_insert(d);
            None
        }
        Outcome::Spoke(s) => {
            heard.get_or_insert(s);
            None
        }
        _ => None,
    }
}

fn unreachable(e: &io::Error) -> Detection {
    let why = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::TimedOut => "connect timed out".to_string(),
        _ => format!("connect failed: {e}"),
    };
    Detection::nothing(why)
}

enum TlsFail {
    Connect(io::Error),
    Handshake(io::Error, Vec<u8>),
}

fn cleartext(protocol: &str) -> bool {
    !matches!(protocol, "ssh" | "tls")
}

/// An IMAP greeting as evidence. One too long to quote whole loses its capability list
/// (which the CAPABILITY answer repeats), not the text after it that names the server.
fn imap_evidence(first: &str) -> String {
    const MAX: usize = 160;
    if first.chars().count() > MAX {
        if let Some(rest) = first.strip_prefix("* OK [CAPABILITY ") {
            if let Some((_, text)) = rest.split_once(']') {
                return printable(format!("* OK [CAPABILITY …]{text}").as_bytes(), MAX);
            }
        }
    }
    printable(first.as_bytes(), MAX)
}

fn found(protocol: &str, evidence: String) -> Detection {
    Detection {
        protocol: Some(protocol.to_string()),
        cleartext: cleartext(protocol),
        evidence,
        ..Detection::default()
    }
}

impl Ctx {
    /// Runs one step on its own connection; a greeting that answers a question we did
    /// not ask is heard again properly.
    async fn step(&self, step: Step, wait: Duration) -> Outcome {
        let outcome = if step == Step::Tls {
            match self.tls_connect(&["h2", "http/1.1"]).await {
                Ok((conn, info)) => return Outcome::Found(self.inside_tls(conn, info).await),
                Err(TlsFail::Connect(e)) => return Outcome::Unreachable(e),
                Err(TlsFail::Handshake(e, seen)) => {
                    if seen.is_empty() {
                        Outcome::Silent
                    } else {
                        match self.classify(&seen, Step::Tls) {
                            Outcome::Spoke(s) => Outcome::Spoke(format!(
                                "TLS handshake failed ({e}); peer sent: {s}"
                            )),
                            o => o,
                        }
                    }
                }
            }
        } else {
            match self.connect().await {
                Ok(conn) => self.run(conn, step, wait).await,
                Err(e) => return Outcome::Unreachable(e),
            }
        };
        match outcome {
            Outcome::Greeter => match self.connect().await {
                Ok(conn) => match self.run(conn, Step::Greeting, self.opts.timeout).await {
                    Outcome::Greeter => Outcome::Silent,
                    o => o,
                },
                Err(e) => Outcome::Unreachable(e),
            },
            o => o,
        }
    }

    async fn connect(&self) -> io::Result<Conn> {
        let s = match timeout(self.opts.timeout, TcpStream::connect(self.addr)).await {
            Ok(r) => r?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect")),
        };
        let _ = s.set_nodelay(true);
        Ok(Conn::new(
            Box::new(s),
            self.opts.read_cap,
            self.opts.timeout,
        ))
    }

    async fn tls_connect(&self, alpn: &[&str]) -> Result<(Conn, TlsInfo), TlsFail> {
        let s = match timeout(self.opts.timeout, TcpStream::connect(self.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(TlsFail::Connect(e)),
            Err(_) => {
                return Err(TlsFail::Connect(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connect",
                )));
            }
        };
        let _ = s.set_nodelay(true);
        let name = self.server_name();
        let cfg = tls::config_noting(alpn, self.client_auth.clone())
            .map_err(|e| TlsFail::Handshake(io::Error::other(e), Vec::new()))?;
        let hs = tls::handshake(s, name, cfg, self.opts.read_cap);
        match timeout(self.opts.timeout, hs).await {
            Ok(Ok((stream, info))) => Ok((
                Conn::new(Box::new(stream), self.opts.read_cap, self.opts.timeout).tls(),
                info,
            )),
            Ok(Err((e, seen))) => Err(TlsFail::Handshake(e, seen)),
            Err(_) => Err(TlsFail::Handshake(
                io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"),
                Vec::new(),
            )),
        }
    }

    /// Detection inside a TLS tunnel. The step the port suggests runs alone on the
    /// handshake's connection; the others then run at once, each on a new tunnel. On a
    /// port that suggests nothing, all three run at once.
    async fn inside_tls(&self, first: Conn, info: TlsInfo) -> Detection {
        let plan = tls_plan(self.addr.port());
        let hinted = TLS_PORTS.contains(&self.addr.port());
        let h2 = info.alpn.as_deref() == Some("h2");
        let mut first = Some(first);
        // The handshake's connection serves the first step, unless that is HTTP and the
        // server chose HTTP/2 (our request is HTTP/1.x).
        let mut reuse = || first.take().filter(|_| !(plan[0] == Step::Http && h2));
        let mut heard: Option<String> = None;
        let mut weak: Option<Detection> = None;
        let mut done = [false; 3];
        let mut result = None;
        if hinted {
            done[0] = true;
            result = take(self.tls_step(plan[0], reuse()).await, &mut heard, &mut weak);
        }
        if result.is_none() {
            let c0 = if done[0] { None } else { reuse() };
            let f0 = self.tls_step(plan[0], c0);
            let f1 = self.tls_step(plan[1], None);
            let f2 = self.tls_step(plan[2], None);
            tokio::pin!(f0, f1, f2);
            loop {
                let o = tokio::select! {
                    o = &mut f0, if !done[0] => { done[0] = true; o }
                    o = &mut f1, if !done[1] => { done[1] = true; o }
                    o = &mut f2, if !done[2] => { done[2] = true; o }
                    else => break,
                };
                if let Some(d) = take(o, &mut heard, &mut weak) {
                    result = Some(d);
                    break;
                }
            }
        }
        // A server that asked for a client certificate, got none, served nothing and
        // closed with an alert refused the anonymous client (Docker's --tlsverify).
        let refused = match (&result, &weak, &heard, self.client_auth.asked()) {
            (None, None, None, Some(cas)) => self.alert_after_handshake().await.map(|a| (cas, a)),
            _ => None,
        };
        let mut d = result.or(weak).unwrap_or_else(|| {
            found(
                "tls",
                heard.unwrap_or_else(|| "TLS; nothing recognised inside".into()),
            )
        });
        if let Some((cas, alert)) = refused {
            d.unauthenticated = Some(false);
            d.evidence = printable(
                format!(
                    "TLS; the server asks for a client certificate (CAs: {}), and without one it closes with alert {alert}",
                    if cas.is_empty() {
                        "none named".to_string()
                    } else {
                        cas.join("; ")
                    }
                )
                .as_bytes(),
                200,
            );
        }
        d.tls = Some(info);
        d.cleartext = false;
        // An upgrade offered inside TLS upgrades nothing.
        d.starttls = false;
        d
    }

    /// The alert a TLS server sends, unasked, right after a handshake without a client
    /// certificate, if it sends one.
    async fn alert_after_handshake(&self) -> Option<String> {
        let (mut conn, _) = self.tls_connect(&[]).await.ok()?;
        let e = conn.read(|_| None).await.err()?;
        match e.get_ref()?.downcast_ref::<rustls::Error>()? {
            rustls::Error::AlertReceived(a) => Some(format!("{a:?}")),
            _ => None,
        }
    }

    /// One step inside TLS, on `conn` or on a new tunnel.
    async fn tls_step(&self, step: Step, conn: Option<Conn>) -> Outcome {
        let conn = match conn {
            Some(c) => c,
            None => {
                let alpn: &[&str] = if step == Step::Http {
                    &["http/1.1"]
                } else {
                    &[]
                };
                match self.tls_connect(alpn).await {
                    Ok((c, _)) => c,
                    Err(_) => return Outcome::Silent,
                }
            }
        };
        match self.run(conn, step, self.opts.timeout).await {
            Outcome::Greeter => match self.tls_connect(&[]).await {
                Ok((c, _)) => match self.run(c, Step::Greeting, self.opts.timeout).await {
                    Outcome::Greeter => Outcome::Silent,
                    o => o,
                },
                Err(_) => Outcome::Silent,
            },
            o => o,
        }
    }

    /// Runs one step on a fresh connection.
    async fn run(&self, mut conn: Conn, step: Step, wait: Duration) -> Outcome {
        if !matches!(
            step,
            Step::Greeting
                | Step::Tls
                | Step::Http
                | Step::Ldap
                | Step::Dns
                | Step::NetbiosSsn
                | Step::Smb
        ) {
            return self.service(conn, step).await;
        }
        let plain = conn.is_plain();
        let sent = match step {
            Step::Greeting | Step::Tls => None,
            Step::Http => Some(proto::http_get(&self.host)),
            Step::Ldap => Some(proto::ldap::rootdse(1)),
            Step::Dns => Some(proto::dns_version_query(0x5054, true)),
            Step::NetbiosSsn => Some(proto::nb_session_request()),
            Step::Smb => Some(proto::smb2_negotiate()),
            _ => None,
        };
        if let Some(req) = &sent {
            if conn.send(req).await.is_err() {
                return Outcome::Silent;
            }
        }
        let read = match step {
            Step::Greeting | Step::Tls => conn.read_until(wait, end_of_greeting).await,
            Step::Http => conn.read(proto::end_of_http_message).await,
            Step::Ldap => conn.read(proto::end_of_ldap_search).await,
            Step::Dns => {
                conn.read(|b| {
                    let n = usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?]));
                    (b.len() >= 2 + n).then_some(2 + n)
                })
                .await
            }
            Step::NetbiosSsn | Step::Smb => {
                conn.read(|b| {
                    let n = usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
                    (b.len() >= 4 + n).then_some(4 + n)
                })
                .await
            }
            _ => return Outcome::Silent,
        };
        let data = match read {
            Ok((d, _)) if !d.is_empty() => d,
            _ => return Outcome::Silent,
        };
        let parsed = match step {
            Step::Greeting | Step::Tls => {
                if let Some(g) = proto::classify_greeting(&data) {
                    return Outcome::Found(self.follow_up(conn, g, data).await);
                }
                None
            }
            Step::Http => match self.http(&data) {
                Some(d) => {
                    let d = self.http_follow_up(d, &data, plain).await;
                    if d.protocol.as_deref() == Some("http") && d.evidence.contains(" 400 ") {
                        return Outcome::Weak(d);
                    }
                    Some(d)
                }
                None => None,
            },
            Step::Ldap => match proto::ldap_parse(&data) {
                Some(r) => return Outcome::Found(self.ldap_conversation(conn, r).await),
                None => None,
            },
            Step::Dns => self.dns_tcp(&data),
            Step::NetbiosSsn => match proto::nb_session_parse(&data) {
                // Samba takes a session request on any of its ports: away from 139, a
                // direct SMB answer is the better name for the service.
                Some(e) if hint(self.addr.port()) != Some(Step::NetbiosSsn) => {
                    return Outcome::Weak(found("netbios-ssn", e));
                }
                other => other.map(|e| found("netbios-ssn", e)),
            },
            Step::Smb => proto::smb_parse(&data).map(|e| found("smb", e)),
            _ => None,
        };
        match parsed {
            Some(d) => Outcome::Found(d),
            // Not the answer we asked for; perhaps the server greeted before reading us.
            None => self.classify(&data, step),
        }
    }

    /// Recognises data that came in reply to the wrong question (or to a TLS hello).
    fn classify(&self, data: &[u8], step: Step) -> Outcome {
        if step != Step::Greeting && proto::classify_greeting(data).is_some() {
            return Outcome::Greeter;
        }
        if step != Step::Http {
            if let Some(d) = self.http(data) {
                return Outcome::Weak(d);
            }
        }
        // An unknown greeting names itself at its start: the signatures of the
        // protocols portolan does not speak see its first 4 KiB.
        let text = proto::text(&data[..data.len().min(4096)]);
        match self.det.sigs.identify_other(SPOKEN, &text) {
            Some(m) => {
                let mut d = found(&m.protocol, printable(data, 120));
                d.product = Some(m.product);
                d.version = m.version;
                if step == Step::Greeting {
                    Outcome::Found(d)
                } else {
                    Outcome::Weak(d)
                }
            }
            None => Outcome::Spoke(printable(data, 120)),
        }
    }

    fn http(&self, data: &[u8]) -> Option<Detection> {
        let head = proto::http_parse(data)?;
        if head.contains("plain HTTP request was sent to HTTPS port") {
            return None;
        }
        let status = proto::first_line(data);
        let server = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case("server").then(|| v.trim())
            })
            .map(|s| format!("; Server: {s}"))
            .unwrap_or_default();
        let mut d = found(
            "http",
            printable(format!("{status}{server}").as_bytes(), 160),
        );
        self.det.identify(&mut d, &head);
        Some(d)
    }

    /// What a root DSE names, as a detection (its evidence still without the verdict on
    /// anonymous access).
    fn ldap(&self, r: &proto::LdapReply) -> Detection {
        let versions: Vec<&str> = r.values("supportedLDAPVersion").collect();
        let mut ev = format!("root DSE: {} attributes", r.attrs.len());
        if !versions.is_empty() {
            ev.push_str(&format!("; supportedLDAPVersion {}", versions.join(",")));
        }
        // What names the product, where the server says it.
        for attr in ["vendorName", "vendorVersion"] {
            if let Some(v) = r.values(attr).next() {
                ev.push_str(&format!("; {attr} {v}"));
            }
        }
        if let Some(res) = r.result {
            if res != 0 && proto::ldap_rootdse_refused(r).is_none() {
                ev.push_str(&format!("; result {res} {}", r.diagnostic));
            }
        }
        let mut d = found("ldap", printable(ev.as_bytes(), 160));
        d.starttls = r
            .values("supportedExtension")
            .any(|v| v == "1.3.6.1.4.1.1466.20037");
        if let Some(v) = r.values("vendorName").next() {
            d.product = Some(v.to_string());
            d.version = r.values("vendorVersion").next().map(str::to_string);
        } else if let Some(v) = proto::openldap_version(r) {
            d.product = Some("OpenLDAP".into());
            d.version = Some(v);
        }
        self.det.identify(&mut d, &r.transcript());
        d
    }

    /// After the root DSE (`r`, read on `conn`): an anonymous search of its naming
    /// contexts, then StartTLS where it is offered (or where the directory asked for
    /// TLS), for the certificate; a directory that asked for TLS is asked again inside.
    async fn ldap_conversation(&self, mut conn: Conn, r: proto::LdapReply) -> Detection {
        let mut d = self.ldap(&r);
        let mut access = self.ldap_access(&mut conn, &r, 2).await;
        let mut inside = "";
        if conn.is_plain() && (d.starttls || access.wants_tls) {
            if let Some((info, mut tunnel)) = self.ldap_starttls(conn, 10).await {
                d.starttls = true;
                d.tls = Some(info);
                if access.wants_tls {
                    if let Some(again) = self.ldap_again(&mut tunnel, &r, &mut d).await {
                        access = again;
                        inside = " inside StartTLS (in cleartext: 13 confidentialityRequired)";
                    }
                }
            }
        }
        d.unauthenticated = access.served;
        let ev = format!("{}; {}{inside}", d.evidence, access.why);
        d.evidence = printable(ev.as_bytes(), 280);
        d
    }

    /// Inside StartTLS, for a directory that wanted TLS: the root DSE again (when it was
    /// refused outside, it now names the product), then the anonymous search.
    async fn ldap_again(
        &self,
        conn: &mut Conn,
        outside: &proto::LdapReply,
        d: &mut Detection,
    ) -> Option<proto::LdapAccess> {
        let mut r = outside.clone();
        if outside.entries == 0 {
            let inner = ldap_ask(conn, &proto::ldap::rootdse(11)).await?;
            let mut named = self.ldap(&inner);
            named.tls = d.tls.take();
            named.starttls = true;
            *d = named;
            r = inner;
        }
        Some(self.ldap_access(conn, &r, 12).await)
    }

    /// Anonymous searches of the naming contexts `r` names, one after another with
    /// message IDs from `msgid`, until one serves an entry.
    async fn ldap_access(
        &self,
        conn: &mut Conn,
        r: &proto::LdapReply,
        msgid: i64,
    ) -> proto::LdapAccess {
        if let Some(refused) = proto::ldap_rootdse_refused(r) {
            return refused;
        }
        let mut tried = Vec::new();
        for (i, base) in proto::ldap_contexts(r).into_iter().enumerate() {
            let req = proto::ldap::anonymous_search(msgid + i as i64, &base);
            let reply = ldap_ask(conn, &req).await;
            let a = proto::ldap_search_access(&base, reply.as_ref());
            let done = a.served == Some(true) || reply.is_none();
            tried.push(a);
            if done {
                break;
            }
        }
        proto::ldap_access(&tried)
    }

    fn dns_tcp(&self, data: &[u8]) -> Option<Detection> {
        let r = proto::dns_parse(0x5054, data.get(2..)?)?;
        Some(dns_detection(&self.det, &r))
    }

    /// The conversation after a greeting: each protocol's capability question.
    async fn follow_up(&self, mut conn: Conn, g: Greeting, greeting: Vec<u8>) -> Detection {
        let first = proto::first_line(&greeting);
        let mut transcript = proto::text(&greeting);
        let mut d;
        let mut upgrade: Option<Upgrade> = None;
        let mut quit: &[u8] = b"";
        match g {
            Greeting::Ssh => {
                d = found("ssh", printable(first.as_bytes(), 160));
                transcript = first;
            }
            Greeting::Telnet => return self.telnet(conn, greeting).await,
            Greeting::Mysql | Greeting::Rsync | Greeting::Vnc => {
                return self.greeted_service(conn, g, &greeting).await;
            }
            Greeting::Pop3 => {
                d = found("pop3", printable(first.as_bytes(), 160));
                let capa = ask(&mut conn, b"CAPA\r\n", end_of_dot_list).await;
                d.starttls = proto::has_capability(&capa, "STLS");
                // A server that names itself there (RFC 2449 IMPLEMENTATION), where
                // its greeting does not.
                if let Some(name) = capa.lines().find(|l| l.starts_with("IMPLEMENTATION ")) {
                    d.evidence = printable(format!("{first}; CAPA {name}").as_bytes(), 160);
                }
                transcript.push_str(&capa);
                upgrade = Some(Upgrade::line(b"STLS\r\n", "+OK"));
                quit = b"QUIT\r\n";
            }
            Greeting::Imap => {
                d = found("imap", imap_evidence(&first));
                let caps = ask(&mut conn, b"a1 CAPABILITY\r\n", tagged("a1 ")).await;
                transcript.push_str(&caps);
                d.starttls = proto::has_word(&transcript, "STARTTLS");
                if proto::has_word(&transcript, "ID") {
                    let id = ask(&mut conn, b"a2 ID NIL\r\n", tagged("a2 ")).await;
                    transcript.push_str(&id);
                }
                upgrade = Some(Upgrade {
                    cmd: b"a3 STARTTLS\r\n",
                    ok: "a3 OK",
                    tag: Some("a3 "),
                });
                quit = b"a3 LOGOUT\r\n";
            }
            Greeting::Nntp => {
                d = found("nntp", printable(first.as_bytes(), 160));
                let caps = ask(&mut conn, b"CAPABILITIES\r\n", |b| {
                    if b.starts_with(b"101") {
                        end_of_dot_list(b)
                    } else {
                        b.iter().position(|c| *c == b'\n').map(|i| i + 1)
                    }
                })
                .await;
                d.starttls = proto::has_capability(&caps, "STARTTLS");
                transcript.push_str(&caps);
                upgrade = Some(Upgrade::line(b"STARTTLS\r\n", "382"));
                quit = b"QUIT\r\n";
            }
            Greeting::Smtp | Greeting::Mail220 | Greeting::Ftp => {
                let mut is_smtp = g == Greeting::Smtp;
                let mut reply = String::new();
                if g != Greeting::Ftp {
                    reply = ask(&mut conn, b"EHLO portolan.invalid\r\n", end_of_coded_reply).await;
                    if reply.starts_with("250") {
                        is_smtp = true;
                    } else if is_smtp {
                        reply =
                            ask(&mut conn, b"HELO portolan.invalid\r\n", end_of_coded_reply).await;
                    }
                }
                if is_smtp {
                    d = found("smtp", printable(first.as_bytes(), 160));
                    d.starttls = proto::has_capability(&reply, "STARTTLS");
                    upgrade = Some(Upgrade::line(b"STARTTLS\r\n", "220"));
                } else {
                    d = found("ftp", printable(first.as_bytes(), 160));
                    reply = ask(&mut conn, b"FEAT\r\n", end_of_coded_reply).await;
                    d.starttls = proto::capability_line(&reply, "AUTH").is_some_and(|rest| {
                        let r = rest.to_ascii_uppercase();
                        r.contains("TLS") || r.contains("SSL")
                    });
                    upgrade = Some(Upgrade::line(b"AUTH TLS\r\n", "234"));
                }
                transcript.push_str(&reply);
                quit = b"QUIT\r\n";
            }
        }
        self.det.identify(&mut d, &transcript);
        // Take the offered upgrade, for the certificate behind it.
        match upgrade {
            Some(u) if d.starttls && conn.is_plain() => {
                d.tls = self.upgrade(conn, u).await;
            }
            _ => {
                if !quit.is_empty() {
                    let _ = conn.send(quit).await;
                }
            }
        }
        d
    }

    /// Sends the upgrade command and, on the positive reply, does the TLS handshake on
    /// the same connection.
    async fn upgrade(&self, mut conn: Conn, u: Upgrade) -> Option<TlsInfo> {
        let reply = match u.tag {
            Some(tag) => ask(&mut conn, u.cmd, tagged(tag)).await,
            None => {
                ask(&mut conn, u.cmd, |b| {
                    b.iter().position(|c| *c == b'\n').map(|i| i + 1)
                })
                .await
            }
        };
        if !reply.starts_with(u.ok) {
            return None;
        }
        self.handshake_on(conn).await
    }

    /// LDAP's StartTLS extended operation (RFC 4511, 4.14), then the handshake: the
    /// certificate's facts, and the connection inside TLS.
    async fn ldap_starttls(&self, mut conn: Conn, msgid: i64) -> Option<(TlsInfo, Conn)> {
        if ldap_ask(&mut conn, &proto::ldap::starttls(msgid))
            .await?
            .result
            != Some(0)
        {
            return None;
        }
        self.handshake_keeping(conn).await
    }

    /// A TLS handshake over an established (plain) connection, for its facts only.
    async fn handshake_on(&self, conn: Conn) -> Option<TlsInfo> {
        self.handshake_keeping(conn).await.map(|(info, _)| info)
    }

    /// A TLS handshake over an established (plain) connection: its facts, and the
    /// connection inside TLS.
    async fn handshake_keeping(&self, conn: Conn) -> Option<(TlsInfo, Conn)> {
        if conn.has_buffered() {
            // The server said more than the reply: not a clean point to start TLS.
            return None;
        }
        let cfg = tls::config(&[]).ok()?;
        let hs = tokio_rustls::TlsConnector::from(cfg).connect(self.server_name(), conn.into_io());
        let stream = timeout(self.opts.timeout, hs).await.ok()?.ok()?;
        let info = tls::info(stream.get_ref().1);
        let inner = Conn::new(Box::new(stream), self.opts.read_cap, self.opts.timeout).tls();
        Some((info, inner))
    }

    fn server_name(&self) -> ServerName<'static> {
        self.opts
            .server_name
            .as_deref()
            .and_then(|n| ServerName::try_from(n.to_string()).ok())
            .unwrap_or_else(|| ServerName::IpAddress(self.addr.ip().into()))
    }

    async fn telnet(&self, mut conn: Conn, greeting: Vec<u8>) -> Detection {
        let mut all_opts = Vec::new();
        let mut text = Vec::new();
        let first_round = proto::telnet_describe(&proto::telnet_parse(&greeting).0);
        let mut data = greeting;
        // Refuse each round of options as it comes; telnetd then prints its banner and
        // login prompt. A round ends at the prompt, or when new options want an answer.
        for _ in 0..6 {
            let (opts, t) = proto::telnet_parse(&data);
            text.extend_from_slice(&t);
            if is_prompt(&text) || (opts.is_empty() && !text.is_empty()) {
                break;
            }
            let refusal = proto::telnet_refuse(&opts);
            all_opts.extend(opts);
            if !refusal.is_empty() && conn.send(&refusal).await.is_err() {
                break;
            }
            let wait = conn.timeout().min(Duration::from_millis(1500));
            data = match conn
                .read_until(wait, |b| {
                    let (o, t) = proto::telnet_parse(b);
                    let whole = !b.ends_with(&[proto::IAC]) && !ends_mid_command(b);
                    (is_prompt(&t) || (!o.is_empty() && whole)).then_some(b.len())
                })
                .await
            {
                Ok((d, _)) if !d.is_empty() => d,
                _ => break,
            };
        }
        let opts = proto::telnet_describe(&all_opts);
        let shown = proto::text(&text);
        let shown = shown.trim();
        let mut d = found(
            "telnet",
            printable(format!("options: {first_round}; {shown}").as_bytes(), 160),
        );
        let transcript = format!("first: {first_round}\noptions: {opts}\n{shown}\n");
        self.det.identify(&mut d, &transcript);
        d
    }
}

/// True when telnet text ends in a prompt (`login: `, `Password:`).
fn is_prompt(text: &[u8]) -> bool {
    let t = text.trim_ascii_end();
    t.ends_with(b":") || t.ends_with(b">") || t.ends_with(b"#") || t.ends_with(b"$")
}

/// True when the data ends inside a three-byte option command.
fn ends_mid_command(b: &[u8]) -> bool {
    let n = b.len();
    n >= 2 && b[n - 2] == proto::IAC && (251..=254).contains(&b[n - 1])
}

/// How a protocol asks to start TLS: the command, and how its positive reply begins.
struct Upgrade {
    cmd: &'static [u8],
    ok: &'static str,
    /// For IMAP: the tag that ends the reply.
    tag: Option<&'static str>,
}

impl Upgrade {
    fn line(cmd: &'static [u8], ok: &'static str) -> Upgrade {
        Upgrade { cmd, ok, tag: None }
    }
}

/// Where a greeting ends: a whole coded reply, a line, telnet negotiation, or at once
/// for binary data.
fn end_of_greeting(b: &[u8]) -> Option<usize> {
    let first = *b.first()?;
    if first == proto::IAC {
        return Some(b.len());
    }
    if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
        return end_of_coded_reply(b);
    }
    // A MySQL packet: a 3-byte length and sequence 0; its header may come alone.
    if b.len() >= 4 && b[3] == 0 && b[2] == 0 && b[1] < 0x40 {
        let n = usize::from(b[0]) | usize::from(b[1]) << 8;
        if n >= 3 && b.get(4).is_none_or(|p| *p == 10 || *p == 0xff) {
            return (b.len() >= 4 + n).then_some(4 + n);
        }
    }
    if let Some(i) = b.iter().position(|c| *c == b'\n') {
        return Some(i + 1);
    }
    let binary = b
        .iter()
        .any(|c| *c < 0x20 && !matches!(*c, b'\r' | b'\n' | b'\t'));
    binary.then_some(b.len())
}

fn tagged(tag: &'static str) -> impl Fn(&[u8]) -> Option<usize> {
    move |b: &[u8]| {
        let mut start = 0;
        while let Some(i) = b[start..].iter().position(|c| *c == b'\n') {
            let line = &b[start..start + i + 1];
            start += i + 1;
            if line.starts_with(tag.as_bytes()) {
                return Some(start);
            }
        }
        None
    }
}

/// Sends an LDAP request and parses its reply, up to the message that ends it; `None`
/// when none came or it is no LDAP.
async fn ldap_ask(conn: &mut Conn, req: &[u8]) -> Option<proto::LdapReply> {
    conn.send(req).await.ok()?;
    let (data, _) = conn.read(proto::end_of_ldap_search).await.ok()?;
    proto::ldap_parse(&data)
}

/// Sends a command and returns the reply as text (empty when there was none).
async fn ask(conn: &mut Conn, cmd: &[u8], done: impl Fn(&[u8]) -> Option<usize>) -> String {
    if conn.send(cmd).await.is_err() {
        return String::new();
    }
    match conn.read(done).await {
        Ok((d, _)) => proto::text(&d),
        Err(_) => String::new(),
    }
}

pub fn dns_detection(det: &Detector, r: &proto::DnsReply) -> Detection {
    let ev = match r.txt.first() {
        Some(v) => format!("version.bind: {v}"),
        None => format!("version.bind: no answer (rcode {})", r.rcode),
    };
    let mut d = found("dns", printable(ev.as_bytes(), 160));
    let transcript: String = r
        .txt
        .iter()
        .map(|t| format!("version.bind: {t}\n"))
        .collect();
    det.identify(&mut d, &transcript);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_port_then_the_rest() {
        assert_eq!(plan(443)[0], Step::Tls);
        assert_eq!(plan(22)[0], Step::Greeting);
        assert_eq!(plan(8080)[0], Step::Http);
        assert_eq!(plan(389)[0], Step::Ldap);
        assert_eq!(plan(12345), ALL.to_vec());
        for p in [443u16, 22, 8080, 389, 53, 139, 1] {
            let mut s = plan(p);
            s.sort_by_key(|s| *s as u8);
            assert_eq!(s, ALL.to_vec(), "port {p}");
        }
    }

    #[test]
    fn long_imap_greeting_keeps_the_name_not_the_capabilities() {
        let courier = "* OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE ACL ACL2=UNION ENABLE UTF8=ACCEPT] Courier-IMAP ready. Copyright 1998-2019 Double Precision, Inc.  See COPYING for distribution information.";
        assert_eq!(
            imap_evidence(courier),
            "* OK [CAPABILITY …] Courier-IMAP ready. Copyright 1998-2019 Double Precision, Inc.  See COPYING for distribution information."
        );
        // One that fits is quoted whole.
        let dovecot = "* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.";
        assert_eq!(imap_evidence(dovecot), dovecot);
        // Too long without a capability list: cut as any evidence is.
        let long = format!("* OK {}", "x".repeat(300));
        assert_eq!(imap_evidence(&long).chars().count(), 161);
    }

    #[test]
    fn greeting_ends() {
        assert_eq!(end_of_greeting(b"SSH-2.0-x\r\nmore"), Some(11));
        assert_eq!(end_of_greeting(b"220-a\r\n220 b\r\n"), Some(14));
        assert_eq!(end_of_greeting(b"220-a\r\n"), None);
        assert_eq!(end_of_greeting(b"\x0a5.5\x00"), Some(1));
        assert_eq!(end_of_greeting(b"partial"), None);
        // MariaDB writes the handshake's header on its own.
        assert_eq!(end_of_greeting(b"d\x00\x00\x00"), None);
        let mut hs = b"\x05\x00\x00\x00\x0a5.5\x00".to_vec();
        assert_eq!(end_of_greeting(&hs), Some(9));
        hs.truncate(6);
        assert_eq!(end_of_greeting(&hs), None);
    }
}
