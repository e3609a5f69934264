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
}
