//! The load itself: keep-alive mTLS clients, scenarios, closed-loop and
//! open-loop runs recorded in HDR histograms.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::env::{DENIED, Env, READER};

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Where requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// (a) straight to the upstream (plain HTTP: the testkit server has no TLS).
    Direct,
    /// (b) the plain hyper reverse proxy (mTLS, no policy or audit).
    PlainProxy,
    /// (c) the Accord gateway.
    Accord,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Direct, Target::PlainProxy, Target::Accord];

    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::PlainProxy => "plain_proxy",
            Target::Accord => "accord",
        }
    }

    fn index(self) -> usize {
        match self {
            Target::Direct => 0,
            Target::PlainProxy => 1,
            Target::Accord => 2,
        }
    }
}

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Read of one ~2 KB Patient.
    Read,
    /// Observation search returning 50 entries.
    Search,
    /// A Patient read by a partner with no clinical grant (403 at Accord;
    /// the baselines, which enforce nothing, answer it with 200).
    Denied,
    /// Create of a referral Task.
    Create,
    /// 70 % read, 20 % search, 5 % denied, 5 % create.
    Mix,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Read,
        Scenario::Search,
        Scenario::Denied,
        Scenario::Create,
        Scenario::Mix,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Read => "read_patient_2kb",
            Scenario::Search => "search_50_entries",
            Scenario::Denied => "denied_read",
            Scenario::Create => "create_task",
            Scenario::Mix => "mix",
        }
    }

    /// The simple scenario the `n`th request of this one is.
    fn pick(self, n: u64) -> Scenario {
        match self {
            Scenario::Mix => match n % 20 {
                0..=13 => Scenario::Read,
                14..=17 => Scenario::Search,
                18 => Scenario::Denied,
                _ => Scenario::Create,
            },
            other => other,
        }
    }
}

/// One prepared request.
#[derive(Debug, Clone)]
struct Prepared {
    method: Method,
    uri: Uri,
    denied_client: bool,
    body: Bytes,
    expect: u16,
}

/// Clients and prepared requests for every target.
#[derive(Debug)]
pub struct Plan {
    reader: HttpClient,
    denied: HttpClient,
    /// `[target][simple scenario]`: read, search, denied, create.
    requests: [[Prepared; 4]; 3],
}

fn client(env: &Env, who: &str, pool: usize) -> anyhow::Result<HttpClient> {
    let identity = env.pki.clients.get(who).context("client identity")?;
    let mut tls = accord_testkit::client::tls_client_config(
        &env.pki.ca_cert_pem,
        Some((&identity.cert_pem, &identity.key_pem)),
    )?;
    // hyper-rustls sets ALPN itself (`enable_http1`) and refuses a preset.
    tls.alpn_protocols.clear();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(120))
        .build(connector))
}

impl Plan {
    pub fn new(env: &Env) -> anyhow::Result<Plan> {
        let bases = [
            env.upstream.base_url(),
            format!("https://localhost:{}/fhir", env.proxy.addr.port()),
            env.gateway.public_base().to_owned(),
        ];
        let patient = &env.patient_id;
        let body = Bytes::from(env.task_body.clone());
        let make = |base: &str, target: Target| -> anyhow::Result<[Prepared; 4]> {
            let get =
                |path: String, denied_client: bool, expect: u16| -> anyhow::Result<Prepared> {
                    Ok(Prepared {
                        method: Method::GET,
                        uri: format!("{base}/{path}").parse()?,
                        denied_client,
                        body: Bytes::new(),
                        expect,
                    })
                };
            Ok([
                get(format!("Patient/{patient}"), false, 200)?,
                get(
                    format!(
                        "Observation?patient={patient}&_count={}",
                        crate::env::SEARCH_ENTRIES
                    ),
                    false,
                    200,
                )?,
                get(
                    format!("Patient/{patient}"),
                    true,
                    if target == Target::Accord { 403 } else { 200 },
                )?,
                Prepared {
                    method: Method::POST,
                    uri: format!("{base}/Task").parse()?,
                    denied_client: false,
                    body: body.clone(),
                    expect: 201,
                },
            ])
        };
        Ok(Plan {
            reader: client(env, READER, 1024)?,
            denied: client(env, DENIED, 1024)?,
            requests: [
                make(&bases[0], Target::Direct)?,
                make(&bases[1], Target::PlainProxy)?,
                make(&bases[2], Target::Accord)?,
            ],
        })
    }

    fn prepared(&self, target: Target, scenario: Scenario, n: u64) -> Option<&Prepared> {
        let simple = match scenario.pick(n) {
            Scenario::Read | Scenario::Mix => 0,
            Scenario::Search => 1,
            Scenario::Denied => 2,
            Scenario::Create => 3,
        };
        self.requests.get(target.index())?.get(simple)
    }

