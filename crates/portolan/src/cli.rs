//! The command line, defined once: help, the man page and the shell completions all come
//! from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::out::Format;

/// Chart the network ports of a host: what they are, what listens, what is reachable,
/// and what should be shut.
#[derive(Debug, Parser)]
#[command(name = "portolan", version, about, long_about = None)]
#[command(after_help = "Exit status: 0 ok, 1 findings (or nothing found), 2 usage or input error.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit this host's ports: against the built-in baseline, or a policy
    ///
    /// With no arguments, checks what listens here against a baseline that needs no
    /// configuration: cleartext and legacy remote access on the network, databases and
    /// caches on all interfaces, ports no registry knows, listeners running from writable
    /// paths, and listeners inside the ephemeral port range. With --policy or --profile,
    /// judges every listener against the policy.
    Audit(AuditArgs),
    /// List the listening sockets of this host, who owns them and how exposed they are
    ///
    /// TCP listeners and bound UDP sockets, IPv4 and IPv6, from netlink sock_diag (or
    /// /proc/net as a fallback), with every owning process, its user and systemd unit.
    /// Rows are grouped by exposure: `all` (every address, including dual-stack `[::]`),
    /// `address` (one non-loopback address), `loopback`. Exit status 1 when nothing matches.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Serve this host's listeners and audit as Prometheus metrics (an exporter)
    ///
    /// `/metrics` answers in OpenMetrics or the Prometheus text format; `/` links to it.
    /// Collection happens at scrape time, at most once per --min-interval. It never
    /// scans: there is no probe endpoint. Listens on 127.0.0.1:10191 unless --listen says
    /// otherwise; beyond loopback, give it a --web-config with TLS or basic auth.
    /// SIGTERM or SIGINT stops it (exit 0). Metrics and privileges: docs/metrics.md.
    #[command(
        after_help = "Examples:\n  portolan serve\n  portolan serve --profile web-server --listen 198.18.0.10:10191 --web-config /etc/portolan/web.yml"
    )]
    Serve(ServeArgs),
    /// Scan hosts for open ports: TCP (connect or SYN) and UDP
    ///
    /// Results stream as they are found. Open ports are always listed; a state with more
    /// than 25 ports on a host is summarised ("not shown") unless --all is given.
    #[command(after_help = SCAN_EXAMPLES)]
    Scan(Box<ScanArgs>),
    /// Identify what answers on a port by what it says (probes, banners, TLS)
    ///
    /// The port number is only a hint: ssh on 2222 or http on 8081 is found by its answer.
    ///
    /// Each target is HOST:PORT for TCP or HOST:PORT/udp for UDP; IPv6 addresses go in
    /// brackets ([2001:db8::1]:443). Exits 1 when no target was identified.
    Detect(DetectArgs),
    /// Write (or apply) a firewall ruleset that opens only a policy's services
    ///
    /// Inbound traffic is dropped unless it is loopback, a reply, ICMP that must pass, or a
    /// service the policy allows from one of its allowed sources. The SSH session that runs
    /// the command is always kept open.
    Firewall(FirewallArgs),
    /// Write one self-contained HTML report: the audit, the port map, listeners, scans
    ///
    /// Audits this host (or --netns NAME, with --scan and --detect as `audit` takes
    /// them) and writes the summary, the findings with their remediation, the chart of
    /// the port space, the listeners and scanned ports, the policy and the firewall
    /// ruleset it generates, with the data embedded. With --from, the report is made from
    /// what `ls`, `scan`, `audit` or `diff` wrote as JSON instead. With --since POINT it
    /// also shows the drift since that point of history; with --run ID it shows a run
    /// recorded by `portolan record` and the drift from the run before it. The file loads
    /// nothing from anywhere (docs/report.md).
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Show the built-in policy profiles, write a starting policy, or check a policy file
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Look up ports and services in IANA's registry and /etc/services
    ///
    /// A QUERY is a port (443), a port and protocol (53/udp), a range (137-139, 6000-6010/tcp),
    /// or a service name or alias (https, www, whois++), optionally with a protocol
    /// (domain/udp). Every matching entry is printed with its category and source.
    /// Exit status: 0 every query found something, 1 some query found nothing, 2 bad input.
    #[command(
        after_help = "Examples:\n  portolan lookup 443\n  portolan lookup 53/udp ssh 137-139\n  portolan lookup --json https"
    )]
    Lookup {
        /// Ports, port/proto, ranges or names
        #[arg(required = true, value_name = "QUERY")]
        queries: Vec<String>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Search service names, aliases and descriptions, best match first
    ///
    /// Every word must match. Common services are also found by topic (`search mail` finds
    /// smtp, pop3, imap, submission). Exit status: 0 found, 1 nothing found.
    #[command(
        after_help = "Examples:\n  portolan search mail\n  portolan search --limit 5 remote desktop"
    )]
    Search {
        /// The words to look for
        #[arg(required = true, value_name = "TEXT")]
        text: Vec<String>,
        /// Show at most this many entries (0: all)
        #[arg(long, default_value_t = 25, value_name = "N", allow_hyphen_values = true, value_parser = parse_limit)]
        limit: usize,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Print the whole registry: IANA's, the system's, or both merged
    ///
    /// `--format etc-services` writes a valid /etc/services (ranges expanded, one line per
    /// port and protocol) that glibc reads.
    #[command(
        after_help = "Examples:\n  portolan services --source system\n  portolan services --source iana --format etc-services > services"
    )]
    Services {
        /// Which entries to print
        #[arg(long, value_enum, default_value_t = SourceArg::All)]
        source: SourceArg,
        /// Output format
        #[arg(long, value_enum, default_value_t = ServicesFormat::Table)]
        format: ServicesFormat,
        /// Same as --format json
        #[arg(long, conflicts_with = "format")]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Explain a port or a service in plain words, with hardening advice
    ///
    /// Gives the category and what it means, the registered services and their RFCs,
    /// whether the protocol is cleartext and what to use instead, whether it should stay
    /// local, and the advice: if this server does not need it, close it.
    #[command(
        after_help = "Examples:\n  portolan explain 23\n  portolan explain redis\n  portolan explain 161/udp --json"
    )]
    Explain {
        /// A port (23), port/proto (161/udp) or service name (telnet)
        #[arg(value_name = "PORT|NAME")]
        query: String,
        #[command(flatten)]
        registry: RegistryArgs,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Take a snapshot of this host (inventory and audit, a scan when asked) and store it
    ///
    /// Prints the run id. The history database is --db FILE, else $PORTOLAN_DB, else
    /// /var/lib/portolan/history.db as root and $XDG_STATE_HOME/portolan/history.db
    /// otherwise (docs/store.md).
    Record(RecordArgs),
    /// The runs of the history, or the timeline of one port or process
    History(HistoryArgs),
    /// What changed between two points of history (runs, times, or files)
    ///
    /// A point is a run id, last, baseline, yesterday, a time (2026-11-30T12:00), a
    /// duration ago (2h ago), or a file: portolan JSON (ls --json, audit --json, a
    /// snapshot) or nmap XML, so `portolan diff a.xml b.xml` needs no database. FROM
    /// defaults to the run before TO, TO to the latest run.
    /// Exit status: 0 no difference, 1 a difference, 2 an error.
    Diff(DiffArgs),
    /// Report listening-socket changes as they happen, one JSON line per change
    ///
    /// Takes an inventory every --interval and prints each change (added, removed,
    /// changed, restarted) as one JSON line. Stops cleanly on SIGINT or SIGTERM (exit 0).
    Watch(WatchArgs),
    /// Accept the approved state (a run) as the baseline, or show it
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// Print shell completions for portolan
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) for portolan, or for one of its commands
    ///
    /// `portolan man` is portolan(1); `portolan man audit` is portolan-audit(1),
    /// `portolan man policy check` portolan-policy-check(1).
    Man {
        /// The command (and subcommand) whose page to print
        command: Vec<String>,
    },
}

