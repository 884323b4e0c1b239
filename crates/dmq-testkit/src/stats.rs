//! stats.log as the node writes it: `YYYY-MM-DD HH:MM:SS,mmm key:value ...`
//! lines, parsed strictly.

use std::collections::HashSet;
use std::path::Path;

/// One stats.log line: its timestamp and its `key:value` fields in order.
#[derive(Debug, Clone)]
pub struct StatsLine {
    pub timestamp: String,
    pub fields: Vec<(String, String)>,
}

impl StatsLine {
    /// Parses `YYYY-MM-DD HH:MM:SS,mmm key:value key:value ...` (no newline).
    pub fn parse(line: &str) -> Result<StatsLine, String> {
        let err = |e: &str| format!("{e}: {line:?}");
        if line.len() < 24 || !line.is_char_boundary(23) {
            return Err(err("too short for a timestamp"));
        }
        let (timestamp, rest) = line.split_at(23);
        let shape = timestamp.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b' ',
            13 | 16 => b == b':',
            19 => b == b',',
            _ => b.is_ascii_digit(),
        });
        if !shape {
            return Err(err("bad timestamp (YYYY-MM-DD HH:MM:SS,mmm)"));
        }
        let n = |range: std::ops::Range<usize>| timestamp[range].parse::<u32>().unwrap_or(99);
        if !(1..=12).contains(&n(5..7))
            || !(1..=31).contains(&n(8..10))
            || n(11..13) > 23
            || n(14..16) > 59
            || n(17..19) > 60
        {
            return Err(err("timestamp out of range"));
        }
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("no space after the timestamp"))?;
        let mut fields = Vec::new();
        let mut seen = HashSet::new();
        for field in rest.split(' ') {
            let (key, value) = field
                .rsplit_once(':')
                .ok_or_else(|| err(&format!("field {field:?} is not key:value")))?;
            if key.is_empty() || value.is_empty() {
                return Err(err(&format!("empty key or value in {field:?}")));
            }
            if !seen.insert(key.to_owned()) {
                return Err(err(&format!("key {key} twice")));
            }
            fields.push((key.to_owned(), value.to_owned()));
        }
        Ok(StatsLine {
            timestamp: timestamp.to_owned(),
            fields,
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The integer value of `key`; panics if absent or not an integer.
    pub fn int(&self, key: &str) -> u64 {
        let value = self
            .get(key)
            .unwrap_or_else(|| panic!("stats line without {key}: {self:?}"));
        value
            .parse()
            .unwrap_or_else(|e| panic!("stats {key}:{value} is not an integer: {e}"))
    }

    pub fn keys(&self) -> Vec<&str> {
        self.fields.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// The complete lines of a stats.log (a line being written is left out); an
/// absent file has none.
pub fn stats_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The complete lines of a stats.log, parsed; panics on a line that does not parse.
pub fn parsed_stats_lines(path: &Path) -> Vec<StatsLine> {
    stats_lines(path)
        .iter()
        .map(|l| {
            StatsLine::parse(l)
                .unwrap_or_else(|e| panic!("{}: bad stats line: {e}", path.display()))
        })
        .collect()
}
