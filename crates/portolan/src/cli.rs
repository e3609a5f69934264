//! The command line, defined once: help, the man page and the shell completions all come
//! from these definitions.

use clap::{Parser, Subcommand};

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
    /// Print shell completions for portolan
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) for portolan
    Man,
    /// Scan hosts for open ports: TCP (connect or SYN) and UDP
    ///
    /// Results stream as they are found. Open ports are always listed; a state with more
    /// than 25 ports on a host is summarised ("not shown") unless --all is given.
    #[command(after_help = SCAN_EXAMPLES)]
    Scan(Box<ScanArgs>),
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
    #[arg(long, value_name = "N", conflicts_with = "ports")]
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
    #[arg(long, value_name = "PPS", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
    /// Retransmissions of an unanswered probe (default: adapts to the loss seen, at most 10)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=50))]
    pub max_retries: Option<u32>,
    /// Longest wait for one probe's answer: 500ms, 2s (default 3s; adapts below it)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Connections in flight in connect mode (default: from the open-file limit)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub concurrency: Option<u32>,
    /// List every port, whatever its state
    #[arg(long)]
    pub all: bool,
    /// Write nmap-compatible XML to FILE; nmap's -oX
    #[arg(long, value_name = "FILE")]
    pub xml_out: Option<std::path::PathBuf>,
    /// JSON Lines output (same as --format json)
    #[arg(long)]
    pub json: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::out::Format,
}

/// Parses `500ms`, `2s`, `1.5s`, `1m` or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "ms"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}' (try 500ms or 2s)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("invalid duration unit in '{s}' (use ms, s or m)")),
    };
    if !(0.001..=3600.0).contains(&secs) {
        return Err(format!("duration '{s}' out of range (1ms to 1h)"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
