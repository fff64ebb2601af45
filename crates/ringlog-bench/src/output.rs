//! Results out: a table for the terminal, a JSON document for machines, and
//! a self-contained HTML report with one inline SVG bar chart per group.

use crate::bench::{Better, Role, Row, Unit};
use crate::machine::Machine;
use serde::Serialize;
use std::fmt::Write as _;

/// Everything one invocation measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine and the directory written to.
    pub machine: Machine,
    /// `--quick` was given.
    pub quick: bool,
    /// Runs per case.
    pub runs: usize,
    /// The command line, for reproducing.
    pub command: String,
    /// Every row, in the order measured.
    pub rows: Vec<Row>,
    /// Rows that failed their check.
    pub failures: usize,
}

/// How a figure is scaled for reading: divisor and suffix, chosen from a
/// reference value so a median and its min and max share one scale.
fn scale(unit: Unit, reference: f64) -> (f64, &'static str) {
    match unit {
        Unit::BytesPerSec if reference >= (1u64 << 30) as f64 => ((1u64 << 30) as f64, "GiB/s"),
        Unit::BytesPerSec => ((1u64 << 20) as f64, "MiB/s"),
        Unit::ItemsPerSec if reference >= 1e6 => (1e6, "M/s"),
        Unit::ItemsPerSec => (1e3, "k/s"),
        Unit::Nanos if reference >= 10_000.0 => (1e3, "µs"),
        Unit::Nanos => (1.0, "ns"),
    }
}

fn digits(v: f64) -> usize {
    if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    }
}

/// A figure with its unit, scaled for reading.
pub fn format_value(unit: Unit, v: f64) -> String {
    let (div, suffix) = scale(unit, v);
    let x = v / div;
    format!("{x:.*} {suffix}", digits(x))
}

/// `[min..max]` in the scale of `median`, unit omitted.
fn format_range(unit: Unit, median: f64, min: f64, max: f64) -> String {
    let (div, _) = scale(unit, median);
    let d = digits(median / div);
    format!("[{:.*}..{:.*}]", d, min / div, d, max / div)
}

/// The header lines: machine, filesystem, settings.
pub fn header(r: &Report) -> String {
    let m = &r.machine;
    let mut s = format!(
        "ringlog-bench: {} ({} core{} available){}, runs per case: {} (median [min..max])\n",
        m.cpu,
        m.cores,
        if m.cores == 1 { "" } else { "s" },
        if r.quick { ", --quick" } else { "" },
        r.runs
    );
    let _ = write!(
        s,
        "files written to {} ({}){}",
        m.work_dir,
        m.filesystem,
        if m.in_memory_fs() {
            ": an in-memory filesystem, file figures do not measure a disk"
        } else {
            ""
        }
    );
    s
}

fn notes(row: &Row) -> String {
    let mut n = Vec::new();
    if row.oversubscribed {
        n.push(format!("oversubscribed ({} threads)", row.threads));
    }
    if let Some(d) = row.dropped {
        n.push(format!("dropped {d}"));
    }
    if row.unit != Unit::Nanos {
        if let Some(c) = row.cpus {
            n.push(format!("{c:.2} CPUs"));
        }
        if let Some(p) = row.per_call {
            n.push(format!("{p:.1} items/call"));
        }
    }
    n.join(", ")
}

