//! The Docker Engine API on ports that do not suggest it, from peers on 127.0.0.1 that
//! replay what Debian 12's dockerd 20.10.24 and Podman 4.3.1 answered on the fourth test
//! bed: detection must follow their 404 to `/version` and name the engine.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use portolan_detect::{Detection, Detector, Options};
use portolan_testkit::peer::Peer;

/// A server answering each request by its path (`None`: close without a word), until
/// stopped or 20 s have passed.
fn server(answer: fn(&str) -> Option<Vec<u8>>) -> Peer {
    Peer::tcp("127.0.0.1:0", move |mut c, _| {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 2048];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&req);
        let path = text.split_whitespace().nth(1).unwrap_or("");
        if let Some(a) = answer(path) {
            let _ = c.write_all(&a);
        }
    })
    .unwrap()
}

fn http(head: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.0 {head}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn detect(addr: SocketAddr) -> Detection {
    let opts = Options {
        timeout: Duration::from_secs(2),
        total: Duration::from_secs(10),
        read_cap: 64 * 1024,
        server_name: None,
    };
    Detector::default().detect_tcp_blocking(addr, &opts)
}

const DOCKER_VERSION: &str = r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24+dfsg1","Details":{"ApiVersion":"1.41"}},{"Name":"containerd","Version":"1.6.20~ds1"}],"Version":"20.10.24+dfsg1","ApiVersion":"1.41","Os":"linux","Arch":"amd64"}"#;
const PODMAN_VERSION: &str = r#"{"Platform":{"Name":"linux/amd64/debian-12"},"Components":[{"Name":"Podman Engine","Version":"4.3.1","Details":{"APIVersion":"4.3.1"}}],"Version":"4.3.1","ApiVersion":"1.41","Os":"linux","Arch":"amd64"}"#;

#[test]
fn docker_engine_on_a_moved_port_is_named_with_its_version() {
    let mut srv = server(|path| {
        Some(match path {
            "/version" => http(
                "200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nServer: Docker/20.10.24+dfsg1 (linux)",
                DOCKER_VERSION,
            ),
            _ => http(
                "404 Not Found\r\nContent-Type: application/json",
                "{\"message\":\"page not found\"}\n",
            ),
        })
    });
    let d = detect(srv.addr());
    srv.stop();
    assert_eq!(d.protocol.as_deref(), Some("docker"), "{d:?}");
    assert_eq!(d.product.as_deref(), Some("Docker"), "{d:?}");
    assert_eq!(d.version.as_deref(), Some("20.10.24"), "{d:?}");
    assert_eq!(d.unauthenticated, Some(true), "{d:?}");
    assert!(
        d.evidence
            .contains("GET /version 200: Engine 20.10.24+dfsg1, API 1.41"),
        "{}",
        d.evidence
    );
}

#[test]
fn podman_is_not_called_docker() {
    let mut srv = server(|path| {
        Some(match path {
            "/version" => http(
                "200 OK\r\nApi-Version: 1.41\r\nLibpod-Api-Version: 4.3.1\r\nServer: Libpod/4.3.1 (linux)",
                PODMAN_VERSION,
            ),
            _ => http(
                "404 Not Found\r\nContent-Type: text/plain; charset=utf-8",
                "Not Found\n",
            ),
        })
    });
    let d = detect(srv.addr());
    srv.stop();
    assert_eq!(d.protocol.as_deref(), Some("docker"), "{d:?}");
    assert_eq!(d.product.as_deref(), Some("Podman"), "{d:?}");
    assert_eq!(d.version.as_deref(), Some("4.3.1"), "{d:?}");
    assert_eq!(d.unauthenticated, Some(true), "{d:?}");
}

/// A web site's 404 page is no API: no /version asked of it is believed, and nothing is
/// named.
#[test]
fn a_404_page_with_a_version_path_is_still_plain_http() {
    let mut srv = server(|path| {
        Some(match path {
            "/version" => http("200 OK\r\nContent-Type: text/html", "<html>1.0</html>"),
            _ => http(
                "404 Not Found\r\nContent-Type: text/plain",
                "nothing here\n",
            ),
        })
    });
    let d = detect(srv.addr());
    srv.stop();
    assert_eq!(d.protocol.as_deref(), Some("http"), "{d:?}");
    assert_eq!(d.product, None, "{d:?}");
    assert_eq!(d.unauthenticated, None, "{d:?}");
}

/// The API's headers alone, when /version answers nothing usable: the engine they name.
#[test]
fn docker_headers_without_a_version_document() {
    let mut srv = server(|path| match path {
        "/version" => None,
        _ => Some(http(
            "200 OK\r\nApi-Version: 1.41\r\nServer: Libpod/4.3.1 (linux)",
            "OK",
        )),
    });
    let d = detect(srv.addr());
    srv.stop();
    assert_eq!(d.protocol.as_deref(), Some("docker"), "{d:?}");
    assert_eq!(d.product.as_deref(), Some("Podman"), "{d:?}");
    assert_eq!(d.version.as_deref(), Some("4.3.1"), "{d:?}");
    assert_eq!(d.unauthenticated, None, "{d:?}");
}