const SCAN_EXAMPLES: &str = "Examples:
  portolan scan 198.18.0.2                 top 1000 TCP ports (SYN as root, else connect)
  portolan scan -p- -sT 127.0.0.1          every TCP port, connect mode
  portolan scan -sU -p 53,123,161 host     UDP with protocol payloads
  portolan scan --json -p 22,https 198.18.0.0/24 --exclude 198.18.0.1
  portolan scan -iL hosts.txt -oX scan.xml nmap-compatible XML

nmap spellings -sS -sT -sU -Pn -iL FILE -oX FILE are accepted.
Exit status: 0 open ports found, 1 none found, 2 usage or input error.";

/// How TCP (and UDP) ports are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanMode {
    /// TCP connect(); needs no privileges (nmap's -sT)
    #[value(alias = "T")]
    Connect,
    /// TCP SYN with raw sockets; needs root or CAP_NET_RAW (nmap's -sS)
    #[value(alias = "S")]
    Syn,
    /// UDP with protocol payloads (nmap's -sU)
    #[value(alias = "U")]
    Udp,
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Targets: addresses, CIDR blocks (198.18.0.0/24), ranges (198.18.0.1-20), host names
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Ports: 22,80,8000-8100, service names (https), T:/U: prefixes, - for all
    #[arg(short = 'p', long, value_name = "SPEC", allow_hyphen_values = true)]
    pub ports: Option<String>,
    /// The N most common ports of portolan's ranking (default 1000)
    #[arg(long, value_name = "N", conflicts_with = "ports", allow_hyphen_values = true, value_parser = parse_top)]
    pub top: Option<usize>,
    /// Scan mode; repeat to add UDP (-sS -sU). Default: syn with privileges, else connect
    #[arg(short = 's', long = "scan", value_enum, value_name = "MODE")]
    pub mode: Vec<ScanMode>,
    /// Never resolve host names (a name among the targets is then an error)
    #[arg(short = 'n', long)]
    pub no_resolve: bool,
    /// Read targets from FILE (whitespace separated, # comments); nmap's -iL
    #[arg(long, value_name = "FILE")]
    pub input_list: Option<std::path::PathBuf>,
    /// Targets to leave out (comma separated; repeatable)
    #[arg(long, value_name = "TARGETS")]
    pub exclude: Vec<String>,
    /// Skip host discovery: take every target as up; nmap's -Pn
    #[arg(long)]
    pub no_ping: bool,
    /// At most this many packets (or connection attempts) per second
    #[arg(long, value_name = "PPS", allow_hyphen_values = true, value_parser = parse_rate)]
    pub rate: Option<u32>,
    /// Retransmissions of an unanswered probe (default: adapts to the loss seen, at most 10)
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_retries)]
    pub max_retries: Option<u32>,
    /// Longest wait for one probe's answer: 500ms, 2s, or seconds as a number (default 3s;
    /// adapts below it)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Take shard I of N (1 <= I <= N): every N-th host of the scan's order. N copies
    /// with the same command line (and seed) cover every host exactly once
    #[arg(long, value_name = "I/N", allow_hyphen_values = true, value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// The seed of the probe order (default: derived from the targets and ports, so that
    /// the shards of one command line agree)
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Record the progress in FILE; if FILE exists, continue the scan it records (an
    /// interrupted run) instead of starting over
    #[arg(long, value_name = "FILE")]
    pub resume: Option<std::path::PathBuf>,
    /// Connections in flight in connect mode (default: from the open-file limit)
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_concurrency)]
    pub concurrency: Option<u32>,
    /// List every port, whatever its state (and every down host)
    #[arg(long)]
    pub all: bool,
    /// List each host found down (by default a table counts them in one line)
    #[arg(long)]
    pub show_down: bool,
    /// Identify what answers on each open port (and UDP open|filtered port): protocol,
    /// product, version, TLS; nmap's -sV
    #[arg(long)]
    pub detect: bool,
    /// Write nmap-compatible XML to FILE (`-`: standard output, instead of the table); nmap's -oX
    #[arg(long, value_name = "FILE")]
    pub xml_out: Option<std::path::PathBuf>,
    /// JSON Lines output (same as --format json)
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format [default: table]
    #[arg(long, value_enum)]
    pub format: Option<crate::out::Format>,
    #[command(flatten)]
    pub history: RecordFlags,
}

