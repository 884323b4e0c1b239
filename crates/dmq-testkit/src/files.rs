//! The node's data-directory files as a test sees them: which overflow
//! segments exist, their sizes, their names' parts.

use std::path::Path;

/// `server.data_dir=<dir>`, for a node whose data directory the test owns (to
/// look at its files, or to start another node on it).
pub fn data_dir_arg(dir: &Path) -> String {
    format!("server.data_dir={}", dir.display())
}

/// The overflow segment files (`overflow-*.dat`) in `dir`: name and size,
/// sorted by name. A missing directory has none.
pub fn overflow_files(dir: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, u64)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("overflow-") && name.ends_with(".dat")) {
                return None;
            }
            // A file deleted between read_dir and metadata counts as gone.
            let len = e.metadata().ok()?.len();
            Some((name, len))
        })
        .collect();
    files.sort();
    files
}

/// The total size of the overflow segment files in `dir`.
pub fn overflow_bytes(dir: &Path) -> u64 {
    overflow_files(dir).iter().map(|(_, len)| len).sum()
}

/// Splits an overflow segment file name `overflow-<shard>of<nshards>-<seq>.dat`
/// into its three numbers; `None` if the name has another form.
pub fn parse_overflow_name(name: &str) -> Option<(u64, u64, u64)> {
    let middle = name.strip_prefix("overflow-")?.strip_suffix(".dat")?;
    let (shards, seq) = middle.split_once('-')?;
    let (shard, nshards) = shards.split_once("of")?;
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((number(shard)?, number(nshards)?, number(seq)?))
}

/// Names of the files in `dir` ending in `suffix`, sorted.
pub fn files_ending_with(dir: &Path, suffix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}
