//! The tamper-evident audit store: segment files of framed records written
//! by one thread with group commit, an RFC 9162 Merkle tree over every
//! record, and signed checkpoints.
//!
//! ```text
//! <dir>/segments/seg-<first seq>.log   the records (see `segment`)
//! <dir>/checkpoints.log                every signed checkpoint, framed
//! <dir>/checkpoint                     the latest signed checkpoint
//! <dir>/signing.pub                    the checkpoint key's public half
//! ```
//!
//! The private key lives elsewhere (see [`key`]).
//!
//! INVARIANT: `AuditSink::append` returns `Ok` only after the record and
//! everything before it were written and `fsync`ed.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use crate::note::{Signer, Verifier};
use crate::record::{AuditRecord, Receipt};
use crate::segment::SEGMENTS_DIR;
use crate::{AppendDone, AuditError, AuditSink};

pub mod checkpoints;
mod encoded;
pub mod key;
pub mod read;
pub mod recover;
pub mod space;
pub mod witnessed;
mod writer;

pub use writer::CheckpointHook;

pub use read::{DamagedRange, LogContents, TornTail, read_log, read_records};

pub const KEY_FILE: &str = "signing.key";
pub const PUBLIC_KEY_FILE: &str = "signing.pub";
pub const CHECKPOINTS_FILE: &str = "checkpoints.log";
pub const LATEST_CHECKPOINT_FILE: &str = "checkpoint";

/// How a store is opened.
#[derive(Debug)]
pub struct StoreOptions {
    /// A segment is sealed once it reaches this many bytes.
    pub segment_size: u64,
    /// Longest time between checkpoints while records arrive.
    pub checkpoint_interval: Duration,
    /// Most records one fsync covers.
    pub max_batch: usize,
    /// The checkpoint key (e.g. from an HSM or KMS); `None` loads
    /// `signing_key`.
    pub signer: Option<Signer>,
    /// The checkpoint key's file, outside the audit directory (see
    /// [`key`]); made (0600) on first use.
    pub signing_key: Option<PathBuf>,
    /// Keep the sled indexes (`<dir>/index`) up to date on a background
    /// thread, after each durable batch.
    pub index: bool,
    /// Told each new signed checkpoint (the gateway's witness client).
    pub on_checkpoint: Option<OnCheckpoint>,
    /// Fault injection for tests: a disk of this many free bytes
    /// ([`space::DiskBudget`]); `None` (always, outside tests): the real
    /// disk only.
    pub disk: Option<Arc<space::DiskBudget>>,
}

/// A [`CheckpointHook`] in [`StoreOptions`].
#[derive(Clone)]
pub struct OnCheckpoint(pub CheckpointHook);

impl std::fmt::Debug for OnCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnCheckpoint")
    }
}

/// The audit store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct AuditStore {
    dir: PathBuf,
    verifier: Verifier,
    // `None` once closed.
    queue: Mutex<Option<mpsc::Sender<writer::Msg>>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    indexer: Mutex<Option<thread::JoinHandle<()>>>,
    /// The indexing thread's index, for queries through the store.
    index: Option<Arc<crate::index::indexer::SharedIndex>>,
}

/// What the store found when it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub records: u64,
    pub segments: usize,
    /// An interrupted write cut from the active segment.
    pub torn_tail: Option<TornTail>,
    /// Whether a new signing key pair was made.
    pub key_created: bool,
}

// === impl StoreOptions ===

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_size: 64 << 20,
            checkpoint_interval: Duration::from_secs(1),
            max_batch: 1024,
            signer: None,
            signing_key: None,
            index: true,
            on_checkpoint: None,
            disk: None,
        }
    }
}

// === impl AuditStore ===

impl AuditStore {
    /// Opens (creating if needed) the store in `dir` with default options
    /// and the signing key in the file `signing_key` (outside `dir`).
    pub fn open(dir: &Path, signing_key: &Path) -> Result<(Self, OpenReport), AuditError> {
        AuditStore::open_with(
            dir,
            StoreOptions {
                signing_key: Some(signing_key.to_path_buf()),
                ..StoreOptions::default()
            },
        )
    }

