//! A durable append-only log of JSON lines with group commit.
//!
//! One writer thread owns the file. Appenders send their encoded record and
//! wait; the writer takes every record queued at that moment, writes them,
//! calls `fsync` once, and only then answers each appender. Concurrent
//! requests share an fsync instead of paying one each.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::thread;

use crate::record::{AuditRecord, Receipt};
use crate::{AuditError, AuditSink};

/// File name of the log inside the audit directory.
pub const LOG_FILE: &str = "audit.jsonl";

/// Most records one fsync covers; bounds the latency a burst adds.
const MAX_BATCH: usize = 512;

/// The JSON-lines audit log. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct JsonlAuditLog {
    path: PathBuf,
    // `None` once closed. The lock is held only to enqueue, which costs
    // nothing next to the fsync every append waits for.
    queue: Mutex<Option<mpsc::Sender<Append>>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
}

/// What the log found when it opened an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenReport {
    pub records: u64,
    /// Bytes of an incomplete final line (a crash mid-write) cut off.
    pub truncated_bytes: u64,
}

struct Append {
    record: AuditRecord,
    reply: mpsc::SyncSender<Result<u64, AuditError>>,
}

// === impl JsonlAuditLog ===

impl JsonlAuditLog {
    /// Opens (creating if needed) `dir/audit.jsonl`. An incomplete last line
    /// left by a crash is truncated; it belonged to a request whose response
    /// was never sent.
    pub fn open(dir: &Path) -> Result<(Self, OpenReport), AuditError> {
        std::fs::create_dir_all(dir).map_err(|e| AuditError::io("create audit directory", e))?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| AuditError::io("open audit log", e))?;
        let report = recover(&mut file).map_err(|e| AuditError::io("recover audit log", e))?;
        // Make the file's directory entry durable too, so a new log survives
        // a crash right after creation.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        let (tx, rx) = mpsc::channel();
        let next_seq = report.records + 1;
        let writer = thread::Builder::new()
            .name("accord-audit-writer".into())
            .spawn(move || write_loop(file, &rx, next_seq))
            .map_err(|e| AuditError::io("start audit writer", e))?;
        Ok((
            JsonlAuditLog {
                path,
                queue: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
            },
            report,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting records and waits for the writer to finish the ones
    /// already queued.
    pub fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for JsonlAuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

impl AuditSink for JsonlAuditLog {
    fn append(&self, record: &AuditRecord) -> Result<Receipt, AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let queue = self.queue.lock().map_err(|_| AuditError::Closed)?;
            let sender = queue.as_ref().ok_or(AuditError::Closed)?;
            let append = Append {
                record: record.clone(),
                reply,
            };
            sender.send(append).map_err(|_| AuditError::Closed)?;
        }
        let seq = answer.recv().map_err(|_| AuditError::Closed)??;
        Ok(Receipt { seq })
    }
}

/// Counts complete records and cuts an incomplete final line.
fn recover(file: &mut File) -> io::Result<OpenReport> {
    // Read no further than the file's length: it is the length that matters,
    // and a device (e.g. a log pointed at a special file) may never end.
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(Read::by_ref(file).take(len));
    let mut records = 0u64;
    let mut good_len = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            records += 1;
            good_len += n as u64;
        } else {
            break;
        }
    }
    let truncated_bytes = len - good_len;
    if truncated_bytes > 0 {
        file.set_len(good_len)?;
        file.sync_all()?;
    }
    Ok(OpenReport {
        records,
        truncated_bytes,
    })
}

fn write_loop(mut file: File, rx: &mpsc::Receiver<Append>, mut next_seq: u64) {
    let mut good_len = file.seek(SeekFrom::End(0)).unwrap_or(0);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let mut buffer = Vec::new();
        let mut seqs = Vec::with_capacity(batch.len());
        let mut encoded = Ok(());
        for append in &mut batch {
            let seq = next_seq + seqs.len() as u64;
            seqs.push(seq);
            append.record.seq = seq;
            encoded = encoded.and_then(|()| serde_json::to_writer(&mut buffer, &append.record));
            buffer.push(b'\n');
        }
        let written = encoded
            .map_err(io::Error::other)
            .and_then(|()| file.write_all(&buffer))
            .and_then(|()| file.sync_data());
        match written {
            Ok(()) => {
                good_len += buffer.len() as u64;
                next_seq += seqs.len() as u64;
                for (append, seq) in batch.into_iter().zip(seqs) {
                    let _ = append.reply.send(Ok(seq));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit append failed; refusing the batch");
                // Undo a partial write so the next batch starts on a clean
                // line; if even that fails, open() truncates it later.
                let _ = file.set_len(good_len).and_then(|()| file.sync_data());
                let kind = e.kind();
                for append in batch {
                    let err =
                        AuditError::io("append audit record", io::Error::new(kind, e.to_string()));
                    let _ = append.reply.send(Err(err));
                }
            }
        }
    }
}

/// Reads every record of the log in `dir`, in order.
pub fn read_records(dir: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let mut text = String::new();
    File::open(dir.join(LOG_FILE))
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| AuditError::io("read audit log", e))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| AuditError::Corrupt(format!("line {}: {e}", i + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests;
