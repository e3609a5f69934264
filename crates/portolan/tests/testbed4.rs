//! End to end, the fourth test bed (tests/testbed4/run.sh): container APIs and X
//! servers from Debian's packages. `portolan detect` must name, port by port, the
//! protocol, the product and the version the wire reveals (compared with the version of
//! the package, as `dpkg-query -W` reports it), and whether the service served an
//! anonymous client; `portolan scan --detect` must name the same.

use portolan_testkit::{Testbed, require_root, require_tool};
use testbed_check::{check_detect, check_scan, package_version, want};

mod testbed_check;

#[test]
fn testbed4_container_apis_and_x_servers_are_identified() {
    const NAME: &str = "testbed4_container_apis_and_x_servers_are_identified";
    if !require_root(NAME) {
        return;
    }
    for tool in [
        "ip",
        "nsenter",
        "unshare",
        "dockerd",
        "containerd",
        "podman",
        "Xvfb",
    ] {
        if !require_tool(NAME, tool) {
            return;
        }
    }
    let docker = package_version("docker.io");
    let podman = package_version("podman");
    let xorg = package_version("xvfb");

    let wants = vec![
        // The Docker Engine API over plain HTTP: GET / is a JSON 404, GET /version names
        // the engine; no authentication at all.
        want("2375", "docker", Some("Docker"))
            .version(docker.clone())
            .anonymous(true),
        want("12375", "docker", Some("Docker"))
            .version(docker)
            .anonymous(true),
        // The Docker Engine API over TLS with client certificates required
        // (--tlsverify): the wire shows a TLS server that asks for a client certificate
        // and refuses a client without one; it names no product.
        want("2376", "tls", None).anonymous(false),
        want("12376", "tls", None).anonymous(false),
        // Podman's Docker-compatible API, the same protocol: its /version lists a
        // "Podman Engine" component, which makes it no Docker.
        want("2:2375", "docker", Some("Podman"))
            .version(podman.clone())
            .anonymous(true),
        want("2:12375", "docker", Some("Podman"))
            .version(podman)
            .anonymous(true),
        // X11: with access control off (-ac) the setup reply is a success, with the
        // vendor and its release number; on, a failure with the reason, and no product
        // (the refusal names none). 6100 and 6101 are outside the ports that suggest X11.
        want("6000", "x11", Some("X.Org X server"))
            .version(xorg.clone())
            .anonymous(true),
        want("6100", "x11", Some("X.Org X server"))
            .version(xorg)
            .anonymous(true),
        want("6001", "x11", None).anonymous(false),
        want("6101", "x11", None).anonymous(false),
    ];

    let tb = Testbed::start("testbed4");
    let detected = check_detect("test bed 4", &tb, &wants);
    // What was heard, where no product is named: the server's reason for refusing.
    for port in ["6001", "6101"] {
        let evidence = detected[port]["evidence"].as_str().unwrap_or("");
        assert!(
            evidence.contains("connection refused: Authorization required"),
            "test bed 4, {port}: evidence {evidence:?} does not give Xvfb's reason"
        );
    }
    for port in ["2376", "12376"] {
        let evidence = detected[port]["evidence"].as_str().unwrap_or("");
        assert!(
            evidence.contains("asks for a client certificate (CAs: CN=portolan test bed 4 CA)"),
            "test bed 4, {port}: evidence {evidence:?} does not name the certificate request"
        );
    }
    check_scan("test bed 4", &tb, &wants, &detected);
}
