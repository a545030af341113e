//! Figures, the JSON report and its Markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::env::Env;
use crate::load::{Measured, Mode, Scenario, Target};
use crate::procfs;

/// Thread-name prefixes of the load generator (its runtime, and the main
/// thread that drives it) and of the upstream.
const CLIENT_THREADS: [&str; 2] = ["lg-client", "accord-loadgen"];
const UPSTREAM_THREADS: &str = "lg-upstream";

/// CPU time at one instant, µs.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    process: u64,
    client: u64,
    upstream: u64,
}

impl CpuSnapshot {
    pub fn take() -> CpuSnapshot {
        let threads =
            procfs::threads_cpu_us(&[CLIENT_THREADS[0], CLIENT_THREADS[1], UPSTREAM_THREADS]);
        let at = |i: usize| threads.get(i).copied().unwrap_or(0);
        CpuSnapshot {
            process: procfs::process_cpu_us(),
            client: at(0) + at(1),
            upstream: at(2),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub quick: bool,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub high_concurrency: usize,
    pub open_loop_rates_rps: Vec<f64>,
    pub server_threads: usize,
    pub client_threads: usize,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Percentiles {
        let ms = |q: f64| round3(histogram.value_at_quantile(q) as f64 / 1000.0);
        Percentiles {
            p50: ms(0.50),
            p90: ms(0.90),
            p99: ms(0.99),
            p999: ms(0.999),
        }
    }

    fn minus(&self, other: &Percentiles) -> Percentiles {
        Percentiles {
            p50: round3(self.p50 - other.p50),
            p90: round3(self.p90 - other.p90),
            p99: round3(self.p99 - other.p99),
            p999: round3(self.p999 - other.p999),
        }
    }
}

/// One target's figures in one run.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub target: &'static str,
    pub requests: u64,
    pub unexpected_status: u64,
    pub last_unexpected_status: u16,
    pub errors: u64,
    pub dropped: u64,
    pub throughput_rps: f64,
    pub latency_ms: Percentiles,
    pub max_latency_ms: f64,
    pub mean_latency_ms: f64,
    /// Latency minus the direct target's, percentile by percentile.
    pub added_latency_ms: Percentiles,
    /// Whole-process CPU (load generator + upstream + proxy) per request.
    pub cpu_us_per_request: f64,
    /// CPU of the proxy under test alone per request (process minus the
    /// load generator's and the upstream's threads); ~0 for `direct`.
    pub proxy_cpu_us_per_request: f64,
    pub client_cpu_us_per_request: f64,
    pub upstream_cpu_us_per_request: f64,
    /// `proxy_cpu_us_per_request` relative to the plain proxy's.
    pub cpu_ratio_vs_plain_proxy: Option<f64>,
    /// `cpu_us_per_request` relative to the direct run's.
    pub cpu_ratio_vs_direct: Option<f64>,
    /// Peak RSS of the whole process during the measured run.
    pub peak_rss_mb: f64,
    /// False if the peak could not be reset before the run (then it is the
    /// peak since the process started).
    pub peak_rss_is_per_run: bool,
}

impl Figures {
    pub fn new(
        target: Target,
        measured: &Measured,
        before: &CpuSnapshot,
        after: &CpuSnapshot,
        peak_reset: bool,
    ) -> anyhow::Result<Figures> {
        let requests = measured.completed.max(1) as f64;
        let per = |us: u64| round1(us as f64 / requests);
        let process = after.process.saturating_sub(before.process);
        let client = after.client.saturating_sub(before.client);
        let upstream = after.upstream.saturating_sub(before.upstream);
        let (_, hwm) = procfs::rss_kib();
        Ok(Figures {
            target: target.name(),
            requests: measured.completed,
            unexpected_status: measured.unexpected,
            last_unexpected_status: measured.last_unexpected_status,
            errors: measured.errors,
            dropped: measured.dropped,
            throughput_rps: round1(measured.completed as f64 / measured.elapsed.as_secs_f64()),
            latency_ms: Percentiles::of(&measured.histogram),
            max_latency_ms: round3(measured.histogram.max() as f64 / 1000.0),
            mean_latency_ms: round3(measured.histogram.mean() / 1000.0),
            added_latency_ms: Percentiles::default(),
            cpu_us_per_request: per(process),
            proxy_cpu_us_per_request: per(process.saturating_sub(client + upstream)),
            client_cpu_us_per_request: per(client),
            upstream_cpu_us_per_request: per(upstream),
            cpu_ratio_vs_plain_proxy: None,
            cpu_ratio_vs_direct: None,
            peak_rss_mb: round1(hwm as f64 / 1024.0),
            peak_rss_is_per_run: peak_reset,
        })
    }
}

/// Ratios of Accord's figures to a baseline's.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    pub throughput: f64,
    pub latency_p50: f64,
    pub latency_p99: f64,
    pub cpu_per_request: f64,
    pub peak_rss: f64,
}

