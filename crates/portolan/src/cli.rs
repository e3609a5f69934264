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
    /// List the listening sockets of this host, who owns them and how exposed they are
    ///
    /// TCP listeners and bound UDP sockets, IPv4 and IPv6, from netlink sock_diag (or
    /// /proc/net as a fallback), with every owning process, its user and systemd unit.
    /// Rows are grouped by exposure: `all` (every address, including dual-stack `[::]`),
    /// `address` (one non-loopback address), `loopback`. Exit status 1 when nothing matches.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
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
    /// Only these ports: `22`, `8000-8100`, `22,80,https` (service names too; repeatable)
    #[arg(short, long, value_name = "SPEC", value_parser = parse_ports)]
    pub port: Vec<Vec<portolan_registry::PortRange>>,
    /// Only sockets owned by this process: a name, executable file name, systemd unit, or pid
    #[arg(long, value_name = "NAME")]
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
    pub source: SourceArg,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::out::Format,
    /// JSON output (the same as `--format json`)
    #[arg(long)]
    pub json: bool,
    /// Show the command line of each owner in the table
    #[arg(short, long)]
    pub wide: bool,
}

/// Where `portolan ls` reads sockets from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceArg {
    Auto,
    Netlink,
    Proc,
}

/// Parses a comma-separated list of ports, ranges and IANA service names (`ssh`).
fn parse_ports(s: &str) -> Result<Vec<portolan_registry::PortRange>, String> {
    let mut out = Vec::new();
    for token in s.split(',').map(str::trim) {
        if token.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let before = out.len();
            for e in portolan_registry::Registry::embedded().by_name(token) {
                if let Some(r) = e.ports {
                    if !out.contains(&r) {
                        out.push(r);
                    }
                }
            }
            if out.len() == before {
                return Err(format!("unknown service name '{token}'"));
            }
        } else {
            out.push(
                token
                    .parse()
                    .map_err(|e: portolan_registry::ParseError| e.to_string())?,
            );
        }
    }
    Ok(out)
}
