//! Latency in HDR histograms: nanoseconds from 1 ns to 60 s with 3 significant
//! digits (0.1 % resolution at every magnitude), one histogram per worker thread,
//! merged at the end.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Longest latency the histograms hold; longer ones are recorded as this.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// The percentiles of the latency chart (`100` is the maximum).
pub const SPECTRUM_PERCENTILES: [f64; 14] = [
    0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999, 100.0,
];

/// An empty histogram with the harness's bounds.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (low 1, high > 2 * low,
    // 3 significant digits); this cannot fail.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).unwrap_or_else(|_| {
        unreachable!("constant histogram bounds are valid");
    })
}

/// Records one latency, clamped to the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let ns = u64::try_from(latency.as_nanos()).unwrap_or(MAX_LATENCY_NS);
    histogram.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
}

/// Adds `other` into `into` (same bounds, so this cannot fail).
pub fn merge(into: &mut Histogram<u64>, other: &Histogram<u64>) {
    into.add(other).unwrap_or_else(|_| {
        unreachable!("histograms made by new_histogram have the same bounds");
    });
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The latency figures of a run, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Latencies recorded.
    pub count: u64,
    pub min_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p99_9_us: f64,
    pub p99_99_us: f64,
    pub max_us: f64,
}

impl LatencySummary {
    /// The summary of `histogram`, or `None` when it is empty.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Option<LatencySummary> {
        if histogram.is_empty() {
            return None;
        }
        let at = |percentile: f64| us(histogram.value_at_percentile(percentile));
        Some(LatencySummary {
            count: histogram.len(),
            min_us: us(histogram.min()),
            mean_us: histogram.mean() / 1000.0,
            p50_us: at(50.0),
            p90_us: at(90.0),
            p99_us: at(99.0),
            p99_9_us: at(99.9),
            p99_99_us: at(99.99),
            max_us: us(histogram.max()),
        })
    }
}

/// One point of the latency-by-percentile chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PercentilePoint {
    pub percentile: f64,
    pub latency_us: f64,
}

/// The latency at each of [`SPECTRUM_PERCENTILES`]; empty for an empty histogram.
pub fn spectrum(histogram: &Histogram<u64>) -> Vec<PercentilePoint> {
    if histogram.is_empty() {
        return Vec::new();
    }
    SPECTRUM_PERCENTILES
        .iter()
        .map(|&percentile| {
            let ns = match percentile {
                p if p <= 0.0 => histogram.min(),
                p if p >= 100.0 => histogram.max(),
                p => histogram.value_at_percentile(p),
            };
            PercentilePoint {
                percentile,
                latency_us: us(ns),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        // 3 significant digits: values are exact to 0.1 %.
        (actual - expected).abs() <= expected * 0.001 + 0.001
    }

    #[test]
    fn known_latencies_give_their_percentiles() {
        let mut h = new_histogram();
        for us in 1..=10_000u64 {
            record(&mut h, Duration::from_micros(us));
        }
        let s = LatencySummary::from_histogram(&h).expect("not empty");
        assert_eq!(s.count, 10_000);
        for (got, want) in [
            (s.min_us, 1.0),
            (s.p50_us, 5_000.0),
            (s.p90_us, 9_000.0),
            (s.p99_us, 9_900.0),
            (s.p99_9_us, 9_990.0),
            (s.p99_99_us, 9_999.0),
            (s.max_us, 10_000.0),
            (s.mean_us, 5_000.5),
        ] {
            assert!(close(got, want), "got {got}, want {want}");
        }
    }

    #[test]
    fn a_slow_tail_shows_above_its_percentile_only() {
        // 990 fast requests and 10 slow ones: the slow 1 % is above p99.
        let mut h = new_histogram();
        for _ in 0..990 {
            record(&mut h, Duration::from_micros(100));
        }
        for _ in 0..10 {
            record(&mut h, Duration::from_millis(10));
        }
        let s = LatencySummary::from_histogram(&h).expect("not empty");
        assert!(close(s.p50_us, 100.0) && close(s.p90_us, 100.0) && close(s.p99_us, 100.0));
        assert!(close(s.p99_9_us, 10_000.0) && close(s.max_us, 10_000.0));
    }

    #[test]
    fn merging_adds_counts_and_extremes_are_clamped() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        record(&mut a, Duration::from_micros(10));
        record(&mut b, Duration::from_micros(30));
        record(&mut b, Duration::ZERO);
        record(&mut b, Duration::from_secs(3600));
        merge(&mut a, &b);
        let s = LatencySummary::from_histogram(&a).expect("not empty");
        assert_eq!(s.count, 4);
        assert!(s.min_us <= 0.002);
        assert!(close(s.max_us, MAX_LATENCY_NS as f64 / 1000.0));
        assert!(LatencySummary::from_histogram(&new_histogram()).is_none());
        let points = spectrum(&a);
        assert_eq!(points.len(), SPECTRUM_PERCENTILES.len());
        assert!(points
            .windows(2)
            .all(|w| w[0].latency_us <= w[1].latency_us));
        assert!(spectrum(&new_histogram()).is_empty());
    }
}
