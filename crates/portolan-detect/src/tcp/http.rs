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
        let (product, v) = engine(j);
        return Some(("docker", product, v.map(|v| semver_core(&v))));
    }
    None
}

/// Which implementation of the Docker Engine API a `/version` document comes from, and
/// the engine's version as it names it: Podman lists a component "Podman Engine",
/// Docker's engine is the component "Engine" (or, before components, the top level).
fn engine(j: &Value) -> (&'static str, Option<String>) {
    let components = j["Components"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let named = |name: &str| {
        components
            .iter()
            .take(32)
            .find(|c| c["Name"] == name)
            .map(|c| s(&c["Version"]))
    };
    if let Some(v) = named("Podman Engine") {
        return ("Podman", v);
    }
    (
        "Docker",
        named("Engine").flatten().or_else(|| s(&j["Version"])),
    )
}

/// A version without its build metadata (`20.10.24+dfsg1` -> `20.10.24`: after `+`, as
/// semantic versioning has it, a packager's mark that orders nothing).
fn semver_core(v: &str) -> String {
    v.split_once('+').map_or(v, |(core, _)| core).to_string()
}

/// One line on a Docker Engine API `/version` document: the engine and its version,
/// the API version, the platform.
fn engine_summary(j: &Value) -> String {
    let (product, v) = engine(j);
    let mut out = format!(
        "{} {}, API {}",
        if product == "Podman" {
            "Podman Engine"
        } else {
            "Engine"
        },
        v.unwrap_or_else(|| "(no version)".into()),
        s(&j["ApiVersion"]).unwrap_or_default()
    );
    if let (Some(os), Some(arch)) = (s(&j["Os"]), s(&j["Arch"])) {
        out.push_str(&format!(", {os}/{arch}"));
    }
    out
}

/// Whether an answer to `GET /` looks like an API server's rather than a web site's: a
/// 404 without an HTML page (Go's `404 page not found`, Docker's
/// `{"message":"page not found"}`, Podman's `Not Found`), or the Docker API's headers.
fn api_like(r: &Response) -> bool {
    let server = r.header("server").unwrap_or("");
    let html = r.body.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'<');
    r.header("api-version").is_some()
        || server.starts_with("Docker/")
        || server.starts_with("Libpod/")
        || (r.status == 404 && !html && r.body.len() <= 512)
}

