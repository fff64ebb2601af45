//! `ringlog verify` and `ringlog cat`.

use clap::{Args, ValueEnum};
use ringlog::journal::{verify as verify_journal, Reader};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `ringlog verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Journal directory.
    path: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `ringlog cat`.
#[derive(Debug, Args)]
pub(crate) struct CatArgs {
    /// Journal directory.
    path: PathBuf,
    /// Only this producer's records.
    #[arg(long)]
    producer: Option<u32>,
    /// Print at most this many records.
    #[arg(long)]
    limit: Option<u64>,
    /// How to print payloads.
    #[arg(long, value_enum, default_value_t = CatFormat::Text)]
    format: CatFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CatFormat {
    /// One line per record; payload as text with non-printable bytes escaped.
    Text,
    /// One line per record; payload in hex.
    Hex,
    /// One JSON object per line.
    Json,
}

pub(crate) fn verify(args: VerifyArgs) -> Result<i32, String> {
    let r = verify_journal(&args.path).map_err(|e| e.to_string())?;
    if args.json {
        let producers: serde_json::Map<String, serde_json::Value> = r
            .producers
            .iter()
            .map(|(id, p)| {
                (
                    id.to_string(),
                    serde_json::json!({
                        "records": p.records, "payload_bytes": p.payload_bytes,
                        "first_seq": p.first_seq, "last_seq": p.last_seq,
                        "missing": p.missing, "duplicates": p.duplicates,
                        "out_of_order": p.out_of_order,
                    }),
                )
            })
            .collect();
        let v = serde_json::json!({
            "path": args.path, "clean": r.is_clean(), "segments": r.segments,
            "records": r.records, "frame_bytes": r.frame_bytes, "producers": producers,
            "corrupted_ranges": r.corrupted.len(), "torn_tail": r.torn_tail.is_some(),
            "sequence_faults": r.seq_faults.len(),
        });
        println!("{v:#}");
    } else {
        println!(
            "{}: {} segments, {} records, {} bytes of frames",
            args.path.display(),
            r.segments,
            r.records,
            r.frame_bytes
        );
        println!(
            "{:>9} {:>12} {:>14} {:>10} {:>10} {:>8} {:>6} {:>6}",
            "producer",
            "records",
            "payload bytes",
            "first seq",
            "last seq",
            "missing",
            "dups",
            "order"
        );
        for (id, p) in &r.producers {
            println!(
                "{:>9} {:>12} {:>14} {:>10} {:>10} {:>8} {:>6} {:>6}",
                id,
                p.records,
                p.payload_bytes,
                p.first_seq,
                p.last_seq,
                p.missing,
                p.duplicates,
                p.out_of_order
            );
        }
        for d in &r.corrupted {
            println!("corrupted: {d:?}");
        }
        if let Some(t) = &r.torn_tail {
            println!("torn tail: {t:?}");
        }
        for f in &r.seq_faults {
            println!("sequence fault: {f:?}");
        }
        println!(
            "{}",
            if r.is_clean() {
                "OK: journal is clean"
            } else {
                "FAULTS FOUND"
            }
        );
    }
    Ok(if r.is_clean() { 0 } else { 1 })
}

fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

pub(crate) fn cat(args: CatArgs) -> Result<i32, String> {
    let mut reader = Reader::open(&args.path).map_err(|e| e.to_string())?;
    if let Some(p) = args.producer {
        reader = reader.producer(p);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (n, rec) in reader.enumerate() {
        if args.limit.is_some_and(|l| n as u64 >= l) {
            break;
        }
        let rec = rec.map_err(|e| e.to_string())?;
        let line = match args.format {
            CatFormat::Text => format!(
                "{} {} {} {}",
                rec.producer,
                rec.seq,
                rec.timestamp,
                escape(&rec.payload)
            ),
            CatFormat::Hex => {
                let hex: String = rec.payload.iter().map(|b| format!("{b:02x}")).collect();
                format!("{} {} {} {}", rec.producer, rec.seq, rec.timestamp, hex)
            }
            CatFormat::Json => serde_json::json!({
                "producer": rec.producer, "seq": rec.seq, "timestamp_ns": rec.timestamp,
                "segment": rec.segment, "offset": rec.offset, "len": rec.payload.len(),
                "payload": String::from_utf8_lossy(&rec.payload),
            })
            .to_string(),
        };
        if writeln!(out, "{line}").is_err() {
            return Ok(0); // stdout closed (e.g. piped into `head`)
        }
    }
    let _ = out.flush();
    Ok(0)
}
