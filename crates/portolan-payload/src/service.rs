//! The questions detection asks the services the audit judges: databases, caches,
//! brokers, RPC, remote desktops and proxies. Each is the smallest well-formed request of
//! its protocol, written from the protocol's specification; none carries credentials.

/// PostgreSQL's SSLRequest (protocol 3, "Message Formats"): length 8, code 80877103.
pub const PG_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A PostgreSQL StartupMessage (protocol 3.0) for `user` on database `user`, with no
/// password: the server answers with its authentication request, or with
/// AuthenticationOk and its parameters when it trusts the client.
pub fn pg_startup(user: &str) -> Vec<u8> {
    let mut body = vec![0, 3, 0, 0];
    for (k, v) in [
        ("user", user),
        ("database", user),
        ("application_name", "portolan"),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    m.extend(body);
    m
}

/// PostgreSQL's Terminate message.
pub const PG_TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];

/// memcached's text `version` command; over UDP it follows the 8-byte frame header.
pub const MEMCACHED_VERSION: &[u8] = b"version\r\n";

/// memcached's `version` over UDP: request ID, sequence 0, one datagram, reserved.
pub fn memcached_udp_version(id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
    m.extend_from_slice(MEMCACHED_VERSION);
    m
}

/// Redis: `INFO server` as an inline command.
pub const REDIS_INFO: &[u8] = b"INFO server\r\n";

fn bson_doc(fields: &[(&str, BsonValue<'_>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in fields {
        match v {
            BsonValue::Int(i) => {
                body.push(0x10);
                body.extend_from_slice(k.as_bytes());
                body.push(0);
                body.extend_from_slice(&i.to_le_bytes());
            }
            BsonValue::Str(s) => {
                body.push(0x02);
                body.extend_from_slice(k.as_bytes());
                body.push(0);
                body.extend_from_slice(&((s.len() + 1) as i32).to_le_bytes());
                body.extend_from_slice(s.as_bytes());
                body.push(0);
            }
            BsonValue::Bool(b) => {
                body.push(0x08);
                body.extend_from_slice(k.as_bytes());
                body.push(0);
                body.push(u8::from(*b));
            }
        }
    }
    body.push(0);
    let mut doc = ((body.len() + 4) as i32).to_le_bytes().to_vec();
    doc.extend(body);
    doc
}

enum BsonValue<'a> {
    Int(i32),
    Str(&'a str),
    Bool(bool),
}

/// A MongoDB OP_MSG (opcode 2013) carrying one command document.
fn mongo_msg(request_id: i32, doc: Vec<u8>) -> Vec<u8> {
    let mut body = request_id.to_le_bytes().to_vec();
    body.extend_from_slice(&0i32.to_le_bytes()); // responseTo
    body.extend_from_slice(&2013i32.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    body.push(0); // section kind 0: the body
    body.extend(doc);
    let mut m = ((body.len() + 4) as i32).to_le_bytes().to_vec();
    m.extend(body);
    m
}

/// MongoDB: `hello`, `buildInfo` and `listDatabases` (names only) on `admin`, request
/// IDs 1, 2 and 3. The first two need no authentication; the third tells whether the
/// server demands it.
pub fn mongo_probe() -> Vec<u8> {
    let mut m = mongo_msg(
        1,
        bson_doc(&[
            ("hello", BsonValue::Int(1)),
            ("$db", BsonValue::Str("admin")),
        ]),
    );
    m.extend(mongo_msg(
        2,
        bson_doc(&[
            ("buildInfo", BsonValue::Int(1)),
            ("$db", BsonValue::Str("admin")),
        ]),
    ));
    m.extend(mongo_msg(
        3,
        bson_doc(&[
            ("listDatabases", BsonValue::Int(1)),
            ("nameOnly", BsonValue::Bool(true)),
            ("$db", BsonValue::Str("admin")),
        ]),
    ));
    m
}

/// An MQTT 3.1.1 CONNECT: clean session, keep-alive 30 s, no user name or password.
pub fn mqtt_connect(client_id: &str) -> Vec<u8> {
    let id = &client_id.as_bytes()[..client_id.len().min(23)];
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30];
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id);
    let mut m = vec![0x10, body.len() as u8];
    m.extend(body);
    m
}

