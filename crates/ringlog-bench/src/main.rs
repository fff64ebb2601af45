//! `ringlog-bench`: ringlog against its peers and the machine's limits.
//!
//! `cargo run --release -p ringlog-bench -- [scenario...] [--quick] [--runs N]
//! [--only TEXT] [--json] [--report FILE.html]`

use clap::Parser;
use ringlog_bench::bench::{Bench, Settings};
use ringlog_bench::machine::Machine;
use ringlog_bench::output::{self, Report};
use ringlog_bench::scenarios;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Measures ringlog against its peers (rtrb, crossbeam, flume, std, a
/// shared BufWriter, pipes and Unix sockets between processes) and the
/// machine's limits (memcpy, file writes, cache-line and pipe round trips),
/// in one invocation. Every run's data is checked; a run that lost or
/// corrupted data prints an error row and the exit status is 1.
#[derive(Debug, Parser)]
#[command(name = "ringlog-bench", version)]
struct Args {
    /// Scenarios to run (default: all): limits, spsc, mpsc, bytes, persist,
    /// latency, ipc, logging, read, forward.
    scenarios: Vec<String>,
    /// Smaller sizes: about a minute for everything.
    #[arg(long)]
    quick: bool,
    /// Runs per case; every figure is their median, with min and max.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Print JSON on stdout instead of the table (no progress line).
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report with bar charts.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Run only the cases whose group or name contains TEXT, e.g.
    /// `persist --only "same rounds"` or `latency --only append`.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Multiplies every size (for tests).
    #[arg(long, hide = true, default_value_t = 1.0)]
    scale: f64,
}

/// Counts allocations per thread for the `logging` scenario.
#[global_allocator]
static GLOBAL: scenarios::logging::CountingAlloc = scenarios::logging::CountingAlloc;

fn main() -> ExitCode {
    // A copy of this binary started by the `ipc` scenario as its peer
    // process does that job only, whatever its arguments.
    if let Some(code) = scenarios::ipc::peer_main() {
        return code;
    }
    let args = Args::parse();
    if args.list {
        for s in scenarios::ALL {
            println!("{:<8} {}", s.name, s.about);
        }
        return ExitCode::SUCCESS;
    }
    let mut chosen = Vec::new();
    for name in &args.scenarios {
        match scenarios::find(name) {
            Some(s) => chosen.push(s),
            None => {
                let names: Vec<_> = scenarios::ALL.iter().map(|s| s.name).collect();
                eprintln!(
                    "error: unknown scenario `{name}` (available: {})",
                    names.join(", ")
                );
                return ExitCode::from(2);
            }
        }
    }
    if chosen.is_empty() {
        chosen = scenarios::ALL.to_vec();
    }
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        eprintln!("error: --scale must be a positive number");
        return ExitCode::from(2);
    }

    // Files go to a directory on the current directory's filesystem (not
    // /tmp, which may be tmpfs), removed when this guard drops.
    let work = match tempfile::Builder::new()
        .prefix(".ringlog-bench-")
        .tempdir_in(".")
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: creating a work directory in the current directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let work_dir = work.path().canonicalize().unwrap_or(work.path().into());
    let machine = Machine::probe(&work_dir);
    let settings = Settings {
        runs: usize::from(args.runs),
        quick: args.quick,
        scale: args.scale,
        work_dir,
        cores: machine.cores,
        only: args.only.clone(),
    };
    let progress = !args.json && std::io::stderr().is_terminal();
    let mut bench = Bench::new(settings, progress);
    if machine.in_memory_fs() {
        bench.note(&format!(
            "note: {} is on {}; file figures measure memory, not a disk",
            machine.work_dir, machine.filesystem
        ));
    }
    for s in &chosen {
        (s.run)(&mut bench);
    }
    let rows = bench.finish();
    drop(work);
    let failures = rows.iter().filter(|r| !r.ok).count();
    let report = Report {
        machine,
        quick: args.quick,
        runs: usize::from(args.runs),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        rows,
        failures,
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("error: JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", output::table(&report));
    }
    if let Some(path) = &args.report {
        if let Err(e) = std::fs::write(path, output::html(&report)) {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        if !args.json {
            println!("report: {}", path.display());
        }
    }
    if failures > 0 {
        // Named on stderr too: with --json the table that shows them is not
        // printed.
        for r in report.rows.iter().filter(|r| !r.ok) {
            eprintln!(
                "error: [{}] {} / {}: {}",
                r.scenario,
                r.group,
                r.name,
                r.error.as_deref().unwrap_or("failed its check")
            );
        }
        eprintln!("error: {failures} case(s) lost or corrupted data");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
