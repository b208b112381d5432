//! `cargo xtask plots`: SVG plots of the criterion results (`target/criterion`, or
//! `$CARGO_TARGET_DIR/criterion`) into `docs/plots/`, for BENCHMARKS.md.
//!
//! Each plot is cost (median per iteration, log scale) against a bench parameter (log scale):
//! the number of selectors, the number of prefixes. A series is a criterion group and
//! function; its points are whatever parameters the last bench run left. No dependency: the
//! medians are read straight out of criterion's `estimates.json`, and the SVG is written by
//! hand.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

struct Series {
    label: &'static str,
    group: &'static str,
    function: &'static str,
    color: &'static str,
}

struct Plot {
    file: &'static str,
    title: &'static str,
    x_label: &'static str,
    series: &'static [Series],
}

const PLOTS: &[Plot] = &[
    Plot {
        file: "selectors.svg",
        title: "All selectors matching one name, vs the number of selectors",
        x_label: "selectors",
        series: &[
            Series {
                label: "SelectorSet",
                group: "selectors",
                function: "selector_set",
                color: "#1b9e77",
            },
            Series {
                label: "regex alternation (any match only)",
                group: "selectors",
                function: "regex_alternation",
                color: "#7570b3",
            },
            Series {
                label: "RegexSet",
                group: "selectors",
                function: "regex_set",
                color: "#d95f02",
            },
            Series {
                label: "one regex per selector (Cilium)",
                group: "selectors",
                function: "regex_per_selector",
                color: "#e7298a",
            },
        ],
    },
    Plot {
        file: "prefixes.svg",
        title: "One egress verdict, vs the number of ipcache prefixes",
        x_label: "prefixes",
        series: &[
            Series {
                label: "reference model, IPv4",
                group: "verdict",
                function: "ipv4",
                color: "#1b9e77",
            },
            Series {
                label: "reference model, IPv6",
                group: "verdict",
                function: "ipv6",
                color: "#66a61e",
            },
            Series {
                label: "kernel program (test_run)",
                group: "kernel_verdict",
                function: "full",
                color: "#d95f02",
            },
            Series {
                label: "bare LPM + hash program (test_run)",
                group: "kernel_verdict",
                function: "bare",
                color: "#7570b3",
            },
        ],
    },
];

/// The median point estimate in a criterion `estimates.json`, in nanoseconds.
fn median(json: &str) -> Option<f64> {
    let at = json.find("\"median\"")?;
    let rest = &json[at..];
    let at = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let rest = &rest[at..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

/// (parameter, median ns) of one series, sorted by parameter.
fn points(criterion: &Path, s: &Series) -> Vec<(f64, f64)> {
    let dir = criterion.join(s.group).join(s.function);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(f64, f64)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let x: f64 = e.file_name().to_str()?.parse().ok()?;
            let json = fs::read_to_string(e.path().join("new/estimates.json")).ok()?;
            Some((x, median(&json)?))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn decades(lo: f64, hi: f64) -> (f64, f64) {
    (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil().max(lo.log10().floor() + 1.0)),
    )
}

fn label(v: f64, unit: &str) -> String {
    match unit {
        "ns" if v >= 1e6 => format!("{} ms", v / 1e6),
        "ns" if v >= 1e3 => format!("{} µs", v / 1e3),
        "ns" => format!("{v} ns"),
        _ if v >= 1e3 => format!("{}k", v / 1e3),
        _ => format!("{v}"),
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one SVG document, element by element"
)]
fn svg(plot: &Plot, data: &[(&Series, Vec<(f64, f64)>)]) -> String {
    let (width, height, left, right, top, bottom) = (900.0, 440.0, 80.0, 320.0, 40.0, 50.0);
    let all: Vec<(f64, f64)> = data.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let (x0, x1) = decades(
        all.iter().map(|p| p.0).fold(f64::MAX, f64::min),
        all.iter().map(|p| p.0).fold(f64::MIN, f64::max),
    );
    let (y0, y1) = decades(
        all.iter().map(|p| p.1).fold(f64::MAX, f64::min),
        all.iter().map(|p| p.1).fold(f64::MIN, f64::max),
    );
    let px = |x: f64| {
        left + (x.log10() - x0.log10()) / (x1.log10() - x0.log10()) * (width - left - right)
    };
    let py = |y: f64| {
        height
            - bottom
            - (y.log10() - y0.log10()) / (y1.log10() - y0.log10()) * (height - top - bottom)
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{width}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="22" font-size="14">{}</text>"#,
        plot.title
    );
    // Decade grid lines and labels.
    let mut tick = y0;
    while tick <= y1 * 1.0001 {
        let _ = writeln!(
            out,
            r##"<line x1="{left}" x2="{0}" y1="{1}" y2="{1}" stroke="#ddd"/><text x="{2}" y="{3}" text-anchor="end">{4}</text>"##,
            width - right,
            py(tick),
            left - 6.0,
            py(tick) + 4.0,
            label(tick, "ns")
        );
        tick *= 10.0;
    }
    let mut tick = x0;
    while tick <= x1 * 1.0001 {
        let _ = writeln!(
            out,
            r##"<line x1="{0}" x2="{0}" y1="{top}" y2="{1}" stroke="#ddd"/><text x="{0}" y="{2}" text-anchor="middle">{3}</text>"##,
            px(tick),
            height - bottom,
            height - bottom + 16.0,
            label(tick, "")
        );
        tick *= 10.0;
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{} (log)</text>"#,
        left + (width - left - right) / 2.0,
        height - 10.0,
        plot.x_label
    );
    let _ = writeln!(
        out,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {0})" text-anchor="middle">median per iteration (log)</text>"#,
        top + (height - top - bottom) / 2.0
    );
    for (i, (series, pts)) in data.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            path.join(" "),
            series.color
        );
        for (x, y) in pts {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                px(*x),
                py(*y),
                series.color
            );
        }
        let ly = top + 20.0 + 18.0 * f64::from(u8::try_from(i).unwrap_or(u8::MAX));
        let _ = writeln!(
            out,
            r#"<line x1="{0}" x2="{1}" y1="{ly}" y2="{ly}" stroke="{2}" stroke-width="2"/><text x="{3}" y="{4}">{5}</text>"#,
            width - right + 12.0,
            width - right + 32.0,
            series.color,
            width - right + 38.0,
            ly + 4.0,
            series.label
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Writes every plot whose series have results; says which had none.
pub(crate) fn plots() -> Result<(), String> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let criterion = target.join("criterion");
    let out = PathBuf::from("docs/plots");
    fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    for plot in PLOTS {
        let data: Vec<(&Series, Vec<(f64, f64)>)> = plot
            .series
            .iter()
            .map(|s| (s, points(&criterion, s)))
            .filter(|(s, p)| {
                if p.is_empty() {
                    eprintln!(
                        "xtask: {}: no results for {}/{} under {} (run its bench first)",
                        plot.file,
                        s.group,
                        s.function,
                        criterion.display()
                    );
                }
                !p.is_empty()
            })
            .collect();
        if data.is_empty() {
            continue;
        }
        let path = out.join(plot.file);
        fs::write(&path, svg(plot, &data))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("xtask: wrote {}", path.display());
    }
    Ok(())
}
