//! Running cases: each case runs `--runs` times in this invocation; its row
//! holds the median with min and max, or an error if any run failed its
//! check. After a scenario, every row gets its ratio to the best peer and to
//! the limit of its group.

use crate::check::CheckError;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// What a case is, for the ratios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A ringlog primitive.
    Ringlog,
    /// Another library (or std) doing the same job.
    Peer,
    /// What the hardware or the OS allows (memcpy, a plain write, a
    /// cache-line round trip).
    Limit,
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Better {
    /// Throughput.
    Higher,
    /// Latency.
    Lower,
}

/// The unit of a row's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    /// Items per second.
    #[serde(rename = "items/s")]
    ItemsPerSec,
    /// Bytes per second.
    #[serde(rename = "bytes/s")]
    BytesPerSec,
    /// Nanoseconds.
    #[serde(rename = "ns")]
    Nanos,
}

impl Unit {
    /// Which way is better for this unit.
    pub fn better(self) -> Better {
        match self {
            Unit::Nanos => Better::Lower,
            _ => Better::Higher,
        }
    }
}

/// Settings shared by every scenario.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Runs per case; figures are their median.
    pub runs: usize,
    /// Smaller sizes, about a minute in total.
    pub quick: bool,
    /// Multiplier on every size (tests use a tiny one).
    pub scale: f64,
    /// Where files are written: a directory on the current directory's
    /// filesystem, deleted afterwards.
    pub work_dir: PathBuf,
    /// Threads the machine runs at once.
    pub cores: usize,
    /// Run only the cases whose group or name contains this text
    /// (`--only`); `None` runs every case.
    pub only: Option<String>,
}

impl Settings {
    /// Whether `case` runs under `--only`.
    pub fn selects(&self, case: &Case) -> bool {
        self.only
            .as_deref()
            .is_none_or(|t| case.group.contains(t) || case.name.contains(t))
    }

    /// A size: `full` normally, `quick` with `--quick`, times `--scale`,
    /// at least `floor`.
    pub fn size(&self, full: u64, quick: u64, floor: u64) -> u64 {
        let base = if self.quick { quick } else { full };
        ((base as f64 * self.scale) as u64).max(floor)
    }
}

/// One run's result.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// The figure (in the case's unit).
    pub value: f64,
    /// Items the channel dropped by policy in this run, if it may drop.
    pub dropped: Option<u64>,
    /// Items per consumer call that returned any, for throughput cases.
    pub per_call: Option<f64>,
}

impl Measured {
    /// `work` units done in `elapsed`, per second.
    pub fn rate(work: u64, elapsed: Duration) -> Self {
        Self {
            value: work as f64 / elapsed.as_secs_f64().max(1e-9),
            dropped: None,
            per_call: None,
        }
    }

    /// The same, with the consumer's `items` taken in `calls` calls that
    /// returned any.
    pub fn with_per_call(mut self, items: u64, calls: u64) -> Self {
        self.per_call = Some(items as f64 / calls.max(1) as f64);
        self
    }

    /// The same, with a drop count.
    pub fn with_dropped(mut self, dropped: u64) -> Self {
        self.dropped = Some(dropped);
        self
    }

    /// A duration in nanoseconds.
    pub fn nanos(ns: f64) -> Self {
        Self {
            value: ns,
            dropped: None,
            per_call: None,
        }
    }
}

/// Describes a case before it runs.
#[derive(Debug, Clone)]
pub struct Case {
    /// Cases compared with each other share a group.
    pub group: String,
    /// What is measured, e.g. `ringlog mpsc Block`.
    pub name: String,
    /// Ours, a peer, or a limit.
    pub role: Role,
    /// The unit.
    pub unit: Unit,
    /// Threads the case runs at once.
    pub threads: usize,
}

impl Case {
    /// A case.
    pub fn new(
        group: impl Into<String>,
        name: impl Into<String>,
        role: Role,
        unit: Unit,
        threads: usize,
    ) -> Self {
        Self {
            group: group.into(),
            name: name.into(),
            role,
            unit,
            threads,
        }
    }
}

