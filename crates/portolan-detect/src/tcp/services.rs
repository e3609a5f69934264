//! The conversations with the services the audit judges: each asks the one question its
//! protocol answers, then what tells whether the service served an anonymous client.

use std::time::Duration;

use portolan_payload::service as req;

use super::{Ctx, Outcome, Step, found};
use crate::conn::{Conn, Stop};
use crate::service::{self as svc, Heard};
use crate::{Detection, Detector, printable};

/// A detection from what a service said, with the signatures applied to its transcript
/// when the parser named no product.
pub fn heard(det: &Detector, h: Heard) -> Detection {
    let mut d = found(h.protocol, printable(h.evidence.as_bytes(), 200));
    d.unauthenticated = h.unauthenticated;
    if !h.transcript.is_empty() {
        det.identify(&mut d, &h.transcript);
    }
    if h.product.is_some() {
        d.product = h.product;
        d.version = h.version;
    }
    d
}

/// Sends `req` and reads the reply `done` delimits; `None` when nothing came.
async fn exchange(
    conn: &mut Conn,
    req: &[u8],
    done: impl Fn(&[u8]) -> Option<usize>,
) -> Option<Vec<u8>> {
    conn.send(req).await.ok()?;
    match conn.read(done).await {
        Ok((d, _)) if !d.is_empty() => Some(d),
        _ => None,
    }
}

/// The pauses before asking an X server again that closed without a reply (its reset
/// takes some 30 ms here; more under load).
const X11_AGAIN: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_millis(600),
];

fn xid() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ 0x706f_7274
}

impl Ctx {
    /// One of the steps that speak to a database, broker, RPC server, desktop or proxy.
    pub(super) async fn service(&self, conn: Conn, step: Step) -> Outcome {
        match step {
            Step::Postgres => self.postgres(conn).await,
            Step::Kv => self.kv(conn).await,
            Step::Mongo => {
                self.simple(
                    conn,
                    step,
                    &req::mongo_probe(),
                    svc::end_of_mongo,
                    svc::mongo_parse,
                )
                .await
            }
            Step::Mqtt => self.mqtt(conn).await,
            Step::Amqp => {
                self.simple(
                    conn,
                    step,
                    &req::AMQP_HEADER,
                    svc::end_of_amqp,
                    svc::amqp_parse,
                )
                .await
            }
            Step::Rpc => self.rpc(conn).await,
            Step::Rdp => {
                let out = self
                    .simple(
                        conn,
                        step,
                        &req::RDP_CONNECTION_REQUEST,
                        svc::end_of_tpkt,
                        svc::rdp_parse,
                    )
                    .await;
                match out {
                    Outcome::Found(d) if d.protocol.as_deref() == Some("rdp") => {
                        Outcome::Found(self.rdp_implementation(d).await)
                    }
                    other => other,
                }
            }
            Step::X11 => self.x11(conn).await,
            Step::Socks => {
                self.simple(conn, step, &req::SOCKS5_GREETING, svc::end_of_socks, |b| {
                    svc::socks5_parse(b).or_else(|| svc::socks4_parse(b))
                })
                .await
            }
            _ => Outcome::Silent,
        }
    }

    /// Which RDP server confirmed the connection: xrdp is the one that answers data sent
    /// before a connection request with a Disconnect Provider Ultimatum (a second
    /// connection). Nothing else names an implementation, so nothing else is claimed.
    async fn rdp_implementation(&self, mut d: Detection) -> Detection {
        let Ok(mut conn) = self.connect().await else {
            return d;
        };
        let reply = exchange(&mut conn, &svc::RDP_DATA_BEFORE_CONNECT, svc::end_of_tpkt).await;
        if reply.as_deref().is_some_and(svc::rdp_is_xrdp_disconnect) {
            d.product = Some("xrdp".into());
            d.evidence = printable(
                format!(
                    "{}; data before a connection request: Disconnect Provider Ultimatum",
                    d.evidence
                )
                .as_bytes(),
                200,
            );
        }
        d
    }

    /// X11's connection setup. An X server resets when its last client leaves, and
    /// closes a connection that arrives meanwhile without a word: the other probes of
    /// this port, or of the same server on another address, are such clients. A close
    /// without a reply (a FIN, or a reset when our request was left unread) is asked
    /// again, after the reset has had time to end.
    async fn x11(&self, mut conn: Conn) -> Outcome {
        let mut pauses = X11_AGAIN.into_iter();
        loop {
            if conn.send(&req::X11_SETUP).await.is_err() {
                return Outcome::Silent;
            }
            match conn.read(svc::end_of_x11).await {
                Ok((data, _)) if !data.is_empty() => {
                    return match svc::x11_parse(&data) {
                        Some(h) => Outcome::Found(heard(&self.det, h)),
                        None => self.classify(&data, Step::X11),
                    };
                }
                Ok((_, Stop::Eof)) => {}
                // Closed with our request unread: a reset, not a FIN.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                _ => return Outcome::Silent,
            }
            let Some(pause) = pauses.next() else {
                return Outcome::Silent;
            };
            tokio::time::sleep(pause).await;
            conn = match self.connect().await {
                Ok(c) => c,
                Err(_) => return Outcome::Silent,
            };
        }
    }