impl Ratios {
    fn of(accord: &Figures, base: &Figures, cpu: fn(&Figures) -> f64) -> Ratios {
        Ratios {
            throughput: ratio(accord.throughput_rps, base.throughput_rps),
            latency_p50: ratio(accord.latency_ms.p50, base.latency_ms.p50),
            latency_p99: ratio(accord.latency_ms.p99, base.latency_ms.p99),
            cpu_per_request: ratio(cpu(accord), cpu(base)),
            peak_rss: ratio(accord.peak_rss_mb, base.peak_rss_mb),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub scenario: &'static str,
    pub mode: &'static str,
    pub concurrency: Option<usize>,
    pub rate_rps: Option<f64>,
    pub direct: Option<Figures>,
    pub plain_proxy: Option<Figures>,
    pub accord: Option<Figures>,
    /// (c)/(a); CPU compares whole-process CPU per request.
    pub accord_vs_direct: Option<Ratios>,
    /// (c)/(b); CPU compares the proxies' own CPU per request.
    pub accord_vs_plain_proxy: Option<Ratios>,
}

pub fn mode_name(mode: Mode) -> String {
    match mode {
        Mode::Closed { concurrency } => format!("closed c={concurrency}"),
        Mode::Open { rate, .. } => format!("open {rate:.0}/s"),
    }
}

impl RunReport {
    pub fn new(scenario: Scenario, mode: Mode, figures: Vec<Figures>) -> RunReport {
        let mut by: BTreeMap<&str, Figures> = figures.into_iter().map(|f| (f.target, f)).collect();
        let direct = by.remove(Target::Direct.name());
        let mut plain = by.remove(Target::PlainProxy.name());
        let mut accord = by.remove(Target::Accord.name());
        if let Some(d) = &direct {
            for f in [plain.as_mut(), accord.as_mut()].into_iter().flatten() {
                f.added_latency_ms = f.latency_ms.minus(&d.latency_ms);
                f.cpu_ratio_vs_direct = Some(ratio(f.cpu_us_per_request, d.cpu_us_per_request));
            }
        }
        if let (Some(p), Some(a)) = (&plain, accord.as_mut()) {
            a.cpu_ratio_vs_plain_proxy = Some(ratio(
                a.proxy_cpu_us_per_request,
                p.proxy_cpu_us_per_request,
            ));
        }
        let vs_direct = match (&accord, &direct) {
            (Some(a), Some(d)) => Some(Ratios::of(a, d, |f| f.cpu_us_per_request)),
            _ => None,
        };
        let vs_plain = match (&accord, &plain) {
            (Some(a), Some(p)) => Some(Ratios::of(a, p, |f| f.proxy_cpu_us_per_request)),
            _ => None,
        };
        let (concurrency, rate_rps, mode) = match mode {
            Mode::Closed { concurrency } => (Some(concurrency), None, "closed"),
            Mode::Open { rate, .. } => (None, Some(rate), "open"),
        };
        RunReport {
            scenario: scenario.name(),
            mode,
            concurrency,
            rate_rps,
            direct,
            plain_proxy: plain,
            accord,
            accord_vs_direct: vs_direct,
            accord_vs_plain_proxy: vs_plain,
        }
    }

    fn label(&self) -> String {
        match (self.concurrency, self.rate_rps) {
            (Some(c), _) => format!("closed c={c}"),
            (_, Some(r)) => format!("open {r:.0}/s"),
            _ => self.mode.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub loadavg_at_start: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub generated_unix_s: u64,
    pub machine: Machine,
    pub settings: Settings,
    /// Status and body size of one request per scenario and target.
    pub fixtures: BTreeMap<String, String>,
    pub patient_bytes_upstream: usize,
    pub runs: Vec<RunReport>,
}

impl Report {
    pub fn new(settings: &Settings, env: &Env) -> Report {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_default();
        Report {
            schema: "accord-loadgen/1",
            generated_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            machine: Machine {
                cpus: std::thread::available_parallelism().map_or(0, usize::from),
                cpu_model,
                kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
                loadavg_at_start: read("/proc/loadavg").trim().to_owned(),
            },
            settings: settings.clone(),
            fixtures: BTreeMap::new(),
            patient_bytes_upstream: env.patient_bytes,
            runs: Vec::new(),
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Machine: {} CPUs ({}), kernel {}, load average at start {}. Runs of {} s after {} s warm-up.\n",
            self.machine.cpus,
            self.machine.cpu_model,
            self.machine.kernel,
            self.machine.loadavg_at_start,
            self.settings.duration_s,
            self.settings.warmup_s
        );
        let _ = writeln!(
            out,
            "| scenario | load | target | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 | added p99 | added p99.9 | CPU µs/req (proxy) | CPU µs/req (process) | peak RSS MB | bad |"
        );
        let _ = writeln!(
            out,
            "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        );
        for run in &self.runs {
            for f in [&run.direct, &run.plain_proxy, &run.accord]
                .into_iter()
                .flatten()
            {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} | {:.1} | {} |",
                    run.scenario,
                    run.label(),
                    f.target,
                    f.throughput_rps,
                    f.latency_ms.p50,
                    f.latency_ms.p90,
                    f.latency_ms.p99,
                    f.latency_ms.p999,
                    f.added_latency_ms.p50,
                    f.added_latency_ms.p99,
                    f.added_latency_ms.p999,
                    f.proxy_cpu_us_per_request,
                    f.cpu_us_per_request,
                    f.peak_rss_mb,
                    f.errors + f.unexpected_status + f.dropped,
                );
            }
        }
        let _ = writeln!(
            out,
            "\n| scenario | load | (c)/(a) req/s | (c)/(a) p50 | (c)/(a) CPU/req (process) | (c)/(b) req/s | (c)/(b) p50 | (c)/(b) CPU/req (proxy only) |"
        );
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|");
        for run in &self.runs {
            if let (Some(d), Some(p)) = (&run.accord_vs_direct, &run.accord_vs_plain_proxy) {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                    run.scenario,
                    run.label(),
                    d.throughput,
                    d.latency_p50,
                    d.cpu_per_request,
                    p.throughput,
                    p.latency_p50,
                    p.cpu_per_request,
                );
            }
        }
        out
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { round3(a / b) }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
