//! What the figures were taken on: CPU model, cores, and the filesystem the
//! scenarios write to.

use serde::Serialize;
use std::path::Path;

/// The machine, as printed in the header of every output.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu: String,
    /// `std::thread::available_parallelism`.
    pub cores: usize,
    /// Filesystem type of the directory files are written to.
    pub filesystem: String,
    /// That directory.
    pub work_dir: String,
}

impl Machine {
    /// Reads the CPU model and core count, and the filesystem of `dir`.
    pub fn probe(dir: &Path) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            cpu,
            cores,
            filesystem: filesystem_of(dir).unwrap_or_else(|| "unknown".into()),
            work_dir: dir.display().to_string(),
        }
    }

    /// True when writes land in memory (tmpfs, ramfs), so the file figures
    /// say nothing about a disk.
    pub fn in_memory_fs(&self) -> bool {
        matches!(self.filesystem.as_str(), "tmpfs" | "ramfs")
    }
}

/// The type of the filesystem mounted at the longest mount point that is a
/// prefix of `dir`, from `/proc/mounts`.
fn filesystem_of(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, ty) = (f.next()?, f.next()?, f.next()?);
            let at = at.replace("\\040", " ");
            dir.starts_with(&at).then(|| (at.len(), ty.to_string()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, ty)| ty)
}
