//! `ringlog`: the command-line tool.

use clap::{Parser, Subcommand};

/// Lock-free rings from many producers to one consumer that persists them.
#[derive(Debug, Parser)]
#[command(name = "ringlog", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what this build of ringlog contains.
    Info,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Info => {
            println!("ringlog {}", env!("CARGO_PKG_VERSION"));
            println!("library layers: wait, region, ring (SPSC bytes), spsc (typed)");
        }
    }
}
