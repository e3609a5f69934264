//! Firewall rulesets: generated from every profile and checked by the real tools in a
//! network namespace; then applied in a target namespace and probed from a scanner
//! namespace, so only the policy's ports answer.

use std::io::Write;
use std::time::{Duration, Instant};

use portolan_audit::policy::Policy;
use portolan_audit::profiles::{self, PROFILES};
use portolan_firewall::apply::{self, Nft, Outcome};
use portolan_firewall::{Format, KeepSsh, Plan};
use portolan_registry::Registry;
use portolan_testkit::{Netns, Pair, require_root, require_tool};

const EXAMPLE: &str = r#"
name = "example"
[[allow]]
service = "ssh"
from = ["198.18.0.0/24", "2001:2::/64"]
[[allow]]
service = ["smtp", "6000-6010/tcp"]
[[allow]]
service = "https"
bind = ["198.18.0.2", "2001:2::2"]
[[allow]]
service = "domain"
from = ["198.18.0.0/15"]
[[allow]]
service = "postgresql"
bind = "loopback"
"#;

fn plans() -> Vec<Plan> {
    let reg = Registry::embedded();
    let mut out: Vec<Plan> = PROFILES
        .iter()
        .map(|p| Plan::new(&p.policy(reg).unwrap(), None, "test"))
        .collect();
    let example = Policy::parse(EXAMPLE, "example.toml", reg).unwrap();
    let keep = KeepSsh::from_ssh_connection("198.18.5.5 50000 198.18.0.2 2222");
    let mut plan = Plan::new(&example, keep, "test");
    plan.keep_tcp.push(2222);
    out.push(plan);
    let keep6 = KeepSsh::from_ssh_connection("2001:2::9 50000 2001:2::2 22");
    out.push(Plan::new(&example, keep6, "test"));
    out
}

fn ns_nft(ns: &Netns) -> Nft {
    Nft {
        program: vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            ns.name().into(),
            "nft".into(),
        ],
    }
}

#[test]
fn nftables_rulesets_pass_nft_check() {
    if !require_root("nftables_rulesets_pass_nft_check") || !require_tool("nft", "nft") {
        return;
    }
    let ns = Netns::new("pa").unwrap();
    let nft = ns_nft(&ns);
    for plan in plans() {
        let text = plan.render(Format::Nftables);
        nft.check(&text)
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", plan.policy));
        // Loading it twice works: the table is replaced, not duplicated.
        nft.load(&text).unwrap();
        nft.load(&text).unwrap();
        let listed = nft.list().unwrap();
        assert_eq!(listed.matches("table inet portolan").count(), 1, "{listed}");
    }
}

