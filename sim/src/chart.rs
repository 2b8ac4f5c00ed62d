//! A hand-written SVG line chart of balances over time: step lines per account,
//! dots for recharges, date and dollar axes, and a legend. Money is converted to
//! floats here only to place pixels.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::DateTime;
use recharge_policy_sdk::model::Timestamp;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::workload::DAY;

/// A chart to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The title above the plot.
    pub title: String,
    /// The lines.
    pub series: Vec<Series>,
}

/// One line: a balance over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its legend entry.
    pub label: String,
    /// Its colour, as an index into the palette.
    pub color: usize,
    /// Whether the line is dashed (the second policy of a comparison).
    pub dashed: bool,
    /// The balance from each time on (a step line).
    pub points: Vec<(Timestamp, Decimal)>,
    /// Dots: recharges, at their time and the balance then.
    pub marks: Vec<(Timestamp, Decimal)>,
    /// Shaded spans: when the account was paused.
    pub paused: Vec<(Timestamp, Timestamp)>,
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// The plot's coordinate system: data to pixels.
struct Frame {
    from: Timestamp,
    to: Timestamp,
    low: f64,
    high: f64,
}

impl Frame {
    fn of(chart: &Chart) -> Frame {
        let times = chart
            .series
            .iter()
            .flat_map(|series| series.points.iter().map(|(at, _)| *at));
        let (from, to) = times.fold((Timestamp::MAX, Timestamp::MIN), |(from, to), at| {
            (from.min(at), to.max(at))
        });
        let (from, to) = if from > to {
            (0, DAY)
        } else {
            (from, to.max(from + 1))
        };
        let values = chart.series.iter().flat_map(|series| {
            series
                .points
                .iter()
                .chain(&series.marks)
                .map(|(_, value)| dollars(*value))
        });
        let (low, high) = values.fold((0.0_f64, 0.0_f64), |(low, high), value| {
            (low.min(value), high.max(value))
        });
        let step = nice_step(high - low, 6.0);
        let low = (low / step).floor() * step;
        let high = ((high / step).ceil() * step).max(low + step);
        Frame {
            from,
            to,
            low,
            high,
        }
    }

    fn x(&self, at: Timestamp) -> f64 {
        LEFT + (at - self.from) as f64 / (self.to - self.from) as f64 * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        HEIGHT - BOTTOM - (value - self.low) / (self.high - self.low) * (HEIGHT - TOP - BOTTOM)
    }
}

fn dollars(amount: Decimal) -> f64 {
    amount.to_f64().unwrap_or_default()
}

/// A round step (1, 2 or 5 times a power of ten) giving about `ticks` ticks.
fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(0.01);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power)
}

/// Render the chart as a standalone SVG document.
pub fn render(chart: &Chart) -> String {
    let frame = Frame::of(chart);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="28" font-size="16">{}</text>"#,
        escape(&chart.title)
    );
    for series in &chart.series {
        shade_pauses(&mut svg, &frame, series);
    }
    dollar_axis(&mut svg, &frame);
    date_axis(&mut svg, &frame);
    for series in &chart.series {
        line(&mut svg, &frame, series);
    }
    legend(&mut svg, chart);
    svg.push_str("</svg>\n");
    svg
}

fn dollar_axis(svg: &mut String, frame: &Frame) {
    let step = nice_step(frame.high - frame.low, 6.0);
    let mut value = frame.low;
    while value <= frame.high + step / 2.0 {
        let y = frame.y(value);
        let stroke = if value.abs() < step / 2.0 {
            "#666"
        } else {
            "#e5e5e5"
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{stroke}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            dollar_label(value),
        );
        value += step;
    }
    let _ = writeln!(
        svg,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">balance (USD)</text>"#,
        (HEIGHT - BOTTOM + TOP) / 2.0
    );
}

/// `$40`, `-$10`.
fn dollar_label(value: f64) -> String {
    let sign = if value < -0.005 { "-" } else { "" };
    if value.fract().abs() < 0.005 {
        format!("{sign}${:.0}", value.abs())
    } else {
        format!("{sign}${:.2}", value.abs())
    }
}

fn date_axis(svg: &mut String, frame: &Frame) {
    let days = ((frame.to - frame.from) / DAY).max(1);
    let step = [1, 2, 7, 14, 28, 56, 91, 182, 364]
        .into_iter()
        .find(|step| days / step <= 10)
        .unwrap_or(728);
    let first = (frame.from + DAY - 1).div_euclid(DAY) * DAY;
    let bottom = HEIGHT - BOTTOM;
    let mut at = first;
    while at <= frame.to {
        let x = frame.x(at);
        let label = DateTime::from_timestamp_millis(at)
            .map(|time| time.format("%b %d").to_string())
            .unwrap_or_default();
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom}" stroke="#f0f0f0"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            bottom + 18.0
        );
        at += step * DAY;
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/>"##,
        WIDTH - LEFT - RIGHT,
        HEIGHT - TOP - BOTTOM
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">date (UTC)</text>"#,
        (WIDTH - RIGHT + LEFT) / 2.0,
        HEIGHT - 12.0
    );
}

fn color(series: &Series) -> &'static str {
    PALETTE[series.color % PALETTE.len()]
}

fn shade_pauses(svg: &mut String, frame: &Frame, series: &Series) {
    for (from, to) in &series.paused {
        let (left, right) = (frame.x(*from), frame.x(*to));
        let _ = writeln!(
            svg,
            r#"<rect class="paused" x="{left:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="0.15"/>"#,
            (right - left).max(1.0),
            HEIGHT - TOP - BOTTOM,
            color(series)
        );
    }
}