    /// One request, one reply, one parser.
    async fn simple(
        &self,
        mut conn: Conn,
        step: Step,
        request: &[u8],
        done: impl Fn(&[u8]) -> Option<usize>,
        parse: impl Fn(&[u8]) -> Option<Heard>,
    ) -> Outcome {
        let Some(data) = exchange(&mut conn, request, done).await else {
            return Outcome::Silent;
        };
        match parse(&data) {
            Some(h) => Outcome::Found(heard(&self.det, h)),
            None => self.classify(&data, step),
        }
    }

    /// PostgreSQL: the SSLRequest, then a startup message as `postgres` without a
    /// password (on the same connection when TLS was declined).
    async fn postgres(&self, mut conn: Conn) -> Outcome {
        let one = |b: &[u8]| match b {
            [b'S'] | [b'N'] => Some(1),
            [] | [_] => None,
            _ => Some(b.len()),
        };
        let Some(data) = exchange(&mut conn, &req::PG_SSL_REQUEST, one).await else {
            return Outcome::Silent;
        };
        let Some(offers_tls) = svc::pg_ssl_parse(&data) else {
            return self.classify(&data, Step::Postgres);
        };
        let mut tls = None;
        let mut conn = if offers_tls {
            tls = self.handshake_on(conn).await;
            match self.connect().await {
                Ok(c) => c,
                Err(_) => return Outcome::Silent,
            }
        } else {
            conn
        };
        let reply = exchange(&mut conn, &req::pg_startup("postgres"), svc::end_of_pg).await;
        let _ = conn.send(&req::PG_TERMINATE).await;
        let mut d = match reply.as_deref().and_then(svc::pg_parse) {
            Some(h) => heard(&self.det, h),
            None => {
                // The one-byte answer alone is weak evidence: keep it as a fallback.
                let mut d = found(
                    "postgresql",
                    format!(
                        "SSLRequest answered '{}'; no answer to the startup message",
                        if offers_tls { 'S' } else { 'N' }
                    ),
                );
                d.starttls = offers_tls;
                d.tls = tls;
                return Outcome::Weak(d);
            }
        };
        d.starttls = offers_tls;
        d.tls = tls;
        Outcome::Found(d)
    }

    /// memcached's `version`; a RESP error to it means Redis (or a server speaking its
    /// protocol), which is then asked `INFO server`.
    async fn kv(&self, mut conn: Conn) -> Outcome {
        let line = |b: &[u8]| b.iter().position(|c| *c == b'\n').map(|i| i + 1);
        let Some(data) = exchange(&mut conn, req::MEMCACHED_VERSION, line).await else {
            return Outcome::Silent;
        };
        if let Some(h) = svc::memcached_parse(&data) {
            return Outcome::Found(heard(&self.det, h));
        }
        let Some(err) = svc::resp_error(&data) else {
            return self.classify(&data, Step::Kv);
        };
        let info = exchange(&mut conn, req::REDIS_INFO, svc::end_of_resp).await;
        let _ = conn.send(b"QUIT\r\n").await;
        match info.as_deref().and_then(svc::redis_parse) {
            Some(h) => Outcome::Found(heard(&self.det, h)),
            None => {
                let mut d = found("redis", printable(format!("-{err}").as_bytes(), 160));
                self.det.identify(&mut d, &format!("error: {err}\n"));
                Outcome::Found(d)
            }
        }
    }

    /// MQTT: CONNECT without credentials; when accepted, the broker's `$SYS` version.
    async fn mqtt(&self, mut conn: Conn) -> Outcome {
        let Some(data) = exchange(
            &mut conn,
            &req::mqtt_connect("portolan-detect"),
            svc::end_of_mqtt,
        )
        .await
        else {
            return Outcome::Silent;
        };
        let Some(h) = svc::mqtt_connack(&data) else {
            return self.classify(&data, Step::Mqtt);
        };
        let mut transcript = String::new();
        if h.unauthenticated == Some(true)
            && conn
                .send(&req::mqtt_subscribe("$SYS/broker/version"))
                .await
                .is_ok()
        {
            // The broker sends its retained $SYS messages at once, if it has them.
            let wait = conn.timeout().min(Duration::from_millis(1500));
            for _ in 0..8 {
                let Ok((p, _)) = conn.read_until(wait, svc::end_of_mqtt).await else {
                    break;
                };
                if p.is_empty() {
                    break;
                }
                if let Some((topic, payload)) = svc::mqtt_publish(&p) {
                    if topic == "$SYS/broker/version" {
                        transcript = format!("broker version: {payload}\n");
                        break;
                    }
                }
            }
        }
        let _ = conn.send(&req::MQTT_DISCONNECT).await;
        let mut h = h;
        if !transcript.is_empty() {
            h.evidence.push_str(&format!("; {}", transcript.trim()));
        }
        h.transcript = transcript;
        Outcome::Found(heard(&self.det, h))
    }