/// Parses `--shard I/N`: 1 <= I <= N <= 2^20; returns (I-1, N).
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || {
        format!(
            "invalid shard '{s}' (write I/N with 1 <= I <= N <= {}, such as 2/4)",
            1 << 20
        )
    };
    let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
    let i: u64 = i.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if i == 0 || n == 0 || i > n || n > 1 << 20 {
        return Err(bad());
    }
    Ok((i - 1, n))
}

/// A whole number from `lo` to `hi` for a numeric flag. Anything else (a sign, a
/// fraction, nan, inf, an empty value, words, the next flag) is refused, saying what the
/// flag takes; clap names the flag and the value.
fn whole<T: TryFrom<u64>>(s: &str, lo: u64, hi: u64, what: &str) -> Result<T, String> {
    let t = s.trim();
    let n = t.parse::<u64>().ok().filter(|n| (lo..=hi).contains(n));
    n.and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("want {what}, from {lo} to {hi}"))
}

/// `--rate`: packets (or connection attempts) per second, at least 1.
pub fn parse_rate(s: &str) -> Result<u32, String> {
    whole(
        s,
        1,
        u32::MAX.into(),
        "a whole number of packets per second",
    )
}

/// `--max-retries`: retransmissions of a probe, 0 to 50.
pub fn parse_retries(s: &str) -> Result<u32, String> {
    whole(s, 0, 50, "a whole number of retransmissions")
}

