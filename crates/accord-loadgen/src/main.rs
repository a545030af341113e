//! `accord-loadgen`: measures, side by side in one process run and against
//! the same in-memory upstream, (a) the upstream directly, (b) a plain hyper
//! reverse proxy with the same TLS setup and (c) the Accord gateway.
//!
//! Loopback only. Everything (load generator, upstream, both proxies) runs
//! in this process on three Tokio runtimes whose threads are named, so CPU
//! time can be split between the load generator (`lg-client`), the upstream
//! (`lg-upstream`) and the proxy under test (everything else: `lg-server`
//! workers and blocking threads, the audit writer and indexer).
//! See docs/performance.md for the JSON schema.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::runtime::{Builder, Runtime};

mod env;
mod load;
mod procfs;
mod proxy;
mod report;

use load::{Mode, Plan, Scenario, Target};
use report::{Figures, Report, RunReport};

/// Side-by-side load harness for Accord.
#[derive(Debug, Parser)]
#[command(name = "accord-loadgen")]
struct Args {
    /// About one minute: short runs, one open-loop rate.
    #[arg(long)]
    quick: bool,
    /// Measured seconds per run (default: 1.5 quick, 6 full).
    #[arg(long)]
    duration: Option<f64>,
    /// Unmeasured warm-up seconds before each run (default: 0.3 quick, 1 full).
    #[arg(long)]
    warmup: Option<f64>,
    /// Concurrency of the high closed-loop runs.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open-loop arrival rates (requests/s) for the read scenario.
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<f64>>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the Markdown table here (it is printed either way).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Directory for the temporary audit log (a real disk: fsync is measured).
    #[arg(long, default_value = "/tmp")]
    work_dir: PathBuf,
    /// Worker threads of the runtime the gateway and the plain proxy share.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Only these scenarios (comma separated names).
    #[arg(long, value_delimiter = ',')]
    scenarios: Option<Vec<String>>,
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<Runtime> {
    Ok(Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .thread_keep_alive(Duration::from_secs(600))
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let duration =
        Duration::from_secs_f64(args.duration.unwrap_or(if args.quick { 1.5 } else { 6.0 }));
    let warmup = Duration::from_secs_f64(args.warmup.unwrap_or(if args.quick { 0.3 } else { 1.0 }));
    let rates = args.rates.clone().unwrap_or_else(|| {
        if args.quick {
            vec![500.0]
        } else {
            vec![500.0, 2000.0]
        }
    });
    let scenarios: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|s| {
            args.scenarios
                .as_ref()
                .is_none_or(|only| only.iter().any(|n| n == s.name()))
        })
        .collect();

    let client_rt = runtime("lg-client", args.client_threads)?;
    let upstream_rt = runtime("lg-upstream", 1)?;
    let server_rt = runtime("lg-server", args.server_threads)?;
    let env = env::Env::start(&upstream_rt, &server_rt, &args.work_dir)?;
    let plan = Arc::new(client_rt.block_on(async { Plan::new(&env) })?);

    let mut report = Report::new(&args_summary(&args, duration, warmup, &rates), &env);
    client_rt.block_on(async {
        for scenario in [Scenario::Read, Scenario::Search, Scenario::Denied] {
            let mut sizes = Vec::new();
            for target in Target::ALL {
                let (status, bytes) = plan.probe(target, scenario).await?;
                sizes.push(format!("{}: {status}, {bytes} B", target.name()));
            }
            report
                .fixtures
                .insert(scenario.name().to_owned(), sizes.join("; "));
        }
        let mut runs = Vec::new();
        for &scenario in &scenarios {
            runs.push((scenario, Mode::Closed { concurrency: 1 }));
            runs.push((
                scenario,
                Mode::Closed {
                    concurrency: args.concurrency,
                },
            ));
        }
        if scenarios.contains(&Scenario::Read) {
            for &rate in &rates {
                runs.push((
                    Scenario::Read,
                    Mode::Open {
                        rate,
                        max_in_flight: 1024,
                    },
                ));
            }
        }
        for (scenario, mode) in runs {
            let mut figures = Vec::new();
            for target in Target::ALL {
                load::run(&plan, target, scenario, mode, warmup).await?;
                let reset = procfs::reset_peak_rss();
                let before = report::CpuSnapshot::take();
                let measured = load::run(&plan, target, scenario, mode, duration).await?;
                let after = report::CpuSnapshot::take();
                let fig = Figures::new(target, &measured, &before, &after, reset)?;
                eprintln!(
                    "{:<18} {:<22} {:<12} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  proxy cpu {:.1} µs/req",
                    scenario.name(),
                    report::mode_name(mode),
                    target.name(),
                    fig.throughput_rps,
                    fig.latency_ms.p50,
                    fig.latency_ms.p99,
                    fig.proxy_cpu_us_per_request,
                );
                figures.push(fig);
            }
            report.runs.push(RunReport::new(scenario, mode, figures));
        }
        anyhow::Ok(())
    })?;

    let markdown = report.markdown();
    println!("{markdown}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    drop(plan);
    drop(env);
    Ok(())
}

fn args_summary(
    args: &Args,
    duration: Duration,
    warmup: Duration,
    rates: &[f64],
) -> report::Settings {
    report::Settings {
        quick: args.quick,
        duration_s: duration.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        high_concurrency: args.concurrency,
        open_loop_rates_rps: rates.to_vec(),
        server_threads: args.server_threads,
        client_threads: args.client_threads,
    }
}