fn line(svg: &mut String, frame: &Frame, series: &Series) {
    let mut points = String::new();
    let mut previous: Option<f64> = None;
    for (at, value) in &series.points {
        let (x, y) = (frame.x(*at), frame.y(dollars(*value)));
        if let Some(previous) = previous {
            let _ = write!(points, "{x:.1},{previous:.1} ");
        }
        let _ = write!(points, "{x:.1},{y:.1} ");
        previous = Some(y);
    }
    let dash = if series.dashed {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    };
    let _ = writeln!(
        svg,
        r#"<polyline class="series" fill="none" stroke="{}" stroke-width="1.5"{dash} points="{}"/>"#,
        color(series),
        points.trim_end()
    );
    for (at, value) in &series.marks {
        let _ = writeln!(
            svg,
            r#"<circle class="mark" cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
            frame.x(*at),
            frame.y(dollars(*value)),
            color(series)
        );
    }
}

fn legend(svg: &mut String, chart: &Chart) {
    let x = WIDTH - RIGHT + 16.0;
    let mut y = TOP + 10.0;
    for series in &chart.series {
        let dash = if series.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" y1="{y}" x2="{:.1}" y2="{y}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 24.0,
            color(series),
            x + 30.0,
            y + 4.0,
            escape(&series.label)
        );
        y += 20.0;
    }
    let _ = writeln!(
        svg,
        r##"<circle cx="{:.1}" cy="{y}" r="3" fill="#555"/><text x="{:.1}" y="{:.1}">recharge or top-up</text>"##,
        x + 12.0,
        x + 30.0,
        y + 4.0
    );
    let y = y + 20.0;
    let _ = writeln!(
        svg,
        r##"<rect x="{x}" y="{:.1}" width="24" height="12" fill="#555" fill-opacity="0.15"/><text x="{:.1}" y="{:.1}">paused</text>"##,
        y - 6.0,
        x + 30.0,
        y + 4.0
    );
}

/// Write a rendered chart whole or not at all: into a temporary file in the
/// same directory (so the rename cannot cross file systems), flushed to disk,
/// then renamed over `path`. On any failure the temporary file is removed and
/// `path` is left as it was.
pub fn write(path: &Path, svg: &str) -> io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temporary = OsString::from(".");
    temporary.push(name);
    temporary.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let temporary = dir.join(temporary);
    let mut file = File::create_new(&temporary)?;
    let written = file
        .write_all(svg.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            std::fs::rename(&temporary, path)
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(label: &str, color: usize) -> Series {
        let point = |day: i64, dollars: i64| (day * DAY, Decimal::new(dollars * 100, 2));
        Series {
            label: label.into(),
            color,
            dashed: color > 1,
            points: vec![point(0, 25), point(3, 8), point(3, 33), point(40, -4)],
            marks: vec![point(3, 33)],
            paused: vec![(10 * DAY, 12 * DAY)],
        }
    }

    /// Every opened element is closed, in order.
    fn well_formed(svg: &str) -> bool {
        let mut open = Vec::new();
        for tag in svg.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap_or_default();
            if let Some(name) = tag.strip_prefix('/') {
                if open.pop() != Some(name.trim().to_owned()) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
        open.is_empty()
    }

    #[test]
    fn the_chart_is_svg_with_one_line_per_series() {
        let chart = Chart {
            title: "Balances <&>".into(),
            series: vec![
                series("user-01", 0),
                series("user-02", 1),
                series("user-03", 2),
            ],
        };
        let svg = render(&chart);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        assert!(well_formed(&svg), "{svg}");
        assert_eq!(svg.matches("class=\"series\"").count(), 3);
        assert_eq!(svg.matches("class=\"mark\"").count(), 3);
        assert_eq!(svg.matches("class=\"paused\"").count(), 3);
        assert_eq!(
            svg.matches("stroke-dasharray").count(),
            2,
            "one dashed line and its legend entry"
        );
        assert!(svg.contains("user-02"));
        assert!(svg.contains("Balances &lt;&amp;&gt;"));
        assert!(
            svg.contains("Jan 01") && svg.contains("-$10"),
            "dates and dollars on the axes"
        );
    }

    #[test]
    fn an_empty_chart_is_still_svg() {
        let svg = render(&Chart {
            title: "nothing".into(),
            series: Vec::new(),
        });
        assert!(well_formed(&svg));
        assert_eq!(svg.matches("class=\"series\"").count(), 0);
    }

    /// The names in a folder, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    // Output is whole or absent: a chart is renamed into place, never half written.
    #[test]
    fn output_a_chart_is_written_atomically_and_no_temporary_file_is_left() {
        let dir = std::env::temp_dir().join(format!("recharge-chart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let chart = dir.join("chart.svg");
        write(&chart, "<svg>first</svg>").unwrap();
        write(&chart, "<svg>second</svg>").unwrap();
        assert_eq!(
            std::fs::read_to_string(&chart).unwrap(),
            "<svg>second</svg>"
        );
        // A folder in the chart's place: the rename fails, nothing is left over.
        let blocked = dir.join("blocked.svg");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(write(&blocked, "<svg/>").is_err());
        assert!(write(&dir.join("absent").join("chart.svg"), "<svg/>").is_err());
        let left = names(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(left, ["blocked.svg", "chart.svg"]);
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(37.0, 6.0), 10.0);
        assert_eq!(nice_step(600.0, 6.0), 100.0);
        assert_eq!(nice_step(9.0, 6.0), 2.0);
    }
}
