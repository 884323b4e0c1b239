//! Bounded polling, for what the node does a moment after it answered.

use std::time::{Duration, Instant};

/// Polls `cond` every `every` until it holds or `timeout` passed; whether it
/// held.
pub fn wait_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    // Bounded: at most timeout / every rounds.
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// Calls `check` every 50 ms until it returns `Ok`, for at most `timeout`;
/// panics naming `what` (and the last `Err` description) past that.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    // Bounded: at most timeout / 50 ms rounds.
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) => {
                if Instant::now() >= deadline {
                    panic!("{what}: not reached within {timeout:?}; last state: {last}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