    /// ONC RPC: the portmapper's DUMP; from another RPC server, NFS's NULL procedure.
    async fn rpc(&self, mut conn: Conn) -> Outcome {
        let x = xid();
        let Some(data) = exchange(
            &mut conn,
            &req::rpc_call_tcp(x, req::RPC_PORTMAP, 2, 4),
            svc::end_of_rpc,
        )
        .await
        else {
            return Outcome::Silent;
        };
        let Some(reply) = svc::rpc_unmark(&data) else {
            return self.classify(&data, Step::Rpc);
        };
        if let Some(h) = svc::rpcbind_heard(x, &reply) {
            return Outcome::Found(heard(&self.det, h));
        }
        let first = match svc::rpc_reply(x, &reply) {
            Some(r) => r,
            None => return self.classify(&data, Step::Rpc),
        };
        let first = format!("{first:?}");
        let x2 = x.wrapping_add(1);
        let nfs = exchange(
            &mut conn,
            &req::rpc_call_tcp(x2, req::RPC_NFS, 3, 0),
            svc::end_of_rpc,
        )
        .await
        .and_then(|d| svc::rpc_unmark(&d));
        let d = match nfs.as_deref().and_then(|r| svc::rpc_reply(x2, r)) {
            Some(svc::RpcReply::Success(_)) => {
                found("nfs", "NFS v3 NULL procedure answered".into())
            }
            Some(svc::RpcReply::Unavailable(2, Some((lo, hi)))) => {
                found("nfs", format!("NFS versions {lo} to {hi}"))
            }
            _ => found(
                "rpc",
                printable(
                    format!("ONC RPC; the portmapper program: {first}").as_bytes(),
                    160,
                ),
            ),
        };
        Outcome::Found(d)
    }

    /// After a greeting that names MySQL, rsync or RFB.
    pub(super) async fn greeted_service(
        &self,
        mut conn: Conn,
        g: crate::proto::Greeting,
        greeting: &[u8],
    ) -> Detection {
        use crate::proto::Greeting;
        match g {
            Greeting::Mysql => match svc::mysql_parse(greeting) {
                Some(h) => heard(&self.det, h),
                None => found("mysql", printable(greeting, 120)),
            },
            Greeting::Rsync => {
                let v = svc::rsync_greeting(greeting).unwrap_or_default();
                // Protocol 30 and later: the client's line names the digests it accepts
                // too; ours are the server's own.
                let hello = format!("{}\n#list\n", crate::proto::first_line(greeting));
                let list = exchange(&mut conn, hello.as_bytes(), |b| {
                    crate::conn::find(b, b"@RSYNCD: EXIT\n").map(|i| i + 14)
                })
                .await
                .unwrap_or_default();
                let modules = svc::rsync_modules(&list);
                let mut d = found(
                    "rsync",
                    printable(
                        format!(
                            "@RSYNCD protocol {v}; modules listed without authentication: {}",
                            if modules.is_empty() {
                                "none".to_string()
                            } else {
                                modules.join(", ")
                            }
                        )
                        .as_bytes(),
                        200,
                    ),
                );
                if !modules.is_empty() {
                    d.unauthenticated = Some(true);
                }
                self.det.identify(
                    &mut d,
                    &format!("protocol: {v}\nmodules: {}\n", modules.join(" ")),
                );
                d
            }
            Greeting::Vnc => {
                let (major, minor) = svc::rfb_version(greeting).unwrap_or((3, 3));
                let ours: &[u8] = if (major, minor) >= (3, 8) {
                    req::RFB_VERSION
                } else if minor >= 7 {
                    b"RFB 003.007\n"
                } else {
                    b"RFB 003.003\n"
                };
                let sec_minor = if (major, minor) >= (3, 8) { 8 } else { minor };
                let done = move |b: &[u8]| match svc::rfb_security(sec_minor, b) {
                    Some(_) => Some(b.len()),
                    None if b.len() > 300 => Some(b.len()),
                    None => None,
                };
                let reply = exchange(&mut conn, ours, done).await.unwrap_or_default();
                let mut ev = format!("RFB {major}.{minor}");
                let mut d = found("vnc", String::new());
                let mut types = String::new();
                match svc::rfb_security(sec_minor, &reply) {
                    Some(Ok(list)) => {
                        let names: Vec<String> =
                            list.iter().map(|t| svc::rfb_security_name(*t)).collect();
                        ev.push_str(&format!("; security types: {}", names.join(", ")));
                        d.unauthenticated = Some(list.contains(&1));
                        types = list.iter().map(|t| format!("{t} ")).collect();
                    }
                    Some(Err(reason)) => ev.push_str(&format!("; refused: {reason}")),
                    None => {}
                }
                d.evidence = printable(ev.as_bytes(), 200);
                let transcript = format!(
                    "{}\nsecurity: {}\n",
                    crate::proto::first_line(greeting),
                    types.trim()
                );
                self.det.identify(&mut d, &transcript);
                d
            }
            _ => Detection::nothing(printable(greeting, 120)),
        }
    }
}