    /// Opens the store: recovers the log (cutting a torn tail, refusing any
    /// other damage), checks it against the latest checkpoint and starts the
    /// writer thread.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<(Self, OpenReport), AuditError> {
        fs::create_dir_all(dir.join(SEGMENTS_DIR))
            .map_err(|e| AuditError::io("create audit directory", e))?;
        let (signer, key_created) = match (options.signer, &options.signing_key) {
            (Some(signer), _) => {
                // Readers check records against checkpoints with it.
                key::publish(dir, &signer)?;
                (signer, false)
            }
            (None, Some(path)) => key::load_or_create(path, dir)?,
            (None, None) => {
                return Err(AuditError::Key(
                    "no signing key configured ([audit] signing_key)".into(),
                ));
            }
        };
        let verifier = signer.verifier();
        let recovered = recover::recover(dir, &verifier)?;
        sync_dir(&dir.join(SEGMENTS_DIR));
        sync_dir(dir);
        let report = OpenReport {
            records: recovered.tree.size(),
            segments: recovered.segments,
            torn_tail: recovered.torn.clone(),
            key_created,
        };
        let (index_tx, shared_index, indexer) = if options.index {
            let (tx, shared, handle) = crate::index::indexer::spawn(dir)
                .map_err(|e| AuditError::io("start audit indexer", e))?;
            (Some(tx), Some(shared), Some(handle))
        } else {
            (None, None, None)
        };
        let config = writer::Config {
            index: index_tx,
            dir: dir.to_path_buf(),
            segment_size: options.segment_size,
            checkpoint_interval: options.checkpoint_interval,
            max_batch: options.max_batch.max(1),
            on_checkpoint: options.on_checkpoint.map(|h| h.0),
            disk: options.disk,
        };
        let writer = writer::Writer::start(config, recovered, signer)?;
        let (tx, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("accord-audit-writer".into())
            .spawn(move || writer.run(&rx))
            .map_err(|e| AuditError::io("start audit writer", e))?;
        Ok((
            AuditStore {
                dir: dir.to_path_buf(),
                verifier,
                queue: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                indexer: Mutex::new(indexer),
                index: shared_index,
            },
            report,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key that verifies this store's checkpoints.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Runs `f` (a query, a report) on this store's index, caught up with
    /// every durable record first. A running store holds the sled index
    /// exclusively, so in-process callers query through here; without a
    /// background indexer the index is opened for the call.
    pub fn with_index<R>(
        &self,
        f: impl FnOnce(&crate::Index) -> Result<R, crate::IndexError>,
    ) -> Result<R, crate::IndexError> {
        match &self.index {
            Some(shared) => shared.with(f),
            None => {
                let index = crate::Index::open(&self.dir)?;
                index.catch_up()?;
                f(&index)
            }
        }
    }

    /// Writes a signed checkpoint of everything appended so far and returns
    /// the note.
    pub fn checkpoint(&self) -> Result<String, AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(writer::Msg::Checkpoint(reply))?;
        answer.recv().map_err(|_| AuditError::Closed)?
    }

    /// An RFC 9162 consistency proof from the tree of `old` records to
    /// the tree of `new` (`None` when `old > new` or `new` is not reached).
    pub fn consistency_proof(
        &self,
        old: u64,
        new: u64,
    ) -> Result<Option<Vec<crate::Hash>>, AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(writer::Msg::Consistency(old, new, reply))?;
        answer.recv().map_err(|_| AuditError::Closed)
    }

    /// Stops accepting records, waits for the queued ones and writes a final
    /// checkpoint.
    pub fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        // The writer is gone, so is its sender: the indexer catches up and
        // stops.
        let indexer = self.indexer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = indexer {
            let _ = handle.join();
        }
    }

    fn send(&self, msg: writer::Msg) -> Result<(), AuditError> {
        let queue = self.queue.lock().map_err(|_| AuditError::Closed)?;
        let sender = queue.as_ref().ok_or(AuditError::Closed)?;
        sender.send(msg).map_err(|_| AuditError::Closed)
    }
}

impl Drop for AuditStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl AuditStore {
    fn submit(&self, record: &AuditRecord, reply: writer::Reply) -> Result<(), AuditError> {
        let mut record = record.clone();
        record.seq = 0;
        // Serialized here, on the appender's thread, not on the writer's.
        let encoded = writer::Encoded::new(&record);
        // Refused before anything is queued: a record the reader would call
        // damage must never reach the log.
        let longest = match &encoded {
            Some(encoded) => encoded.longest(),
            None => serde_json::to_vec(&record)
                .map_err(|e| AuditError::io("encode audit record", io::Error::other(e)))?
                .len()
                .saturating_add(writer::SEQ_DIGITS),
        };
        AuditError::check_size(longest)?;
        self.send(writer::Msg::Append(Box::new(writer::Append {
            record,
            encoded,
            reply,
        })))
    }
}

impl AuditSink for AuditStore {
    fn append(&self, record: &AuditRecord) -> Result<Receipt, AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(
            record,
            Box::new(move |result| {
                let _ = reply.send(result);
            }),
        )?;
        let seq = answer.recv().map_err(|_| AuditError::Closed)??;
        Ok(Receipt { seq })
    }

    fn append_detached(&self, record: &AuditRecord, done: AppendDone) -> Result<(), AppendDone> {
        // `done` runs exactly once: by the writer, or here if the store is
        // closed (then the writer never saw the record).
        let slot = Arc::new(Mutex::new(Some(done)));
        let writer_slot = Arc::clone(&slot);
        let reply: writer::Reply = Box::new(move |result| {
            if let Some(done) = writer_slot.lock().ok().and_then(|mut d| d.take()) {
                done(result.map(|seq| Receipt { seq }));
            }
        });
        if let Err(e) = self.submit(record, reply)
            && let Some(done) = slot.lock().ok().and_then(|mut d| d.take())
        {
            done(Err(e));
        }
        Ok(())
    }
}

/// Writes `path` through a temporary file and a rename.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(|e| AuditError::io("create file", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| AuditError::io("write file", e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
    Ok(())
}

/// Makes a directory's entries durable; best effort (some filesystems
/// refuse to fsync directories).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests;
