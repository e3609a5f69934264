//! What an HTTP answer tells beyond its `Server` header: the APIs that speak HTTP
//! (Elasticsearch and OpenSearch, the Docker Engine API, etcd, the Kubernetes API server,
//! the kubelet) and forward proxies (CONNECT, `Via`, `Proxy-Authenticate`).

use serde_json::Value;

use super::{Ctx, PROXY_PORTS};
use crate::conn::Conn;
use crate::{Detection, printable, proto};

/// A parsed HTTP response: status, lower-cased header names with their values, body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn parse(data: &[u8]) -> Option<Response> {
        let head = proto::http_parse(data)?;
        let mut lines = head.lines();
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers = lines
            .take(100)
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
            })
            .collect();
        Some(Response {
            status,
            headers,
            body: proto::http_body(data),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this answer to CONNECT opened a tunnel: a 2xx without a message body
    /// (RFC 9110 9.3.6: a proxy sends no Content-Length or Transfer-Encoding there). A web
    /// server that answers every method with its page (Caddy's `respond`) sends one.
    pub fn is_tunnel(&self) -> bool {
        (200..300).contains(&self.status)
            && self.body.is_empty()
            && self.header("transfer-encoding").is_none()
            && self
                .header("content-length")
                .is_none_or(|n| n.trim() == "0")
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

fn s(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(60).collect())
}

/// Elasticsearch or OpenSearch, from the JSON of `/` or a 401's headers.
pub fn search_engine(r: &Response) -> Option<Detection> {
    let mut d = Detection {
        protocol: Some("elasticsearch".into()),
        cleartext: true,
        ..Detection::default()
    };
    if let Some(j) = r.json() {
        let open = j["version"]["distribution"] == "opensearch";
        if j["tagline"] != "You Know, for Search" && !open {
            return None;
        }
        d.product = Some(if open { "OpenSearch" } else { "Elasticsearch" }.into());
        d.version = s(&j["version"]["number"]);
        d.unauthenticated = Some(r.status == 200);
        d.evidence = printable(
            format!(
                "GET / {}: cluster {}, version {}",
                r.status,
                s(&j["cluster_name"]).unwrap_or_default(),
                d.version.clone().unwrap_or_default()
            )
            .as_bytes(),
            160,
        );
        return Some(d);
    }
    if r.status != 401 {
        return None;
    }
    let realm = r.header("www-authenticate").unwrap_or("");
    let product = if realm.contains("OpenSearch") {
        "OpenSearch"
    } else if r.header("x-elastic-product") == Some("Elasticsearch")
        || realm.contains("realm=\"security\"")
    {
        "Elasticsearch"
    } else {
        return None;
    };
    d.product = Some(product.into());
    d.unauthenticated = Some(false);
    d.evidence = printable(format!("GET / 401: {realm}").as_bytes(), 160);
    Some(d)
}

/// What `GET /version` answered, for the Go servers that publish one.
pub fn version_json(j: &Value) -> Option<(&'static str, &'static str, Option<String>)> {
    if let Some(v) = s(&j["etcdserver"]) {
        return Some(("etcd", "etcd", Some(v)));
    }
    if let Some(v) = s(&j["gitVersion"]) {
        return Some(("http", "Kubernetes API server", Some(v)));
    }
    if j["ApiVersion"].is_string() {
        return Some(("docker", "Docker", s(&j["Version"])));
    }
    None
}

impl Ctx {
    /// One more request on a new connection of the same kind (plain or TLS).
    async fn http_request(&self, plain: bool, req: &[u8]) -> Option<Response> {
        let mut conn: Conn = if plain {
            self.connect().await.ok()?
        } else {
            self.tls_connect(&["http/1.1"]).await.ok()?.0
        };
        conn.send(req).await.ok()?;
        let (data, _) = conn.read(proto::end_of_http_message).await.ok()?;
        Response::parse(&data)
    }

    /// Looks behind an HTTP answer: the APIs served over HTTP, and forward proxies.
    pub(super) async fn http_follow_up(
        &self,
        mut d: Detection,
        data: &[u8],
        plain: bool,
    ) -> Detection {
        let Some(r) = Response::parse(data) else {
            return d;
        };
        let keep = |mut n: Detection, d: &Detection| {
            n.tls = d.tls.clone();
            n.cleartext = d.cleartext;
            n
        };
        if let Some(n) = search_engine(&r) {
            return keep(n, &d);
        }
        let server = r.header("server").unwrap_or("").to_string();
        let go_404 = r.status == 404 && r.body.starts_with(b"404 page not found");
        let docker = r.header("api-version").is_some() || server.starts_with("Docker/");
        if docker || go_404 {
            let req = portolan_payload::service::http_get_path(&self.host, "/version");
            if let Some(v) = self.http_request(plain, &req).await {
                if let Some((protocol, product, version)) = v.json().as_ref().and_then(version_json)
                {
                    d.protocol = Some(protocol.into());
                    d.product = Some(product.into());
                    d.version = version;
                    // Docker's and etcd's /version need no credentials anyway; only
                    // Docker's tells that the whole API is open.
                    if protocol == "docker" && v.status == 200 {
                        d.unauthenticated = Some(true);
                    }
                    d.evidence = printable(
                        format!(
                            "GET /version {}: {}",
                            v.status,
                            String::from_utf8_lossy(&v.body)
                        )
                        .as_bytes(),
                        160,
                    );
                    return d;
                }
            }
            if docker {
                d.protocol = Some("docker".into());
                d.product = Some("Docker".into());
                d.version = server
                    .strip_prefix("Docker/")
                    .and_then(|v| v.split_whitespace().next())
                    .map(str::to_string);
                return d;
            }
            let req = portolan_payload::service::http_get_path(&self.host, "/pods");
            if let Some(p) = self.http_request(plain, &req).await {
                if p.status == 200 && p.json().is_some_and(|j| j["kind"] == "PodList") {
                    d.protocol = Some("kubelet".into());
                    d.product = Some("kubelet".into());
                    d.unauthenticated = Some(true);
                    d.evidence = "GET /pods 200: PodList without authentication".into();
                    return d;
                }
            }
        }
        // Forward proxies.
        let named_proxy = d.product.as_deref().is_some_and(|p| {
            let p = p.to_ascii_lowercase();
            ["squid", "tinyproxy", "privoxy", "polipo", "ccproxy"]
                .iter()
                .any(|n| p.contains(n))
        });
        let asks_proxy_auth = r.status == 407 || r.header("proxy-authenticate").is_some();
        let via = r.header("via").map(str::to_string);
        let hinted = PROXY_PORTS.contains(&self.addr.port());
        if !(named_proxy
            || asks_proxy_auth
            || via.is_some()
            || r.header("x-squid-error").is_some()
            || hinted)
        {
            return d;
        }
        let authority = match self.addr {
            std::net::SocketAddr::V4(a) => a.to_string(),
            std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let connect = portolan_payload::service::http_connect(&authority);
        let c = self.http_request(plain, &connect).await;
        let status = c.as_ref().map(|c| c.status);
        let tunnel = c.as_ref().is_some_and(Response::is_tunnel);
        let is_proxy = named_proxy
            || asks_proxy_auth
            || r.header("x-squid-error").is_some()
            || tunnel
            || status == Some(407);
        if !is_proxy {
            return d;
        }
        d.protocol = Some("http-proxy".into());
        let mut ev = d.evidence.clone();
        if let Some(v) = &via {
            ev.push_str(&format!("; Via: {v}"));
        }
        match status {
            Some(_) if tunnel => {
                d.unauthenticated = Some(true);
                ev.push_str("; CONNECT relayed without authentication");
            }
            Some(407) => {
                d.unauthenticated = Some(false);
                ev.push_str("; CONNECT needs proxy authentication");
            }
            Some(s) => ev.push_str(&format!("; CONNECT answered {s}")),
            None => {}
        }
        if asks_proxy_auth && d.unauthenticated.is_none() {
            d.unauthenticated = Some(false);
        }
        d.evidence = printable(ev.as_bytes(), 200);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elasticsearch_and_opensearch() {
        let es = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 95\r\n\r\n{\"cluster_name\":\"c\",\"version\":{\"number\":\"8.11.1\"},\"tagline\":\"You Know, for Search\"}";
        let d = search_engine(&Response::parse(es).unwrap()).unwrap();
        assert_eq!(d.product.as_deref(), Some("Elasticsearch"));
        assert_eq!(d.version.as_deref(), Some("8.11.1"));
        assert_eq!(d.unauthenticated, Some(true));
        let locked = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"OpenSearch Security\"\r\n\r\n";
        let d = search_engine(&Response::parse(locked).unwrap()).unwrap();
        assert_eq!(d.product.as_deref(), Some("OpenSearch"));
        assert_eq!(d.unauthenticated, Some(false));
        let nginx = b"HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\nhello";
        assert!(search_engine(&Response::parse(nginx).unwrap()).is_none());
    }

    #[test]
    fn version_documents() {
        let etcd: Value =
            serde_json::from_str(r#"{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}"#).unwrap();
        assert_eq!(version_json(&etcd).unwrap().0, "etcd");
        let docker: Value =
            serde_json::from_str(r#"{"Version":"24.0.5","ApiVersion":"1.43"}"#).unwrap();
        assert_eq!(version_json(&docker).unwrap().2.as_deref(), Some("24.0.5"));
        assert!(version_json(&Value::Null).is_none());
    }

    #[test]
    fn web_server_answering_connect_with_its_page_is_not_a_proxy() {
        let caddy = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nServer: Caddy\r\nContent-Length: 19\r\n\r\nportolan test bed 3";
        assert!(!Response::parse(caddy).unwrap().is_tunnel());
        let tinyproxy =
            b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n";
        assert!(Response::parse(tinyproxy).unwrap().is_tunnel());
        let squid = b"HTTP/1.1 200 Connection established\r\nContent-Length: 0\r\n\r\n";
        assert!(Response::parse(squid).unwrap().is_tunnel());
        let refused = b"HTTP/1.1 403 Forbidden\r\n\r\n";
        assert!(!Response::parse(refused).unwrap().is_tunnel());
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(proto::end_of_http_message(r), Some(r.len()));
        assert_eq!(Response::parse(r).unwrap().body, b"{\"a\":1}");
    }
}