/// The Docker Engine API implementation that an answer's headers name, with its
/// version: `Server: Docker/20.10.24+dfsg1 (linux)`, `Server: Libpod/4.3.1 (linux)`.
fn engine_from_headers(r: &Response) -> Option<(&'static str, Option<String>)> {
    let server = r.header("server").unwrap_or("");
    let version = |rest: &str| {
        rest.split_whitespace()
            .next()
            .filter(|v| !v.is_empty())
            .map(semver_core)
    };
    if let Some(rest) = server.strip_prefix("Libpod/") {
        return Some(("Podman", version(rest)));
    }
    if let Some(rest) = server.strip_prefix("Docker/") {
        return Some(("Docker", version(rest)));
    }
    if let Some(v) = r.header("libpod-api-version") {
        return Some(("Podman", version(v)));
    }
    r.header("api-version").map(|_| ("Docker", None))
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
        let go_404 = r.status == 404 && r.body.starts_with(b"404 page not found");
        if api_like(&r) {
            let req = portolan_payload::service::http_get_path(&self.host, "/version");
            if let Some(v) = self.http_request(plain, &req).await {
                let json = v.json();
                if let Some((protocol, product, version)) = json.as_ref().and_then(version_json) {
                    d.protocol = Some(protocol.into());
                    d.product = Some(product.into());
                    d.version = version;
                    let body = match &json {
                        Some(j) if protocol == "docker" => engine_summary(j),
                        _ => String::from_utf8_lossy(&v.body).into_owned(),
                    };
                    // The Docker Engine API has no authentication of its own over plain
                    // TCP: its /version served means every call is served. etcd's
                    // /version tells nothing about the rest of its API.
                    if protocol == "docker" && v.status == 200 {
                        d.unauthenticated = Some(true);
                        d.evidence = printable(
                            format!(
                                "GET /version {}: {body}; served without authentication",
                                v.status
                            )
                            .as_bytes(),
                            200,
                        );
                    } else {
                        d.evidence =
                            printable(format!("GET /version {}: {body}", v.status).as_bytes(), 160);
                    }
                    return d;
                }
            }
            if let Some((product, version)) = engine_from_headers(&r) {
                d.protocol = Some("docker".into());
                d.product = Some(product.into());
                d.version = version;
                return d;
            }
        }
        if go_404 {
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
        assert_eq!(version_json(&docker).unwrap().1, "Docker");
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

    /// GET / and GET /version as Debian 12's dockerd 20.10.24 and Podman 4.3.1 answered
    /// them on the fourth test bed (Date headers and some of the details cut).
    const DOCKER_ROOT: &[u8] = b"HTTP/1.0 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{\"message\":\"page not found\"}\n";
    const DOCKER_VERSION: &str = r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24+dfsg1","Details":{"ApiVersion":"1.41","Arch":"amd64","GitCommit":"5d6db84","GoVersion":"go1.19.8","MinAPIVersion":"1.12","Os":"linux"}},{"Name":"containerd","Version":"1.6.20~ds1","Details":{"GitCommit":"1.6.20~ds1-1+deb12u3"}},{"Name":"runc","Version":"1.1.5+ds1","Details":{"GitCommit":"1.1.5+ds1-1+deb12u1"}},{"Name":"docker-init","Version":"0.19.0","Details":{"GitCommit":""}}],"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","GitCommit":"5d6db84","GoVersion":"go1.19.8","Os":"linux","Arch":"amd64"}"#;
    const PODMAN_ROOT: &[u8] = b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 10\r\n\r\nNot Found\n";
    const PODMAN_VERSION: &str = r#"{"Platform":{"Name":"linux/amd64/debian-12"},"Components":[{"Name":"Podman Engine","Version":"4.3.1","Details":{"APIVersion":"4.3.1","Arch":"amd64","MinAPIVersion":"4.0.0","Os":"linux"}},{"Name":"Conmon","Version":"conmon version 2.1.6, commit: unknown","Details":{"Package":"conmon_2.1.6+ds1-1_amd64"}}],"Version":"4.3.1","ApiVersion":"1.41","MinAPIVersion":"1.24","GitCommit":"","GoVersion":"go1.19.8","Os":"linux","Arch":"amd64"}"#;

    #[test]
    fn docker_and_podman_version_documents_name_their_engine() {
        let docker: Value = serde_json::from_str(DOCKER_VERSION).unwrap();
        assert_eq!(
            version_json(&docker),
            Some(("docker", "Docker", Some("20.10.24".into())))
        );
        assert_eq!(
            engine_summary(&docker),
            "Engine 20.10.24+dfsg1, API 1.41, linux/amd64"
        );
        let podman: Value = serde_json::from_str(PODMAN_VERSION).unwrap();
        assert_eq!(
            version_json(&podman),
            Some(("docker", "Podman", Some("4.3.1".into())))
        );
        assert_eq!(
            engine_summary(&podman),
            "Podman Engine 4.3.1, API 1.41, linux/amd64"
        );
        // A Podman Engine component without a version: Podman, no version guessed from
        // the API's.
        let bare: Value = serde_json::from_str(
            r#"{"Components":[{"Name":"Podman Engine"}],"ApiVersion":"1.41","Version":"4.3.1"}"#,
        )
        .unwrap();
        assert_eq!(version_json(&bare), Some(("docker", "Podman", None)));
    }

    #[test]
    fn api_servers_404_is_told_from_a_web_sites() {
        assert!(api_like(&Response::parse(DOCKER_ROOT).unwrap()));
        assert!(api_like(&Response::parse(PODMAN_ROOT).unwrap()));
        let go = b"HTTP/1.1 404 Not Found\r\nContent-Length: 19\r\n\r\n404 page not found\n";
        assert!(api_like(&Response::parse(go).unwrap()));
        let page =
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 30\r\n\r\n\n<html><body>gone</body></html>";
        assert!(!api_like(&Response::parse(page).unwrap()));
        let site = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\n\r\nhello";
        assert!(!api_like(&Response::parse(site).unwrap()));
    }

    #[test]
    fn ping_headers_name_docker_or_podman() {
        let docker = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/20.10.24+dfsg1 (linux)\r\nContent-Length: 2\r\n\r\nOK";
        let r = Response::parse(docker).unwrap();
        assert!(api_like(&r));
        assert_eq!(
            engine_from_headers(&r),
            Some(("Docker", Some("20.10.24".into())))
        );
        let podman = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nLibpod-Api-Version: 4.3.1\r\nServer: Libpod/4.3.1 (linux)\r\nContent-Length: 2\r\n\r\nOK";
        let r = Response::parse(podman).unwrap();
        assert!(api_like(&r));
        assert_eq!(
            engine_from_headers(&r),
            Some(("Podman", Some("4.3.1".into())))
        );
        let plain = b"HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\n";
        assert_eq!(engine_from_headers(&Response::parse(plain).unwrap()), None);
    }
}