/// The terminal table.
pub fn table(r: &Report) -> String {
    let mut s = header(r);
    s.push('\n');
    let mut last: Option<(&str, &str)> = None;
    for row in &r.rows {
        if last != Some((&row.scenario, &row.group)) {
            let better = match row.better {
                Better::Higher => "higher is better",
                Better::Lower => "lower is better",
            };
            let _ = write!(
                s,
                "\n[{}] {} ({better})\n  {:<52} {:>12}  {:<23} {:>8} {:>8}  notes\n",
                row.scenario, row.group, "case", "median", "min..max", "x peer", "of limit"
            );
            last = Some((&row.scenario, &row.group));
        }
        let tag = match row.role {
            Role::Ringlog => "*",
            Role::Peer => " ",
            Role::Limit => "=",
        };
        let name = format!("{tag} {}", row.name);
        match (row.ok, row.median, row.min, row.max) {
            (true, Some(med), Some(min), Some(max)) => {
                let ratio = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.2}x"));
                let limit = row
                    .vs_limit
                    .map_or("-".into(), |v| format!("{:.0}%", v * 100.0));
                let line = format!(
                    "  {:<52} {:>12}  {:<23} {:>8} {:>8}  {}",
                    name,
                    format_value(row.unit, med),
                    format_range(row.unit, med, min, max),
                    ratio(row.vs_best_peer),
                    limit,
                    notes(row)
                );
                let _ = writeln!(s, "{}", line.trim_end());
            }
            _ => {
                let _ = writeln!(
                    s,
                    "  {:<52} ERROR: {}",
                    name,
                    row.error.as_deref().unwrap_or("no figure")
                );
            }
        }
    }
    let _ = write!(
        s,
        "\n* ringlog   = limit   x peer: times better than the best peer of the group \
         (latency: peer ns / ours)   of limit: share of the group's limit reached\n"
    );
    if r.failures > 0 {
        let _ = writeln!(
            s,
            "{} case(s) lost or corrupted data; no figure printed for them",
            r.failures
        );
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One group's horizontal bar chart: median bars, min–max whiskers, the
/// ratio to the best peer at the end of each bar.
fn chart(rows: &[&Row]) -> String {
    const LABEL: f64 = 330.0;
    const BAR: f64 = 420.0;
    const TAIL: f64 = 230.0;
    const H: f64 = 24.0;
    let width = LABEL + BAR + TAIL;
    let height = H * rows.len() as f64 + 8.0;
    let top = rows
        .iter()
        .filter_map(|r| r.max.or(r.median))
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 4.0 + H * i as f64;
        let colour = match r.role {
            Role::Ringlog => "#2b6cb0",
            Role::Peer => "#a0aec0",
            Role::Limit => "#38a169",
        };
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LABEL - 6.0,
            y + 15.0,
            esc(&r.name)
        );
        match (r.ok, r.median, r.min, r.max) {
            (true, Some(med), Some(min), Some(max)) => {
                let x = |v: f64| LABEL + BAR * (v / top);
                let _ = writeln!(
                    s,
                    "<rect x=\"{LABEL}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{}</title></rect>",
                    y + 3.0,
                    (x(med) - LABEL).max(0.5),
                    H - 8.0,
                    esc(&format!(
                        "median {} min {} max {}",
                        format_value(r.unit, med),
                        format_value(r.unit, min),
                        format_value(r.unit, max)
                    ))
                );
                let mid = y + 3.0 + (H - 8.0) / 2.0;
                let _ = writeln!(
                    s,
                    "<path d=\"M{:.1} {mid:.1}H{:.1}M{:.1} {:.1}V{:.1}M{:.1} {:.1}V{:.1}\" stroke=\"#1a202c\" stroke-width=\"1.2\"/>",
                    x(min),
                    x(max),
                    x(min),
                    mid - 5.0,
                    mid + 5.0,
                    x(max),
                    mid - 5.0,
                    mid + 5.0
                );
                let mut label = format_value(r.unit, med);
                if let Some(v) = r.vs_best_peer {
                    let _ = write!(label, "  {v:.2}x peer");
                }
                if let Some(v) = r.vs_limit {
                    let _ = write!(label, "  {:.0}% of limit", v * 100.0);
                }
                if r.oversubscribed {
                    label.push_str("  (oversubscribed)");
                }
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    x(max).max(x(med)) + 6.0,
                    y + 15.0,
                    esc(&label)
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c53030\">ERROR: {}</text>",
                    LABEL + 4.0,
                    y + 15.0,
                    esc(r.error.as_deref().unwrap_or("no figure"))
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The HTML report: self-contained, no scripts.
pub fn html(r: &Report) -> String {
    let mut s = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>ringlog-bench</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:1100px}\
         h2{border-bottom:1px solid #ccc}h3{font-size:1em;margin-bottom:.2em}\
         .k span{display:inline-block;width:1em;height:1em;margin:0 .3em 0 1em;vertical-align:middle}\
         pre{background:#f7f7f7;padding:.5em}</style></head><body>\n<h1>ringlog-bench</h1>\n",
    );
    let _ = writeln!(s, "<pre>{}</pre>", esc(&header(r)));
    let _ = writeln!(s, "<p>Command: <code>{}</code></p>", esc(&r.command));
    s.push_str(
        "<p class=\"k\">Bars: median of the runs; whiskers: min–max.\
         <span style=\"background:#2b6cb0\"></span>ringlog\
         <span style=\"background:#a0aec0\"></span>peer\
         <span style=\"background:#38a169\"></span>limit</p>\n",
    );
    if r.failures > 0 {
        let _ = writeln!(
            s,
            "<p style=\"color:#c53030\">{} case(s) lost or corrupted data; no figure is shown for them.</p>",
            r.failures
        );
    }
    let mut scenarios: Vec<&str> = Vec::new();
    for row in &r.rows {
        if !scenarios.contains(&row.scenario.as_str()) {
            scenarios.push(&row.scenario);
        }
    }
    for sc in scenarios {
        let _ = writeln!(s, "<h2>{}</h2>", esc(sc));
        let mut groups: Vec<&str> = Vec::new();
        for row in r.rows.iter().filter(|x| x.scenario == sc) {
            if !groups.contains(&row.group.as_str()) {
                groups.push(&row.group);
            }
        }
        for g in groups {
            let rows: Vec<&Row> = r
                .rows
                .iter()
                .filter(|x| x.scenario == sc && x.group == g)
                .collect();
            let better = match rows[0].better {
                Better::Higher => "higher is better",
                Better::Lower => "lower is better",
            };
            let _ = writeln!(s, "<h3>{} ({better})</h3>", esc(g));
            s.push_str(&chart(&rows));
        }
    }
    s.push_str("</body></html>\n");
    s
}
