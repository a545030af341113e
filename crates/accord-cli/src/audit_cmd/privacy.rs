//! `accord audit query | disclosures | export | reindex`: the privacy
//! officer's tools. The work is in `accord_audit::{index, query, report}`.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::output::outln;
use accord_audit::query::{FilterText, Known, checked, parse_time};
use accord_audit::report::table::{self, COLUMNS, row};
use accord_audit::report::{accounting, audit_events, validate_audit_event};
use accord_audit::{AuditRecord, Index};
use anyhow::{Context as _, bail};
use time::OffsetDateTime;

/// How long a tool waits for a running gateway to lend it the index.
const BORROW_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TableFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Csv,
    Html,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Auditevent,
}

/// Filters of `accord audit query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Records naming this patient (`Patient/123`).
    #[arg(long)]
    patient: Option<String>,
    #[arg(long)]
    partner: Option<String>,
    #[arg(long)]
    agreement: Option<String>,
    /// Purpose of use code (TREAT, HPAYMT, …).
    #[arg(long)]
    purpose: Option<String>,
    /// permit, deny or refuse.
    #[arg(long)]
    decision: Option<String>,
    /// From (RFC 3339, a date, or an age: 12h, 30d, 6y).
    #[arg(long)]
    since: Option<String>,
    /// Until (exclusive; same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// At most this many records (the most recent).
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, value_enum, default_value = "table")]
    format: TableFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with_all = ["format", "csv"])]
    json: bool,
    /// Same as --format csv.
    #[arg(long, conflicts_with = "format")]
    csv: bool,
}

fn time_arg(text: Option<&str>, now: OffsetDateTime) -> anyhow::Result<Option<OffsetDateTime>> {
    text.map(|t| parse_time(t, now))
        .transpose()
        .map_err(Into::into)
}

/// The index, caught up; names on standard error any records the log holds
/// but cannot read, which every answer leaves out.
fn borrow(dir: &Path) -> anyhow::Result<accord_audit::index::Borrowed> {
    let index = Index::borrow(dir, BORROW_WAIT)
        .with_context(|| format!("open the audit index in {}", dir.display()))?;
    for damage in index.damaged()? {
        eprintln!("warning: left out, {damage} (see `accord audit verify`)");
    }
    Ok(index)
}

/// Says on standard error what does not match the signed checkpoints;
/// the answer on standard output still holds every record.
fn warn_all(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning} (see `accord audit verify`)");
    }
}

pub fn run_query(dir: &Path, args: QueryArgs) -> anyhow::Result<()> {
    let filter = FilterText {
        patient: args.patient,
        partner: args.partner,
        agreement: args.agreement,
        purpose: args.purpose,
        decision: args.decision,
        since: args.since,
        until: args.until,
        limit: args.limit,
    }
    .parse(OffsetDateTime::now_utc())
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let index = borrow(dir)?;
    filter
        .check_known(&Known::from_index(&index)?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let answer = checked(&index, &filter)?;
    warn_all(&answer.warnings);
    let records = answer.records;
    let took = started.elapsed();
    let format = if args.json {
        TableFormat::Json
    } else if args.csv {
        TableFormat::Csv
    } else {
        args.format
    };
    let mut out = std::io::stdout().lock();
    match format {
        TableFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?,
        TableFormat::Csv => write!(out, "{}", table::to_csv(&records))?,
        TableFormat::Table => {
            print_table(&mut out, &records)?;
            eprintln!("{} records ({} ms)", records.len(), took.as_millis());
        }
    }
    Ok(())
}

fn print_table(out: &mut impl std::io::Write, records: &[AuditRecord]) -> anyhow::Result<()> {
    // seq, time, partner, purpose, decision, status, interaction, path, agreements, patients
    let picks = [0usize, 1, 2, 4, 5, 6, 7, 8, 9, 10];
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let full = row(r);
            picks.iter().filter_map(|&i| full.get(i).cloned()).collect()
        })
        .collect();
    let header: Vec<String> = picks
        .iter()
        .filter_map(|&i| COLUMNS.get(i).map(|s| s.to_uppercase()))
        .collect();
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count()).min(48);
        }
    }
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| {
                let cell: String = cell.chars().filter(|c| !c.is_control()).take(*w).collect();
                format!("{cell:<w$}")
            })
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

pub fn run_disclosures(
    dir: &Path,
    patient: &str,
    since: Option<&str>,
    format: ReportFormat,
) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let since = time_arg(since, now)?;
    let index = borrow(dir)?;
    let report = accounting(&index, patient, since, now)?;
    warn_all(&report.warnings);
    let text = match format {
        ReportFormat::Text => report.to_text(),
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Csv => report.to_csv(),
        ReportFormat::Html => report.to_html(),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

pub fn run_export(
    dir: &Path,
    since: Option<&str>,
    until: Option<&str>,
    gateway: &str,
) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let since = time_arg(since, now)?;
    let until = time_arg(until, now)?;
    let index = borrow(dir)?;
    let mut seqs = index.in_time(
        since.map(OffsetDateTime::unix_timestamp),
        until.map(|t| t.unix_timestamp() + i64::from(t.nanosecond() > 0)),
    )?;
    seqs.sort_unstable();
    warn_all(
        &accord_audit::integrity::check(&index)?
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut events = 0u64;
    for seq in seqs {
        let Some((record, matches)) = index.read_checked(seq)? else {
            bail!("the index lists record {seq} but not where it is (run `accord audit reindex`)");
        };
        if matches == Some(false) {
            warn_all(&[format!(
                "record {seq} does not match the log as it was indexed: its bytes were changed after it was written"
            )]);
        }
        if since.is_some_and(|t| record.time < t) || until.is_some_and(|t| record.time >= t) {
            continue;
        }
        for event in audit_events(&record, gateway) {
            let line = serde_json::to_string(&event)?;
            validate_audit_event(&line).with_context(|| format!("record {seq}"))?;
            writeln!(out, "{line}")?;
            events += 1;
        }
    }
    out.flush()?;
    eprintln!("{events} AuditEvents, each validated as FHIR R4");
    Ok(())
}

pub fn run_reindex(dir: &Path) -> anyhow::Result<()> {
    let index = borrow(dir)?;
    let started = Instant::now();
    let records = index.rebuild()?;
    let took = started.elapsed();
    let integrity = accord_audit::integrity::check(&index)?;
    warn_all(
        &integrity
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    );
    outln!(
        "reindexed {records} records in {:.1} s ({}); records 1–{} match the signed checkpoints (the latest covers {} records)",
        took.as_secs_f64(),
        dir.join(accord_audit::index::INDEX_DIR).display(),
        integrity.checked,
        integrity.latest
    )?;
    Ok(())
}