/// One line of the results.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The scenario.
    pub scenario: String,
    /// The group within the scenario; ratios are taken within it.
    pub group: String,
    /// What was measured.
    pub name: String,
    /// Ours, a peer, or a limit.
    pub role: Role,
    /// The unit of `median`, `min`, `max`.
    pub unit: Unit,
    /// Which way is better.
    pub better: Better,
    /// Threads that ran at once.
    pub threads: usize,
    /// More threads than the machine runs at once.
    pub oversubscribed: bool,
    /// Every run passed its check.
    pub ok: bool,
    /// Why not, when `ok` is false.
    pub error: Option<String>,
    /// Runs measured.
    pub runs: usize,
    /// Median over the runs.
    pub median: Option<f64>,
    /// Smallest run.
    pub min: Option<f64>,
    /// Largest run.
    pub max: Option<f64>,
    /// Median of the items dropped by policy, for lossy cases.
    pub dropped: Option<u64>,
    /// Median CPUs the process used during a run: user + system time from
    /// `getrusage` over the run's wall time (2.0: two cores busy).
    pub cpus: Option<f64>,
    /// Median items per consumer call that returned any (throughput
    /// cases that report it).
    pub per_call: Option<f64>,
    /// How many times better than the best peer of the group (>1: better;
    /// for latency, peer ns / our ns).
    pub vs_best_peer: Option<f64>,
    /// The peer it is compared with.
    pub best_peer: Option<String>,
    /// Fraction of the group's limit reached (for latency, limit ns / ns).
    pub vs_limit: Option<f64>,
}

/// One case's run in [`Bench::rounds`].
pub type RoundRun<'a> = Box<dyn FnMut() -> Result<Measured, CheckError> + 'a>;

/// What the runs of one case gave so far.
#[derive(Debug)]
struct Tally {
    /// Per metric, one figure per run.
    values: Vec<Vec<f64>>,
    dropped: Vec<u64>,
    cpus: Vec<f64>,
    per_call: Vec<f64>,
    error: Option<String>,
}

impl Tally {
    fn new(metrics: usize) -> Self {
        Self {
            values: vec![Vec::new(); metrics],
            dropped: Vec::new(),
            cpus: Vec::new(),
            per_call: Vec::new(),
            error: None,
        }
    }
}