/// An MQTT SUBSCRIBE (packet ID 1, QoS 0) to `topic`.
pub fn mqtt_subscribe(topic: &str) -> Vec<u8> {
    let t = &topic.as_bytes()[..topic.len().min(100)];
    let mut body = vec![0, 1];
    body.extend_from_slice(&(t.len() as u16).to_be_bytes());
    body.extend_from_slice(t);
    body.push(0);
    let mut m = vec![0x82, body.len() as u8];
    m.extend(body);
    m
}

pub const MQTT_DISCONNECT: [u8; 2] = [0xe0, 0];

/// The AMQP 0-9-1 protocol header.
pub const AMQP_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

/// The ONC RPC program numbers detection asks about (RFC 5531, RFC 1833, RFC 1813).
pub const RPC_PORTMAP: u32 = 100000;
pub const RPC_NFS: u32 = 100003;

/// An ONC RPC call with AUTH_NONE (RFC 5531), without record marking.
pub fn rpc_call(xid: u32, prog: u32, vers: u32, proc_: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    for w in [xid, 0, 2, prog, vers, proc_, 0, 0, 0, 0] {
        m.extend_from_slice(&w.to_be_bytes());
    }
    m
}

/// The same call over TCP: one record, its last fragment.
pub fn rpc_call_tcp(xid: u32, prog: u32, vers: u32, proc_: u32) -> Vec<u8> {
    let call = rpc_call(xid, prog, vers, proc_);
    let mut m = (0x8000_0000u32 | call.len() as u32).to_be_bytes().to_vec();
    m.extend(call);
    m
}

/// The portmapper's DUMP (version 2, procedure 4): every registered program.
pub fn rpc_dump(xid: u32) -> Vec<u8> {
    rpc_call(xid, RPC_PORTMAP, 2, 4)
}

/// The RFB version we answer a VNC server with.
pub const RFB_VERSION: &[u8] = b"RFB 003.008\n";

/// An X.224 Connection Request carrying an RDP Negotiation Request (MS-RDPBCGR 2.2.1.1)
/// for TLS, CredSSP and CredSSP with early user authorization.
pub const RDP_CONNECTION_REQUEST: [u8; 19] = [
    3, 0, 0, 19, // TPKT, length 19
    14, 0xe0, 0, 0, 0, 0, 0, // X.224 CR TPDU
    1, 0, 8, 0, 0x0b, 0, 0, 0, // RDP_NEG_REQ: PROTOCOL_SSL | HYBRID | HYBRID_EX
];

/// An X11 connection setup (little-endian, protocol 11.0) with no authorization.
pub const X11_SETUP: [u8; 12] = [b'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// A SOCKS5 greeting offering "no authentication" and "user name/password" (RFC 1928).
pub const SOCKS5_GREETING: [u8; 4] = [5, 2, 0, 2];

/// A SOCKS4 CONNECT to `ip:port` with an empty user ID.
pub fn socks4_connect(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut m = vec![4, 1];
    m.extend_from_slice(&port.to_be_bytes());
    m.extend_from_slice(&ip);
    m.push(0);
    m
}

/// An HTTP CONNECT to `authority` (`host:port`).
pub fn http_connect(authority: &str) -> Vec<u8> {
    format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: portolan\r\n\r\n")
        .into_bytes()
}

/// An HTTP/1.0 GET of `path`.
pub fn http_get_path(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: portolan\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_self_consistent() {
        let s = pg_startup("postgres");
        assert_eq!(
            u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize,
            s.len()
        );
        assert_eq!(&s[4..8], &[0, 3, 0, 0]);
        let m = mongo_probe();
        let first = i32::from_le_bytes([m[0], m[1], m[2], m[3]]) as usize;
        assert!(first < m.len());
        assert_eq!(i32::from_le_bytes([m[12], m[13], m[14], m[15]]), 2013);
        let c = mqtt_connect("portolan");
        assert_eq!(usize::from(c[1]), c.len() - 2);
        let r = rpc_call_tcp(7, RPC_PORTMAP, 2, 4);
        assert_eq!(r.len(), 44);
        assert_eq!(r[0], 0x80);
        assert_eq!(memcached_udp_version(1).len(), 8 + 9);
        assert_eq!(usize::from(RDP_CONNECTION_REQUEST[3]), 19);
    }
}