/// `--seed`: any 64-bit number.
pub fn parse_seed(s: &str) -> Result<u64, String> {
    whole(s, 0, u64::MAX, "a whole number")
}

/// `--concurrency`: connections in flight, 1 to a million.
pub fn parse_concurrency(s: &str) -> Result<u32, String> {
    whole(s, 1, 1_000_000, "a whole number of connections")
}

/// `--top`: how many of the ranking's ports, 1 to 65535.
pub fn parse_top(s: &str) -> Result<usize, String> {
    whole(s, 1, 65535, "a whole number of ports")
}

/// `search --limit`: at most this many entries, 0 for all.
pub fn parse_limit(s: &str) -> Result<usize, String> {
    whole(s, 0, u32::MAX.into(), "a whole number of entries (0: all)")
}

/// Parses a duration for every `--timeout`-like flag: `500ms`, `2s`, `1.5s`, `2m`, or a
/// bare number of seconds (as nmap reads it). From 1ms to an hour.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num.trim().parse().map_err(|_| {
        format!(
            "invalid duration '{s}' (from 1ms to 1h, such as 2s, 500ms or 1m; a bare number is seconds)"
        )
    })?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration unit in '{s}' (use ms, s or m)")),
    };
    if !(secs.is_finite() && (0.001..=3600.0).contains(&secs)) {
        return Err(format!("duration '{s}' out of range: from 1ms to 1h"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `parse_duration` for `firewall --confirm-timeout`: whole seconds, and 0 (keep the
/// ruleset without asking) is allowed.
pub fn parse_confirm_timeout(s: &str) -> Result<std::time::Duration, String> {
    if s.trim().parse::<f64>() == Ok(0.0) {
        return Ok(std::time::Duration::ZERO);
    }
    let d = parse_duration(s).map_err(|_| {
        format!("invalid confirmation timeout '{s}' (0, or whole seconds up to 1h, such as 60, 90s or 2m)")
    })?;
    if d.subsec_nanos() != 0 {
        return Err(format!(
            "confirmation timeout '{s}' must be whole seconds (such as 30, 90s or 2m)"
        ));
    }
    Ok(d)
}

/// Arguments of `portolan ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only TCP listeners
    #[arg(short, long)]
    pub tcp: bool,
    /// Only UDP sockets
    #[arg(short, long)]
    pub udp: bool,
    /// Only IPv4 sockets
    #[arg(short = '4', long = "ipv4")]
    pub ipv4: bool,
    /// Only IPv6 sockets
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Only these ports: `22`, `8000-8100`, `22,80,https`, `dns`, `U:53`, `53/udp` (service
    /// names too; a `T:`/`U:` prefix or `/tcp`/`/udp` suffix means that protocol; repeatable)
    #[arg(short, long, value_name = "SPEC", value_parser = parse_port_spec)]
    pub port: Vec<portolan_model::PortSpec>,
    /// Only sockets owned by this process: a name, executable file name, systemd unit, or pid
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub process: Option<String>,
    /// Only sockets reachable from other hosts (not loopback)
    #[arg(short, long)]
    pub exposed: bool,
    /// Also connected UDP sockets (clients), which are not listeners
    #[arg(short, long)]
    pub all: bool,
    /// Read the network namespace NAME (as `ip netns list` names it)
    #[arg(long, value_name = "NAME", conflicts_with = "all_netns")]
    pub netns: Option<String>,
    /// Read every named network namespace and the namespace of every process (containers)
    #[arg(long)]
    pub all_netns: bool,
    /// Where sockets come from: netlink with /proc/net fallback, netlink only, or /proc/net only
    #[arg(long, value_enum, default_value = "auto", env = "PORTOLAN_INVENTORY")]
    pub source: SocketSource,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: LsFormat,
    /// JSON output (the same as `--format json`)
    #[arg(long)]
    pub json: bool,
    /// With --format prometheus, write to FILE through a temporary file renamed over it
    /// (what node_exporter's textfile collector expects)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Show the command line of each owner in the table
    #[arg(short, long)]
    pub wide: bool,
    /// Also store the listeners in the history database (the whole inside view: no
    /// filters)
    #[arg(long, conflicts_with_all = ["tcp", "udp", "ipv4", "ipv6", "port", "process", "exposed", "all", "all_netns"])]
    pub record: bool,
    /// The history database, for --record
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
}

/// `--record` and `--db` of `ls`, `scan` and `audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordFlags {
    /// Also store what this command found in the history database
    #[arg(long)]
    pub record: bool,
    /// The history database (default: $PORTOLAN_DB, else /var/lib/portolan/history.db as
    /// root, else $XDG_STATE_HOME/portolan/history.db)
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The history database (default: $PORTOLAN_DB, else /var/lib/portolan/history.db as
    /// root, else $XDG_STATE_HOME/portolan/history.db)
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Store an nmap XML file (nmap -oX) instead of a snapshot of this host
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scan", "netns", "policy", "profile"])]
    pub import: Option<PathBuf>,
    /// Also scan TARGET from here (the outside view)
    #[arg(long, value_name = "TARGET")]
    pub scan: Option<String>,
    /// With --scan, detect the service behind each open port
    #[arg(long, requires = "scan")]
    pub detect: bool,
    /// Take the snapshot of this network namespace (a name from `ip netns list`)
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    #[command(flatten)]
    pub source: PolicySource,
    /// Print the run as JSON: {"run": ID, "started": ...}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
    /// The history database
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// The timeline of this port (8080, or 53/udp)
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub port: Option<String>,
    /// The timeline of this process name (`*` globs)
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub process: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Delete the runs older than --keep (the baseline and the latest run stay)
    Prune {
        /// How much history to keep: 90d, 12w, 36h
        #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_age)]
        keep: std::time::Duration,
        /// The history database
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Print what was removed as JSON
        #[arg(long)]
        json: bool,
    },
}

/// `--min-age`, `--keep`: 30s, 15m, 2h, 90d, 1h30m, or milliseconds (500ms).
pub fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    if s.trim().ends_with("ms") {
        return parse_duration(s);
    }
    portolan_app::history::parse_duration(s).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, clap::Args)]
pub struct NoiseArgs {
    /// Also show changes marked as noise (ephemeral-range listeners, connected UDP
    /// sockets)
    #[arg(long)]
    pub show_noise: bool,
    /// Count a change only once it has held this long (30s, 5m, 2h)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_age)]
    pub min_age: Option<std::time::Duration>,
    /// Leave out changes matching PAT: a port or range (8080, 6000-6063/tcp), a protocol
    /// (/udp), or a process name (`chrom*`); repeatable
    #[arg(long, value_name = "PAT")]
    pub ignore: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier point (default: the run before TO)
    #[arg(value_name = "FROM")]
    pub from: Option<String>,
    /// The later point (default: the latest run)
    #[arg(value_name = "TO")]
    pub to: Option<String>,
    /// The history database
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// One JSON document: from, to, changes
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// JSON Lines: one change per line
    #[arg(long)]
    pub jsonl: bool,
    #[command(flatten)]
    pub noise: NoiseArgs,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// How often to take an inventory: 1s, 500ms, 2m
    #[arg(long, value_name = "DURATION", default_value = "1s", allow_hyphen_values = true, value_parser = parse_duration)]
    pub interval: std::time::Duration,
    /// Run CMD (with sh -c) for each change, the change's JSON on its stdin; one at a
    /// time, waited for (at most --exec-timeout); a failure is reported, not fatal
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// The longest --exec may run before it is killed
    #[arg(long, value_name = "DURATION", default_value = "30s", allow_hyphen_values = true, value_parser = parse_duration, requires = "exec")]
    pub exec_timeout: std::time::Duration,
    /// Also store every snapshot in the history database
    #[arg(long)]
    pub record: bool,
    /// The history database
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Watch this network namespace (a name from `ip netns list`)
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    #[command(flatten)]
    pub noise: NoiseArgs,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Mark a run (default: the latest) as the approved state
    Accept {
        /// A run id, last, or a time (2026-11-30T12:00, yesterday)
        #[arg(value_name = "RUN")]
        run: Option<String>,
        /// The history database
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the baseline run and its listeners
    Show {
        /// The history database
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Print JSON: the run and its snapshot
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `portolan serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Listen on this address and port
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:10191")]
    pub listen: std::net::SocketAddr,
    /// Scrapes within this time of the last collection get its result: 5s, 500ms, 1m
    #[arg(long, value_name = "DURATION", default_value = "5s", allow_hyphen_values = true, value_parser = parse_duration)]
    pub min_interval: std::time::Duration,
    /// TLS, basic auth and headers: the Prometheus exporter-toolkit's YAML file
    #[arg(long, value_name = "FILE")]
    pub web_config: Option<PathBuf>,
    /// Also audit every collection against this policy or profile
    #[command(flatten)]
    pub source: PolicySource,
    /// Export the network namespace NAME (as `ip netns list` names it)
    #[arg(long, value_name = "NAME", conflicts_with = "all_netns")]
    pub netns: Option<String>,
    /// Export every named network namespace and the namespace of every process
    #[arg(long)]
    pub all_netns: bool,
}

/// `portolan ls --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LsFormat {
    Table,
    Json,
    Csv,
    /// The Prometheus text format (docs/metrics.md), for node_exporter's textfile collector
    Prometheus,
}

/// Where `portolan ls` reads sockets from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SocketSource {
    Auto,
    Netlink,
    Proc,
}

/// `ls -p`: the one port and service spec parser, with portolan's registry.
fn parse_port_spec(s: &str) -> Result<portolan_model::PortSpec, String> {
    portolan_model::PortSpec::parse_with(s, portolan_registry::Registry::embedded())
        .map_err(|e| e.to_string())
}

/// Where a policy comes from.
#[derive(Debug, Clone, clap::Args)]
#[group(multiple = false)]
pub struct PolicySource {
    /// A policy file (TOML; see docs/policy.md)
    #[arg(long, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
    /// A built-in profile: mail-server, web-server, dns-server, file-server, database,
    /// ssh-only (bastion), workstation
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// Output formats of `portolan audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    /// Findings grouped by severity, with their remediation
    Table,
    /// One JSON object: findings and summary (docs/json.md)
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards
    Sarif,
    /// JUnit XML, for CI systems
    Junit,
    /// The Prometheus text format (docs/metrics.md), for node_exporter's textfile collector
    Prometheus,
}

/// Severities, for --fail-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeverityArg {
    Critical,
    High,
    Medium,
    Low,
    Info,
    /// Never exit 1 because of findings
    Never,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub source: PolicySource,
    /// Audit the sockets of this network namespace (a name from `ip netns list`) instead
    /// of this process's own
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Also scan TARGET from here (the outside view): the addresses of one host,
    /// repeatable or comma-separated (198.18.0.2,2001:2::2), so every family is covered.
    /// With --netns NAME and no TARGET, the namespace's own global addresses. Each
    /// listener is then "reachable", "not reachable" (probed on every address it serves:
    /// closed or filtered) or "not checked"; another host is judged by the scan alone
    #[arg(long, value_name = "TARGET", num_args = 0..=1, value_delimiter = ',', action = clap::ArgAction::Append)]
    pub scan: Option<Vec<String>>,
    /// With --scan, probe these ports instead of the default choice (the top 1000 TCP
    /// ports, the UDP services that matter, every port listening beyond loopback, and the
    /// policy's ports, at most 1024 TCP and 16 UDP ports of each of its ranges)
    #[arg(long, value_name = "SPEC", requires = "scan")]
    pub scan_ports: Option<String>,
    /// With --scan, send at most this many probes per second
    #[arg(long, value_name = "N", requires = "scan", allow_hyphen_values = true, value_parser = parse_rate)]
    pub rate: Option<u32>,
    /// With --scan, wait at most this long for a probe's answer (500ms, 2s)
    #[arg(long, value_name = "DURATION", requires = "scan", allow_hyphen_values = true, value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// With --scan, detect the service behind each open port (product, cleartext,
    /// STARTTLS), so that an IMAP or POP3 server allowed on condition of STARTTLS is checked
    #[arg(long, requires = "scan")]
    pub detect: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    pub format: AuditFormat,
    /// Same as --format json
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// With --format prometheus, write to FILE through a temporary file renamed over it
    /// (what node_exporter's textfile collector expects)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with status 1 when a finding is at least this severe
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = SeverityArg::Low)]
    pub fail_on: SeverityArg,
    /// Judge exceptions' expiry as of this date (YYYY-MM-DD) instead of today
    #[arg(long, value_name = "DATE", hide = true)]
    pub today: Option<String>,
    /// Add a `new-since-baseline` finding for each listener not in this point of history
    /// (`baseline`, a run id, a time)
    #[arg(long, value_name = "POINT")]
    pub since: Option<String>,
    #[command(flatten)]
    pub history: RecordFlags,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print a built-in profile (with its comments), or list them with no NAME
    Show {
        /// The profile
        name: Option<String>,
        /// Print the parsed policy as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write a starting policy from what listens now, one commented entry per service
    Init {
        /// Write to FILE instead of standard output (refuses to overwrite)
        #[arg(long, short, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        /// Write it from the sockets of this network namespace
        #[arg(long, value_name = "NAME")]
        netns: Option<String>,
    },
    /// Check policy files: syntax, service names, conflicts; every error in every file, exit 2 if any is bad
    Check {
        /// The policy files
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Print a JSON object per file
        #[arg(long)]
        json: bool,
    },
}

const REPORT_EXAMPLES: &str = "Examples:
  portolan report -o report.html
  portolan report --profile web-server --netns web --scan 198.18.0.2 --detect -o report.html
  portolan report --from ls.json --from scan.jsonl --from audit.json -o report.html
  portolan report --since last -o report.html
  portolan report --since '1d ago' --db /var/lib/portolan/history.db -o report.html
  portolan report --run 12 -o run12.html

Exit status: 0 written, 1 a finding at least as severe as --fail-on, 2 usage or input error.";

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("history").args(["since", "run"])))]
pub struct ReportArgs {
    /// Write the report to FILE (through a temporary file, renamed when complete)
    /// instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub source: PolicySource,
    /// Audit the sockets of this network namespace (a name from `ip netns list`)
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Also scan TARGET from here (the outside view), as `audit --scan` does: repeat it or
    /// give a comma list for a host's several addresses
    #[arg(long, value_name = "TARGET", value_delimiter = ',')]
    pub scan: Vec<String>,
    /// With --scan, detect the service behind each open port
    #[arg(long, requires = "scan")]
    pub detect: bool,
    /// Make the report from this file instead of auditing now: portolan's JSON of `ls`,
    /// `scan` (JSON Lines), `audit` or `diff`, told apart by their content (repeatable)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["policy", "profile", "netns", "scan"])]
    pub from: Vec<std::path::PathBuf>,
    /// Also show the drift since POINT: a run id, `last`, `baseline`, `yesterday`, a time
    /// (2026-12-01T10:00, RFC 3339), a duration ago (`2h ago`), or a file (portolan JSON,
    /// nmap XML)
    #[arg(long, value_name = "POINT", conflicts_with_all = ["from", "run"])]
    pub since: Option<String>,
    /// Report on a run of the history instead of auditing now: its listeners, scan and
    /// findings as recorded, with the drift from the run before it (ID: a run id, `last`,
    /// `baseline`, a time)
    #[arg(long, value_name = "ID", conflicts_with_all = ["policy", "profile", "netns", "scan", "from"])]
    pub run: Option<String>,
    /// The history database for --since and --run, only read (default: $PORTOLAN_DB, else
    /// /var/lib/portolan/history.db as root, else $XDG_STATE_HOME/portolan/history.db)
    #[arg(long, value_name = "FILE", requires = "history")]
    pub db: Option<std::path::PathBuf>,
    /// Exit with status 1 when a finding is at least this severe (the report is written
    /// either way)
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = SeverityArg::Never)]
    pub fail_on: SeverityArg,
    /// Judge exceptions' expiry as of this date (YYYY-MM-DD) instead of today
    #[arg(long, value_name = "DATE", hide = true)]
    pub today: Option<String>,
}

