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
    /// What answers on a port: identify the service by what it says (probes, banners,
    /// TLS), not by its number
    ///
    /// Each target is HOST:PORT for TCP or HOST:PORT/udp for UDP; IPv6 addresses go in
    /// brackets ([2001:db8::1]:443). Exits 1 when no target was identified.
    Detect(DetectArgs),
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
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// Parses `3s`, `500ms`, `1.5` (seconds) or `2m`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}' (expected e.g. 3s, 500ms or 1.5)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration unit in '{s}' (use ms, s or m)")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
        return Err(format!(
            "duration '{s}' must be above 0 and at most an hour"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
