//! What the benchmarks of `camionback-relay` share: the table each prints at its end (every
//! figure next to its target), the statistics, and the fixtures (`fixtures`: a relay over
//! fakes on 127.0.0.1). Each benchmark uses a part of it.

#![allow(dead_code)]

pub mod fixtures;

use std::time::{Duration, Instant};

/// Runs one benchmark: the engine's warnings and errors (a failed fan-out, a slow carrier
/// sync) go to stderr, where they explain an outlier; then the table and the time it took.
pub async fn run(bench: impl AsyncFnOnce(&mut Report)) {
    let _logs = relay_engine::telemetry::init("warn", None).expect("console log");
    let started = Instant::now();
    let mut report = Report::default();
    bench(&mut report).await;
    report.print();
    println!(
        "durée totale du banc : {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

pub struct Row {
    pub measure: String,
    pub figure: String,
    pub target: String,
    /// `None` for figures printed for context, without a target.
    pub met: Option<bool>,
}

#[derive(Default)]
pub struct Report(Vec<Row>);

impl Report {
    pub fn target(&mut self, measure: &str, figure: String, target: &str, met: bool) {
        println!("  {measure}: {figure} (cible {target})");
        self.0.push(Row {
            measure: measure.into(),
            figure,
            target: target.into(),
            met: Some(met),
        });
    }

    pub fn info(&mut self, measure: &str, figure: String) {
        println!("  {measure}: {figure}");
        self.0.push(Row {
            measure: measure.into(),
            figure,
            target: "-".into(),
            met: None,
        });
    }

    pub fn print(&self) {
        let header = ("measure", "figure", "target", "met");
        let width = |column: &dyn Fn(&Row) -> &str, head: &str| {
            self.0
                .iter()
                .map(|r| column(r).chars().count())
                .chain([head.len()])
                .max()
                .unwrap_or(0)
        };
        let w0 = width(&|r| r.measure.as_str(), header.0);
        let w1 = width(&|r| r.figure.as_str(), header.1);
        let w2 = width(&|r| r.target.as_str(), header.2);
        let line = format!(
            "+-{}-+-{}-+-{}-+-{}-+",
            "-".repeat(w0),
            "-".repeat(w1),
            "-".repeat(w2),
            "-".repeat(7)
        );
        println!();
        println!("{line}");
        println!(
            "| {:w0$} | {:w1$} | {:w2$} | {:7} |",
            header.0, header.1, header.2, header.3
        );
        println!("{line}");
        for row in &self.0 {
            let met = match row.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "",
            };
            println!(
                "| {} | {} | {} | {met:7} |",
                pad(&row.measure, w0),
                pad(&row.figure, w1),
                pad(&row.target, w2)
            );
        }
        println!("{line}");
    }
}

/// Pads to a width in characters (the figures hold `µ`-free ASCII, measures may not).
pub fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(n)))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

pub fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// `(VmHWM, VmRSS)` of a process in kB.
pub fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(':')?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    Some((field("VmHWM")?, field("VmRSS")?))
}

pub fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