/// Runs cases and collects rows, with a progress line on stderr.
#[derive(Debug)]
pub struct Bench {
    /// Settings for every scenario.
    pub settings: Settings,
    rows: Vec<Row>,
    scenario: String,
    progress: ProgressBar,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Bench {
    /// A runner; `progress` false hides the progress line.
    pub fn new(settings: Settings, progress: bool) -> Self {
        let bar = if progress {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .expect("static template"),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            ProgressBar::hidden()
        };
        Self {
            settings,
            rows: Vec::new(),
            scenario: String::new(),
            progress: bar,
        }
    }

    /// Starts a scenario: the rows that follow belong to it.
    pub fn scenario(&mut self, name: &str) {
        self.finish_scenario();
        self.scenario = name.to_string();
    }

    /// Runs `run` `--runs` times and records a row. A run that fails its
    /// check stops the case and makes the row an error.
    pub fn case(&mut self, case: Case, mut run: impl FnMut() -> Result<Measured, CheckError>) {
        self.case_metrics(case, &[""], |_| Ok(vec![run()?]));
    }

    /// A throughput case, run pinned (consumer and producers on different
    /// cores, see [`crate::pin`]) and unpinned: one row in the group
    /// `"<group>, pinned"` and one in `"<group>, unpinned"`, so that ratios
    /// compare runs of the same kind. Producers must be spawned with
    /// [`crate::pin::spawn`]. Without two cores the pinned row is left out.
    pub fn throughput(
        &mut self,
        case: Case,
        mut run: impl FnMut() -> Result<Measured, CheckError> + Send,
    ) {
        for (label, pinned) in [("pinned", true), ("unpinned", false)] {
            if pinned && crate::pin::cores().is_empty() {
                continue;
            }
            let mut c = case.clone();
            c.group = format!("{}, {label}", case.group);
            self.case(c, || {
                crate::pin::run(pinned, &mut run)
                    .unwrap_or_else(|| Err(CheckError::new("the OS refused to pin the consumer")))
            });
        }
    }

    /// Like [`case`](Self::case) for a run that yields several figures (the
    /// latency percentiles): one row per metric, its name appended to the
    /// group.
    pub fn case_metrics(
        &mut self,
        case: Case,
        metrics: &[&str],
        mut run: impl FnMut(usize) -> Result<Vec<Measured>, CheckError>,
    ) {
        if !self.settings.selects(&case) {
            return;
        }
        let mut t = Tally::new(metrics.len());
        for i in 0..self.settings.runs.max(1) {
            if !self.run_once(&case, i, &mut t, &mut run) {
                break;
            }
        }
        self.push_rows(&case, metrics, t);
    }

    /// Cases measured in the same rounds: run `i` of every case, in order,
    /// before run `i + 1` of any, so that a limit and what is read against
    /// it see the same machine (the same load, the same disk state). One
    /// row each, as [`case`](Self::case) makes. A failed run stops its own
    /// case only.
    pub fn rounds(&mut self, cases: Vec<(Case, RoundRun<'_>)>) {
        let mut cases: Vec<_> = cases
            .into_iter()
            .filter(|(c, _)| self.settings.selects(c))
            .collect();
        let mut tallies: Vec<Tally> = cases.iter().map(|_| Tally::new(1)).collect();
        for i in 0..self.settings.runs.max(1) {
            for ((case, run), t) in cases.iter_mut().zip(&mut tallies) {
                if t.error.is_none() {
                    self.run_once(case, i, t, &mut |_| Ok(vec![run()?]));
                }
            }
        }
        for ((case, _), t) in cases.iter().zip(tallies) {
            self.push_rows(case, &[""], t);
        }
    }

    /// Run `i` of `case` into `t`; false if it failed (the error is in `t`).
    fn run_once(
        &mut self,
        case: &Case,
        i: usize,
        t: &mut Tally,
        run: &mut dyn FnMut(usize) -> Result<Vec<Measured>, CheckError>,
    ) -> bool {
        let runs = self.settings.runs.max(1);
        self.progress.set_message(format!(
            "{} / {} / {} (run {}/{runs})",
            self.scenario,
            case.group,
            case.name,
            i + 1
        ));
        let (cpu0, wall0) = (crate::pin::cpu_time(), std::time::Instant::now());
        let result = run(i);
        let wall = wall0.elapsed().as_secs_f64().max(1e-9);
        t.cpus
            .push((crate::pin::cpu_time().saturating_sub(cpu0)).as_secs_f64() / wall);
        match result {
            Ok(ms) if ms.len() == t.values.len() => {
                for (v, m) in t.values.iter_mut().zip(&ms) {
                    v.push(m.value);
                }
                if let Some(d) = ms[0].dropped {
                    t.dropped.push(d);
                }
                if let Some(p) = ms[0].per_call {
                    t.per_call.push(p);
                }
                true
            }
            Ok(ms) => {
                t.error = Some(format!(
                    "run gave {} figures, expected {}",
                    ms.len(),
                    t.values.len()
                ));
                false
            }
            Err(e) => {
                t.error = Some(format!("run {}: {e}", i + 1));
                false
            }
        }
    }

    /// The rows of a case from its runs: one per metric.
    fn push_rows(&mut self, case: &Case, metrics: &[&str], t: Tally) {
        let Tally {
            values,
            mut dropped,
            mut cpus,
            mut per_call,
            error,
        } = t;
        dropped.sort_unstable();
        let cpus = (error.is_none() && !cpus.is_empty()).then(|| median(&mut cpus));
        let per_call = (error.is_none() && !per_call.is_empty()).then(|| median(&mut per_call));
        for (metric, mut v) in metrics.iter().zip(values) {
            let group = if metric.is_empty() {
                case.group.clone()
            } else {
                format!("{} {metric}", case.group)
            };
            let ok = error.is_none();
            let (med, min, max) = if ok && !v.is_empty() {
                let med = median(&mut v);
                (Some(med), v.first().copied(), v.last().copied())
            } else {
                (None, None, None)
            };
            self.rows.push(Row {
                scenario: self.scenario.clone(),
                group,
                name: case.name.clone(),
                role: case.role,
                unit: case.unit,
                better: case.unit.better(),
                threads: case.threads,
                oversubscribed: case.threads > self.settings.cores,
                ok,
                error: error.clone(),
                runs: v.len(),
                median: med,
                min,
                max,
                dropped: (ok && !dropped.is_empty()).then(|| dropped[dropped.len() / 2]),
                cpus,
                per_call,
                vs_best_peer: None,
                best_peer: None,
                vs_limit: None,
            });
        }
    }

    /// Records a row for a case that could not run at all.
    pub fn failed(&mut self, case: Case, error: impl Into<String>) {
        let e: String = error.into();
        self.case(case, || Err(CheckError::new(e.clone())));
    }

    fn finish_scenario(&mut self) {
        let start = self
            .rows
            .iter()
            .rposition(|r| r.scenario != self.scenario)
            .map_or(0, |i| i + 1);
        let rows = &mut self.rows[start..];
        // Keep each group's rows together (a latency case adds one row to
        // each percentile's group), in order of first appearance.
        let mut order: Vec<String> = Vec::new();
        for r in rows.iter() {
            if !order.contains(&r.group) {
                order.push(r.group.clone());
            }
        }
        rows.sort_by_key(|r| order.iter().position(|g| *g == r.group));
        compute_ratios(rows);
    }

    /// Ends the last scenario, clears the progress line and returns the rows.
    pub fn finish(mut self) -> Vec<Row> {
        self.finish_scenario();
        self.progress.finish_and_clear();
        self.rows
    }

    /// Prints a line above the progress indicator (on stderr).
    pub fn note(&self, msg: &str) {
        self.progress.suspend(|| eprintln!("{msg}"));
    }
}

/// Fills `vs_best_peer` and `vs_limit` for rows of the same group.
pub fn compute_ratios(rows: &mut [Row]) {
    let groups: Vec<String> = rows.iter().map(|r| r.group.clone()).collect();
    for g in groups {
        let in_group = |r: &&Row| r.group == g && r.ok;
        let better = |a: f64, b: f64, lower: bool| if lower { a < b } else { a > b };
        let mut best_peer: Option<(f64, String)> = None;
        let mut limit: Option<f64> = None;
        for r in rows.iter().filter(in_group) {
            let (Some(m), lower) = (r.median, r.better == Better::Lower) else {
                continue;
            };
            match r.role {
                Role::Peer => {
                    if best_peer.as_ref().is_none_or(|(b, _)| better(m, *b, lower)) {
                        best_peer = Some((m, r.name.clone()));
                    }
                }
                Role::Limit => {
                    if limit.is_none_or(|l| better(m, l, lower)) {
                        limit = Some(m);
                    }
                }
                Role::Ringlog => {}
            }
        }
        for r in rows.iter_mut().filter(|r| r.group == g && r.ok) {
            let Some(m) = r.median else { continue };
            let ratio = |base: f64| match r.better {
                Better::Higher => m / base,
                Better::Lower => base / m,
            };
            if r.role != Role::Limit {
                if let Some((b, name)) = &best_peer {
                    r.vs_best_peer = Some(ratio(*b));
                    r.best_peer = Some(name.clone());
                }
                r.vs_limit = limit.map(ratio);
            }
        }
    }
}