#[test]
fn iptables_rulesets_pass_restore_test() {
    if !require_root("iptables_rulesets_pass_restore_test")
        || !require_tool("iptables", "iptables-restore")
    {
        return;
    }
    let ns = Netns::new("pa").unwrap();
    for plan in plans() {
        for (format, tool) in [
            (Format::Iptables, "iptables-restore"),
            (Format::Ip6tables, "ip6tables-restore"),
        ] {
            let text = plan.render(format);
            let mut child = ns
                .command(tool)
                .arg("--test")
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{tool} {}: {}\n{text}",
                plan.policy,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn rulesets_name_the_policy_ports() {
    let plan = &plans()[PROFILES.len()];
    let nft = plan.render(Format::Nftables);
    assert!(nft.contains("policy drop;"), "{nft}");
    assert!(
        nft.contains("ip saddr 198.18.0.0/24 tcp dport 22 accept"),
        "{nft}"
    );
    assert!(
        nft.contains("ip6 saddr 2001:2::/64 tcp dport 22 accept"),
        "{nft}"
    );
    assert!(nft.contains("tcp dport 6000-6010 accept"), "{nft}");
    assert!(
        nft.contains("ip daddr 198.18.0.2 tcp dport 443 accept"),
        "{nft}"
    );
    assert!(
        nft.contains("ip saddr 198.18.5.5 tcp dport 2222 accept"),
        "{nft}"
    );
    assert!(
        nft.contains("ip saddr 198.18.0.0/15 udp dport 53 accept"),
        "{nft}"
    );
    assert!(!nft.contains("ip6 saddr 198"), "{nft}");
    assert!(
        !nft.contains("dport 5432"),
        "loopback-only service opened\n{nft}"
    );
    let ufw = plan.render(Format::Ufw);
    assert!(ufw.contains("ufw default deny incoming"), "{ufw}");
    assert!(
        ufw.contains("ufw allow proto tcp from 198.18.0.0/24 to any port 22"),
        "{ufw}"
    );
    assert!(
        ufw.contains("ufw allow proto tcp from any to any port 6000:6010"),
        "{ufw}"
    );
    assert!(
        ufw.contains("ufw allow proto tcp from 198.18.5.5 to any port 2222"),
        "{ufw}"
    );
    let v4 = plan.render(Format::Iptables);
    assert!(v4.contains(":INPUT DROP"), "{v4}");
    assert!(
        v4.contains("-A INPUT -s 198.18.0.0/24 -p tcp -m tcp --dport 22"),
        "{v4}"
    );
    assert!(!v4.contains("2001:2"), "{v4}");
    let v6 = plan.render(Format::Ip6tables);
    assert!(
        v6.contains("-A INPUT -s 2001:2::/64 -p tcp -m tcp --dport 22"),
        "{v6}"
    );
    assert!(
        !v6.contains("--dport 53 "),
        "DNS is allowed from IPv4 sources only\n{v6}"
    );
}

/// Python listeners on TCP ports in the target namespace.
fn listen(ns: &mut Netns, ports: &[u16]) {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let script = format!(
        "import socket, time\n\
         socks = []\n\
         for p in [{}]:\n\
         \x20   s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n\
         \x20   s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
         \x20   s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         \x20   s.bind(('::', p)); s.listen(16); socks.append(s)\n\
         time.sleep(120)\n",
        list.join(", ")
    );
    ns.spawn("python3", &["-c", &script]).unwrap();
}

/// What a connect from the scanner namespace sees: open, closed (refused) or filtered
/// (no answer within the timeout).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Seen {
    Open,
    Closed,
    Filtered,
}

fn probe(pair: &Pair, addr: &str, ports: &[u16]) -> Vec<(u16, Seen)> {
    // Run the connects inside the scanner namespace with python3 (the scanner crate is
    // wired in by the binary's tests once it is on main).
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let script = format!(
        "import socket, concurrent.futures as cf\n\
         def probe(p):\n\
         \x20   s = socket.socket(socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET)\n\
         \x20   s.settimeout(0.6)\n\
         \x20   try:\n\
         \x20       s.connect(('{addr}', p)); r = 'open'\n\
         \x20   except ConnectionRefusedError: r = 'closed'\n\
         \x20   except (socket.timeout, OSError): r = 'filtered'\n\
         \x20   s.close(); return p, r\n\
         with cf.ThreadPoolExecutor(32) as ex:\n\
         \x20   for p, r in ex.map(probe, [{}]): print(p, r)\n",
        list.join(", ")
    );
    let out = pair.scanner.exec("python3", &["-c", &script]).unwrap();
    out.lines()
        .map(|l| {
            let (p, r) = l.split_once(' ').unwrap();
            let seen = match r {
                "open" => Seen::Open,
                "closed" => Seen::Closed,
                _ => Seen::Filtered,
            };
            (p.parse().unwrap(), seen)
        })
        .collect()
}

fn wait_listening(pair: &Pair, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if probe(pair, Pair::TARGET_V4, &[port])[0].1 == Seen::Open {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("listeners did not start");
}

const MAIL_PORTS: &[u16] = &[22, 25, 465, 587, 993, 995, 4190];
const OTHER_PORTS: &[u16] = &[21, 23, 53, 80, 110, 143, 443, 3306, 8080];

#[test]
fn mail_server_firewall_closes_everything_else() {
    if !require_root("mail_server_firewall_closes_everything_else")
        || !require_tool("nft", "nft")
        || !require_tool("python3", "python3")
    {
        return;
    }
    let mut pair = Pair::new("pa").unwrap();
    let all: Vec<u16> = MAIL_PORTS.iter().chain(OTHER_PORTS).copied().collect();
    listen(&mut pair.target, &all);
    wait_listening(&pair, 25);
    // Before: everything answers.
    for (p, seen) in probe(&pair, Pair::TARGET_V4, &all) {
        assert_eq!(seen, Seen::Open, "port {p} before the firewall");
    }

    let policy = profiles::load("mail-server", Registry::embedded()).unwrap();
    let ruleset = Plan::new(&policy, None, "test").render(Format::Nftables);
    let nft = ns_nft(&pair.target);
    let dir = tempdir();
    let (outcome, saved) =
        apply::apply(&nft, &ruleset, &dir, Duration::from_secs(30), &mut |_| true).unwrap();
    assert_eq!(outcome, Outcome::Kept);
    assert!(saved.full);

    for addr in [Pair::TARGET_V4, Pair::TARGET_V6] {
        for (p, seen) in probe(&pair, addr, &all) {
            let want = if MAIL_PORTS.contains(&p) {
                Seen::Open
            } else {
                Seen::Filtered
            };
            assert_eq!(seen, want, "port {p} on {addr} after the firewall");
        }
    }
    // The IPv6 probes above needed neighbour discovery through the firewall.
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "portolan-audit-test-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn unconfirmed_apply_rolls_back() {
    if !require_root("unconfirmed_apply_rolls_back") || !require_tool("nft", "nft") {
        return;
    }
    let ns = Netns::new("pa").unwrap();
    let nft = ns_nft(&ns);
    ns.nft("table ip keepme {\n chain c {\n type filter hook input priority 0; policy accept;\n }\n}\n")
        .unwrap();
    let before = nft.list().unwrap();
    let policy = profiles::load("ssh-only", Registry::embedded()).unwrap();
    let ruleset = Plan::new(&policy, None, "test").render(Format::Nftables);
    let dir = tempdir();
    let mut asked = None;
    let (outcome, _) = apply::apply(&nft, &ruleset, &dir, Duration::from_secs(30), &mut |t| {
        asked = Some(t);
        // While unconfirmed, the new table is in place.
        assert!(nft.list().unwrap().contains("table inet portolan"));
        false
    })
    .unwrap();
    assert_eq!(asked, Some(Duration::from_secs(30)));
    assert_eq!(outcome, Outcome::RolledBack);
    assert_eq!(nft.list().unwrap(), before);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rollback_timer_restores_when_the_caller_is_gone() {
    if !require_root("rollback_timer_restores_when_the_caller_is_gone")
        || !require_tool("nft", "nft")
    {
        return;
    }
    let ns = Netns::new("pa").unwrap();
    let nft = ns_nft(&ns);
    let before = nft.list().unwrap();
    let dir = tempdir();
    let saved = apply::save(&nft, &dir).unwrap();
    let timer = apply::Timer::start(&nft, &saved.rollback, Duration::from_secs(1)).unwrap();
    let policy = profiles::load("ssh-only", Registry::embedded()).unwrap();
    nft.load(&Plan::new(&policy, None, "test").render(Format::Nftables))
        .unwrap();
    assert_ne!(nft.list().unwrap(), before);
    // Nobody confirms: the detached timer restores the previous ruleset by itself.
    assert!(timer.wait());
    assert_eq!(nft.list().unwrap(), before);
    let _ = std::fs::remove_dir_all(dir);
}
