//! The single writer thread: batches whatever is queued, writes it to the
//! active segment, fsyncs once, extends the Merkle tree, answers every
//! appender, seals full segments and signs checkpoints.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::AuditError;
use crate::index::Located;
use crate::merkle::{Tree, leaf_hash};
use crate::note::{Checkpoint, Signer};
use crate::record::AuditRecord;
use crate::segment::{SEGMENTS_DIR, SegmentFile, encode_frame, header, segment_name};
use crate::store::recover::Recovered;
use crate::store::{CHECKPOINTS_FILE, LATEST_CHECKPOINT_FILE, sync_dir, write_durably};

pub(crate) enum Msg {
    Append(Box<Append>),
    Checkpoint(mpsc::SyncSender<Result<String, AuditError>>),
}

pub(crate) struct Append {
    pub record: AuditRecord,
    pub reply: mpsc::SyncSender<Result<u64, AuditError>>,
}

pub(crate) struct Config {
    /// Where durable batches go to be indexed (never waited on).
    pub index: Option<crate::index::indexer::Sender>,
    pub dir: PathBuf,
    pub segment_size: u64,
    pub checkpoint_interval: Duration,
    pub max_batch: usize,
}

pub(crate) struct Writer {
    config: Config,
    signer: Signer,
    tree: Tree,
    active: SegmentFile,
    file: File,
    /// Bytes of the active segment known good and durable.
    len: u64,
    /// A failed write could not be undone; cut back to `len` before writing.
    dirty: bool,
    checkpoint_size: u64,
    checkpoint_at: Instant,
}

// === impl Writer ===

impl Writer {
    pub fn start(config: Config, recovered: Recovered, signer: Signer) -> Result<Self, AuditError> {
        let file = open_segment(&recovered.active)?;
        Ok(Writer {
            config,
            signer,
            tree: recovered.tree,
            active: recovered.active,
            file,
            len: recovered.active_len,
            dirty: false,
            checkpoint_size: recovered.checkpoint_size,
            checkpoint_at: Instant::now(),
        })
    }

    pub fn run(mut self, rx: &mpsc::Receiver<Msg>) {
        loop {
            match rx.recv_timeout(self.config.checkpoint_interval) {
                Ok(Msg::Append(first)) => {
                    let mut batch = vec![*first];
                    let mut waiting = Vec::new();
                    while batch.len() < self.config.max_batch {
                        match rx.try_recv() {
                            Ok(Msg::Append(more)) => batch.push(*more),
                            Ok(Msg::Checkpoint(reply)) => waiting.push(reply),
                            Err(_) => break,
                        }
                    }
                    self.commit(batch);
                    for reply in waiting {
                        let _ = reply.send(self.checkpoint());
                    }
                }
                Ok(Msg::Checkpoint(reply)) => {
                    let _ = reply.send(self.checkpoint());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if self.tree.size() > self.checkpoint_size
                && self.checkpoint_at.elapsed() >= self.config.checkpoint_interval
            {
                self.checkpoint_logged();
            }
        }
        if self.tree.size() > self.checkpoint_size {
            self.checkpoint_logged();
        }
    }

    fn commit(&mut self, batch: Vec<Append>) {
        let first_seq = self.tree.size() + 1;
        let mut buffer = Vec::with_capacity(batch.len() * 600);
        if self.len == 0 {
            buffer.extend_from_slice(&header(self.active.first_seq));
        }
        let mut leaves = Vec::with_capacity(batch.len());
        let mut located = Vec::with_capacity(batch.len());
        let mut encoded = Ok(());
        for (i, append) in batch.iter().enumerate() {
            let mut record = append.record.clone();
            record.seq = first_seq + i as u64;
            match serde_json::to_vec(&record) {
                Ok(payload) => {
                    leaves.push(leaf_hash(&payload));
                    let offset = self.len + buffer.len() as u64;
                    encode_frame(&payload, &mut buffer);
                    if self.config.index.is_some() {
                        located.push(Located {
                            record,
                            segment: self.active.first_seq,
                            offset,
                        });
                    }
                }
                Err(e) => encoded = Err(io::Error::other(e)),
            }
        }
        let written = encoded
            .and_then(|()| self.undo_failed_write())
            .and_then(|()| self.file.write_all(&buffer))
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += buffer.len() as u64;
                for leaf in leaves {
                    self.tree.push(leaf);
                }
                for (i, append) in batch.into_iter().enumerate() {
                    let _ = append.reply.send(Ok(first_seq + i as u64));
                }
                if let Some(index) = &self.config.index {
                    // Best effort: a full queue is caught up from the log.
                    let _ = index.try_send(located);
                }
                if self.len >= self.config.segment_size {
                    self.seal();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit append failed; refusing the batch");
                self.dirty = true;
                let _ = self.undo_failed_write();
                let kind = e.kind();
                for append in batch {
                    let err =
                        AuditError::io("append audit record", io::Error::new(kind, e.to_string()));
                    let _ = append.reply.send(Err(err));
                }
            }
        }
    }

    /// Cuts a partial write so the next batch starts on a frame boundary.
    fn undo_failed_write(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.set_len(self.len)?;
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Starts a new segment; the full one is never written again. On failure
    /// the current segment goes on growing and sealing is retried next batch.
    fn seal(&mut self) {
        let next = SegmentFile {
            first_seq: self.tree.size() + 1,
            path: self
                .config
                .dir
                .join(SEGMENTS_DIR)
                .join(segment_name(self.tree.size() + 1)),
        };
        match open_segment(&next) {
            Ok(file) => {
                sync_dir(&self.config.dir.join(SEGMENTS_DIR));
                self.file = file;
                self.active = next;
                self.len = 0;
            }
            Err(e) => tracing::error!(error = %e, "cannot start a new audit segment"),
        }
    }

    fn checkpoint_logged(&mut self) {
        if let Err(e) = self.checkpoint() {
            tracing::error!(error = %e, "cannot write an audit checkpoint");
        }
    }

    /// Signs the current tree head, appends it to `checkpoints.log` and
    /// replaces `checkpoint`.
    fn checkpoint(&mut self) -> Result<String, AuditError> {
        let cp = Checkpoint {
            origin: self.signer.name().to_owned(),
            size: self.tree.size(),
            root: self.tree.root(),
        };
        let note = self.signer.sign(&cp);
        let mut frame = Vec::with_capacity(note.len() + 8);
        encode_frame(note.as_bytes(), &mut frame);
        let path = self.config.dir.join(CHECKPOINTS_FILE);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&frame).and_then(|()| f.sync_data()))
            .map_err(|e| AuditError::io("append checkpoint", e))?;
        write_durably(
            &self.config.dir.join(LATEST_CHECKPOINT_FILE),
            note.as_bytes(),
        )?;
        self.checkpoint_size = cp.size;
        self.checkpoint_at = Instant::now();
        Ok(note)
    }
}

fn open_segment(seg: &SegmentFile) -> Result<File, AuditError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&seg.path)
        .map_err(|e| AuditError::io("open segment", e))
}
