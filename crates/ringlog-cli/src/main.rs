//! `ringlog`: the command-line tool.
//!
//! Exit codes: 0 success, 1 runtime failure (the message names the path and
//! the OS error), 2 invalid arguments; `verify` exits 3 for a journal whose
//! only fault is a torn tail that `recover` cuts.

#![deny(unsafe_op_in_unsafe_fn)]

mod encode;
mod errors;
mod forward;
mod inspect;
mod query;
mod run;
mod shm;
mod tail;
mod units;

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
    /// Run the pipeline: N writers of random blocks -> queue -> journal on disk.
    Run(run::RunArgs),
    /// Check a journal: structure, checksums, per-writer contiguity, counts.
    /// Exit 0 clean, 3 only a torn tail (`recover` cuts it), 1 damage.
    Verify(inspect::VerifyArgs),
    /// Run the recovery that opening a journal runs and say what it did:
    /// segments removed, bytes cut, records kept.
    Recover(inspect::RecoverArgs),
    /// Print the records of a journal.
    Cat(inspect::CatArgs),
    /// The pipeline across processes over shared memory: serve, produce.
    #[command(subcommand)]
    Shm(shm::ShmCommand),
    /// Print records as they land, filtered, resuming from a cursor file.
    Tail(tail::TailArgs),
    /// Stream a journal into NATS JetStream, once per record, resuming from a cursor.
    Forward(forward::ForwardArgs),
    /// Compare a JetStream stream with the journal it was forwarded from.
    StreamCheck(forward::StreamCheckArgs),
    /// Read a JetStream stream back into a journal, checking every record.
    Import(forward::ImportArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Verify(args) => inspect::verify(args),
        Command::Recover(args) => inspect::recover(args),
        Command::Cat(args) => inspect::cat(args),
        Command::Shm(cmd) => shm::shm(cmd),
        Command::Tail(args) => tail::tail(args),
        Command::Forward(args) => forward::forward(args),
        Command::StreamCheck(args) => forward::stream_check(args),
        Command::Import(args) => forward::import(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("ringlog: error: {e}");
            std::process::exit(1);
        }
    }
}
