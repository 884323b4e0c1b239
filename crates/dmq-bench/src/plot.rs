//! SVG charts, written by hand: throughput over time (1 s buckets) and latency by
//! percentile. An SVG names its font family and the viewer renders the text, so
//! nothing here needs fonts or a drawing library (plotters' SVG backend measures
//! text with a font of its own, which would mean shipping one).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::report::Report;
use crate::Error;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// One axis: its range (in data units, log10 of them for a log axis), ticks and
/// label.
#[derive(Debug, Clone)]
pub struct Axis {
    pub label: String,
    pub min: f64,
    pub max: f64,
    pub log: bool,
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    fn position(&self, value: f64) -> f64 {
        let v = if self.log {
            value.max(f64::MIN_POSITIVE).log10()
        } else {
            value
        };
        let (min, max) = if self.log {
            (self.min.log10(), self.max.log10())
        } else {
            (self.min, self.max)
        };
        if max > min {
            ((v - min) / (max - min)).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `value`.
pub fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|&v| v >= value * 0.999_999)
        .unwrap_or(10.0 * power)
}

fn linear_axis(label: &str, max_value: f64, unit_scale: f64, suffix: &str) -> Axis {
    let max = nice_ceiling(max_value);
    let ticks = (0..=5)
        .map(|i| {
            let v = max * f64::from(i) / 5.0;
            let text = if v == 0.0 {
                "0".to_owned()
            } else {
                format!("{}{suffix}", trim_number(v / unit_scale))
            };
            (v, text)
        })
        .collect();
    Axis {
        label: label.to_owned(),
        min: 0.0,
        max,
        log: false,
        ticks,
    }
}

fn trim_number(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A line chart of `points` (data units) with markers.
pub fn line_chart(title: &str, x: &Axis, y: &Axis, points: &[(f64, f64)]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |v: f64| LEFT + x.position(v) * plot_w;
    let py = |v: f64| TOP + (1.0 - y.position(v)) * plot_h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    for (value, text) in &y.ticks {
        let yy = py(*value);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 8.0,
            yy + 4.0,
            escape(text)
        );
    }
    for (value, text) in &x.ticks {
        let xx = px(*value);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 18.0,
            escape(text)
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0,
        escape(&x.label)
    );
    let _ = writeln!(
        s,
        r#"<text x="20" y="{:.1}" text-anchor="middle" transform="rotate(-90 20 {:.1})">{}</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        escape(&y.label)
    );
    if !points.is_empty() {
        let path: Vec<String> = points
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", px(a), py(b)))
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
            path.join(" ")
        );
        for &(a, b) in points {
            let _ = writeln!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f77b4"/>"##,
                px(a),
                py(b)
            );
        }
    } else {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no data</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn title(report: &Report, what: &str) -> String {
    format!(
        "{what}: {} → {}, {} conn × {} in flight, {} B",
        report.workload, report.target, report.connections, report.in_flight, report.size
    )
}

/// Records per second in each 1 s bucket of the window.
pub fn throughput_svg(report: &Report) -> String {
    let points: Vec<(f64, f64)> = report
        .timeline
        .iter()
        .map(|p| (p.t_s, p.records_per_s))
        .collect();
    let max_t = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let max_rate = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let x = linear_axis("seconds into the measurement", max_t, 1.0, "");
    let (scale, unit) = if max_rate >= 1e6 {
        (1e6, "M")
    } else if max_rate >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let y = linear_axis("records per second", max_rate, scale, unit);
    line_chart(&title(report, "Throughput"), &x, &y, &points)
}

/// x position of a percentile: log10(1 / (1 - p)), so that 90, 99, 99.9 ... are
/// evenly spaced; the maximum goes half a step past the last percentile.
fn percentile_x(percentile: f64, last: f64) -> f64 {
    if percentile >= 100.0 {
        last + 0.5
    } else {
        (1.0 / (1.0 - percentile / 100.0)).log10()
    }
}

/// Latency (log scale) at each percentile of the spectrum.
pub fn latency_svg(report: &Report) -> String {
    let spectrum = &report.latency_percentiles;
    let last = spectrum
        .iter()
        .filter(|p| p.percentile < 100.0)
        .map(|p| percentile_x(p.percentile, 0.0))
        .fold(0.0, f64::max);
    let points: Vec<(f64, f64)> = spectrum
        .iter()
        .map(|p| (percentile_x(p.percentile, last), p.latency_us.max(0.001)))
        .collect();
    let mut x_ticks: Vec<(f64, String)> = [0.0, 90.0, 99.0, 99.9, 99.99, 99.999]
        .iter()
        .filter(|&&p| percentile_x(p, last) <= last + 1e-9)
        .map(|&p| (percentile_x(p, last), format!("{p}%")))
        .collect();
    x_ticks.push((last + 0.5, "max".into()));
    let x = Axis {
        label: "percentile".into(),
        min: 0.0,
        max: last + 0.5,
        log: false,
        ticks: x_ticks,
    };
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let (lo_exp, hi_exp) = if points.is_empty() {
        (0, 3)
    } else {
        (
            lo.log10().floor() as i32,
            (hi.log10().ceil() as i32).max(lo.log10().floor() as i32 + 1),
        )
    };
    let y = Axis {
        label: "latency (µs, log scale)".into(),
        min: 10f64.powi(lo_exp),
        max: 10f64.powi(hi_exp),
        log: true,
        ticks: (lo_exp..=hi_exp)
            .map(|e| (10f64.powi(e), trim_number(10f64.powi(e))))
            .collect(),
    };
    line_chart(&title(report, "Latency by percentile"), &x, &y, &points)
}

/// Writes `throughput.svg` and `latency.svg` (prefixed with `prefix` if given)
/// into `dir`, creating it.
pub fn write_plots(report: &Report, dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let mut written = Vec::new();
    for (name, svg) in [
        ("throughput.svg", throughput_svg(report)),
        ("latency.svg", latency_svg(report)),
    ] {
        let path = dir.join(format!("{prefix}{name}"));
        std::fs::write(&path, svg)
            .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::{new_histogram, record, spectrum};
    use crate::report::TimelinePoint;
    use std::time::Duration;

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.2), 2.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(849_000.0), 1_000_000.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
    }

    #[test]
    fn plots_are_svg_with_one_marker_per_point() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h = new_histogram();
        for us in 1..=1000 {
            record(&mut h, Duration::from_micros(us));
        }
        let mut report = crate::report::tests::sample();
        report.latency_percentiles = spectrum(&h);
        report.timeline = (1..=4)
            .map(|t| TimelinePoint {
                t_s: f64::from(t),
                records_per_s: 1000.0 * f64::from(t),
                mb_per_s: 0.1 * f64::from(t),
            })
            .collect();
        let paths = write_plots(&report, &dir.path().join("plots"), "x-").expect("write");
        assert_eq!(paths.len(), 2);
        let throughput = std::fs::read_to_string(&paths[0]).expect("read");
        assert!(throughput.starts_with("<svg") && throughput.trim_end().ends_with("</svg>"));
        assert_eq!(throughput.matches("<circle").count(), 4);
        assert!(throughput.contains("records per second"));
        let latency = std::fs::read_to_string(&paths[1]).expect("read");
        assert_eq!(
            latency.matches("<circle").count(),
            report.latency_percentiles.len()
        );
        assert!(latency.contains("99.9%") && latency.contains(">max<"));
        // No data: still a valid chart.
        report.timeline.clear();
        assert!(throughput_svg(&report).contains("no data"));
    }
}