/// Firewall ruleset formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FirewallFormat {
    /// An nft -f script that replaces the table inet portolan
    Nftables,
    /// iptables-restore input (IPv4)
    Iptables,
    /// ip6tables-restore input (IPv6)
    Ip6tables,
    /// A shell script of ufw commands
    Ufw,
}

#[derive(Debug, clap::Args)]
pub struct FirewallArgs {
    #[command(flatten)]
    pub source: PolicySource,
    /// Ruleset format
    #[arg(long, value_enum, default_value_t = FirewallFormat::Nftables)]
    pub format: FirewallFormat,
    /// Apply the ruleset now (nftables only): checked with nft -c, the current ruleset
    /// saved, loaded atomically, and rolled back unless confirmed in time
    #[arg(long)]
    pub apply: bool,
    /// With --apply, apply without asking first (confirmation afterwards is still needed
    /// unless --confirm-timeout is 0)
    #[arg(long, short = 'y', requires = "apply")]
    pub yes: bool,
    /// With --apply, time to confirm the new ruleset before it is rolled back: 60, 90s,
    /// 2m (a bare number is seconds); 0 keeps it without asking
    #[arg(long, value_name = "DURATION", default_value = "60", requires = "apply", allow_hyphen_values = true, value_parser = parse_confirm_timeout)]
    pub confirm_timeout: std::time::Duration,
    /// Print the plan (allowed ports and sources) as JSON instead of a ruleset
    #[arg(long, conflicts_with = "apply")]
    pub json: bool,
}