    /// Sends the `n`th request of `scenario` to `target`; whether it got the
    /// expected status.
    async fn send(&self, target: Target, scenario: Scenario, n: u64) -> Outcome {
        let Some(prepared) = self.prepared(target, scenario, n) else {
            return Outcome::Error;
        };
        let mut request = Request::builder()
            .method(prepared.method.clone())
            .uri(prepared.uri.clone())
            .header("X-Purpose-Of-Use", "TREAT")
            .header(header::ACCEPT, "application/fhir+json");
        if !prepared.body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/fhir+json");
        }
        let Ok(request) = request.body(Full::new(prepared.body.clone())) else {
            return Outcome::Error;
        };
        let client = if prepared.denied_client {
            &self.denied
        } else {
            &self.reader
        };
        let Ok(response) = client.request(request).await else {
            return Outcome::Error;
        };
        let status = response.status().as_u16();
        match response.into_body().collect().await {
            Ok(_) if status == prepared.expect => Outcome::Expected,
            Ok(_) => Outcome::Unexpected(status),
            Err(_) => Outcome::Error,
        }
    }

    /// The status and body size of one request, for the report.
    pub async fn probe(&self, target: Target, scenario: Scenario) -> anyhow::Result<(u16, usize)> {
        let prepared = self
            .prepared(target, scenario, 0)
            .context("no such request")?;
        let request = Request::builder()
            .method(prepared.method.clone())
            .uri(prepared.uri.clone())
            .header("X-Purpose-Of-Use", "TREAT")
            .header(header::ACCEPT, "application/fhir+json")
            .header(header::CONTENT_TYPE, "application/fhir+json")
            .body(Full::new(prepared.body.clone()))?;
        let client = if prepared.denied_client {
            &self.denied
        } else {
            &self.reader
        };
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body.len()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Expected,
    Unexpected(u16),
    Error,
}

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// `concurrency` workers, each sending its next request when the
    /// previous one is answered.
    Closed { concurrency: usize },
    /// Requests sent on a fixed schedule whatever the answers do; latency is
    /// measured from the scheduled send time (no coordinated omission).
    Open { rate: f64, max_in_flight: usize },
}

/// What one measured run saw.
#[derive(Debug)]
pub struct Measured {
    pub histogram: Histogram<u64>,
    pub completed: u64,
    pub unexpected: u64,
    pub errors: u64,
    /// Open loop: requests not sent because `max_in_flight` were pending.
    pub dropped: u64,
    pub elapsed: Duration,
    pub last_unexpected_status: u16,
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs .. 60 s, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// Runs `scenario` against `target` for `duration`.
pub async fn run(
    plan: &Arc<Plan>,
    target: Target,
    scenario: Scenario,
    mode: Mode,
    duration: Duration,
) -> anyhow::Result<Measured> {
    match mode {
        Mode::Closed { concurrency } => closed(plan, target, scenario, concurrency, duration).await,
        Mode::Open {
            rate,
            max_in_flight,
        } => open(plan, target, scenario, rate, max_in_flight, duration).await,
    }
}

struct Tally {
    histogram: Histogram<u64>,
    unexpected: u64,
    errors: u64,
    last_unexpected_status: u16,
}

impl Tally {
    fn new() -> anyhow::Result<Tally> {
        Ok(Tally {
            histogram: new_histogram()?,
            unexpected: 0,
            errors: 0,
            last_unexpected_status: 0,
        })
    }

    fn record(&mut self, outcome: Outcome, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.histogram.saturating_record(us);
        match outcome {
            Outcome::Expected => {}
            Outcome::Unexpected(status) => {
                self.unexpected += 1;
                self.last_unexpected_status = status;
            }
            Outcome::Error => self.errors += 1,
        }
    }

    fn merge(&mut self, other: &Tally) -> anyhow::Result<()> {
        self.histogram.add(&other.histogram)?;
        self.unexpected += other.unexpected;
        self.errors += other.errors;
        if other.last_unexpected_status != 0 {
            self.last_unexpected_status = other.last_unexpected_status;
        }
        Ok(())
    }
}

async fn closed(
    plan: &Arc<Plan>,
    target: Target,
    scenario: Scenario,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let deadline = start + duration;
    let counter = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let plan = Arc::clone(plan);
        let counter = Arc::clone(&counter);
        workers.spawn(async move {
            let mut tally = Tally::new()?;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let outcome = plan.send(target, scenario, n).await;
                tally.record(outcome, sent.elapsed());
            }
            anyhow::Ok(tally)
        });
    }
    let mut total = Tally::new()?;
    while let Some(tally) = workers.join_next().await {
        total.merge(&tally??)?;
    }
    Ok(Measured {
        completed: total.histogram.len(),
        histogram: total.histogram,
        unexpected: total.unexpected,
        errors: total.errors,
        dropped: 0,
        elapsed: start.elapsed(),
        last_unexpected_status: total.last_unexpected_status,
    })
}

async fn open(
    plan: &Arc<Plan>,
    target: Target,
    scenario: Scenario,
    rate: f64,
    max_in_flight: usize,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let period = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let start = Instant::now();
    let end = start + duration;
    let mut total = Tally::new()?;
    let mut in_flight = JoinSet::new();
    let mut dropped = 0u64;
    let mut n: u32 = 0;
    loop {
        let intended = start + period * n;
        if intended >= end {
            break;
        }
        tokio::time::sleep_until(intended).await;
        while let Some(done) = in_flight.try_join_next() {
            let (outcome, latency) = done?;
            total.record(outcome, latency);
        }
        if in_flight.len() >= max_in_flight {
            dropped += 1;
        } else {
            let plan = Arc::clone(plan);
            in_flight.spawn(async move {
                let outcome = plan.send(target, scenario, u64::from(n)).await;
                (outcome, intended.elapsed())
            });
        }
        n = n.saturating_add(1);
    }
    while let Some(done) = in_flight.join_next().await {
        let (outcome, latency) = done?;
        total.record(outcome, latency);
    }
    Ok(Measured {
        completed: total.histogram.len(),
        histogram: total.histogram,
        unexpected: total.unexpected,
        errors: total.errors,
        dropped,
        elapsed: start.elapsed(),
        last_unexpected_status: total.last_unexpected_status,
    })
}
