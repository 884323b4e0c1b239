//! The progress line of long produce and consume runs: records so far and the rate,
//! redrawn with `\r` on standard error at most four times a second, only when
//! standard error is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Shortest time between two redraws.
const REDRAW_INTERVAL: Duration = Duration::from_millis(250);

/// Counts records and redraws the line now and then.
pub struct Progress {
    what: &'static str,
    enabled: bool,
    count: u64,
    start: Instant,
    last_draw: Option<Instant>,
}

impl Progress {
    /// A progress line for records `what` ("produced", "consumed").
    pub fn new(what: &'static str) -> Progress {
        Progress {
            what,
            enabled: std::io::stderr().is_terminal(),
            count: 0,
            start: Instant::now(),
            last_draw: None,
        }
    }

    /// Whether the line is drawn at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// One more record.
    pub fn tick(&mut self) {
        self.count += 1;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let due = match self.last_draw {
            None => true,
            Some(last) => now.duration_since(last) >= REDRAW_INTERVAL,
        };
        if due {
            self.draw(now);
        }
    }

    fn draw(&mut self, now: Instant) {
        let secs = now.duration_since(self.start).as_secs_f64();
        let rate = if secs > 0.0 {
            self.count as f64 / secs
        } else {
            0.0
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} record(s) {}, {:.0}/s   ",
            self.count, self.what, rate
        );
        let _ = err.flush();
        self.last_draw = Some(now);
    }

    /// The final count, then a new line (if the line was drawn).
    pub fn done(&mut self) {
        if self.enabled && self.count > 0 {
            self.draw(Instant::now());
            eprintln!();
        }
    }
}