/// Where the registry's system entries come from.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Read this services file instead of /etc/services
    #[arg(long, value_name = "FILE", global = false)]
    pub services: Option<PathBuf>,
}

/// `--format` and `--json`.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Same as --format json (JSON Lines, one entry per line)
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl OutputArgs {
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }
}

/// `services --source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// IANA's registry (built in)
    Iana,
    /// The services file (/etc/services or --services FILE)
    System,
    /// Both, merged
    All,
}

/// `services --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServicesFormat {
    Table,
    Json,
    Csv,
    /// The /etc/services format
    EtcServices,
}

#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    /// Targets: HOST:PORT, HOST:PORT/tcp or HOST:PORT/udp
    #[arg(required = true, value_name = "HOST:PORT[/udp]")]
    pub targets: Vec<String>,
    /// Write JSON Lines, one object per target (fields in docs/json.md)
    #[arg(long)]
    pub json: bool,
    /// More signatures, tried before the built-in ones (format: docs/signatures.md)
    #[arg(long, value_name = "FILE")]
    pub signatures: Option<std::path::PathBuf>,
    /// Timeout for each connect and reply: 3s, 500ms, or seconds as a number
    #[arg(long, value_name = "DURATION", default_value = "3s", allow_hyphen_values = true, value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_rate("1"), Ok(1));
        assert_eq!(parse_rate(" 4294967295 "), Ok(u32::MAX));
        assert_eq!(parse_retries("0"), Ok(0));
        assert_eq!(parse_seed("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_top("65535"), Ok(65535));
        assert_eq!(parse_limit("0"), Ok(0));
        for bad in [
            "0",
            "-1",
            "4294967296",
            "1.5",
            "nan",
            "inf",
            "1e3",
            "",
            "0x10",
            "--json",
        ] {
            let err = parse_rate(bad).unwrap_err();
            assert!(err.contains("from 1 to 4294967295"), "{bad}: {err}");
        }
        assert!(parse_retries("51").is_err());
        assert!(parse_top("65536").is_err());
        assert!(parse_concurrency("1000001").is_err());
        assert!(parse_seed("18446744073709551616").is_err());
    }

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("2"), Duration::from_secs(2));
        assert_eq!(ok("1.5"), Duration::from_millis(1500));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2s"), Duration::from_secs(2));
        assert_eq!(ok(" 2m "), Duration::from_secs(120));
        assert_eq!(ok("1ms"), Duration::from_millis(1));
        assert_eq!(ok("60m"), Duration::from_secs(3600));
        for (bad, says) in [
            ("soon", "invalid duration 'soon'"),
            ("", "invalid duration ''"),
            ("5parsecs", "invalid duration unit in '5parsecs'"),
            ("2h", "invalid duration unit in '2h'"),
            ("0", "duration '0' out of range"),
            ("0.5ms", "duration '0.5ms' out of range"),
            ("61m", "duration '61m' out of range"),
            ("-1s", "duration '-1s' out of range"),
            ("nan", "invalid duration 'nan'"),
            ("1e9", "invalid duration unit in '1e9'"),
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn confirm_timeouts() {
        assert_eq!(parse_confirm_timeout("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_confirm_timeout("90").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_confirm_timeout("2m").unwrap(),
            Duration::from_secs(120)
        );
        let err = parse_confirm_timeout("1500ms").unwrap_err();
        assert!(
            err.contains("'1500ms'") && err.contains("whole seconds"),
            "{err}"
        );
        assert!(parse_confirm_timeout("later").is_err());
    }

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("portolan").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    #[test]
    fn a_bare_timeout_is_seconds_everywhere() {
        assert_eq!(parse_shard("2/4"), Ok((1, 4)));
        assert_eq!(parse_shard("1/1"), Ok((0, 1)));
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", "-1/2", "1/2/3"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        // Regression: scan once read a bare number as milliseconds.
        let Command::Scan(scan) = parse(&["scan", "--timeout", "2", "127.0.0.1"]) else {
            panic!("not a scan");
        };
        assert_eq!(scan.timeout, Some(Duration::from_secs(2)));
        let Command::Detect(detect) = parse(&["detect", "--timeout", "2", "127.0.0.1:22"]) else {
            panic!("not detect");
        };
        assert_eq!(detect.timeout, Duration::from_secs(2));
        let Command::Detect(detect) = parse(&["detect", "127.0.0.1:22"]) else {
            panic!("not detect");
        };
        assert_eq!(detect.timeout, Duration::from_secs(3));
        let Command::Firewall(fw) = parse(&["firewall", "--apply", "--confirm-timeout", "2"])
        else {
            panic!("not firewall");
        };
        assert_eq!(fw.confirm_timeout, Duration::from_secs(2));
        let Command::Firewall(fw) = parse(&["firewall", "--apply"]) else {
            panic!("not firewall");
        };
        assert_eq!(fw.confirm_timeout, Duration::from_secs(60));
    }
}
