//! Rebuildable indexes over the log, in an embedded key-value store (sled,
//! behind [`IndexBackend`]): by patient, partner, agreement, purpose,
//! decision and time, each pointing at record sequence numbers, plus where
//! each record sits in its segment.
//!
//! ```text
//! <dir>/index/        the key-value store (delete it at will: `accord audit reindex`)
//! <dir>/index.key     the deployment's patient-key secret (0600)
//! ```
//!
//! Patient keys are HMAC-SHA-256 of the patient reference under a
//! per-deployment secret, so the index holds no raw identifier. The log stays
//! authoritative: the store indexes after the durable append, on its own
//! thread, and a failure there is logged, never returned to an appender;
//! whatever was missed is caught up from the log on the next batch or open.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use crate::merkle::{Hash, leaf_hash};
use crate::record::AuditRecord;
use crate::segment::{self, SEGMENTS_DIR, segment_name};

pub mod backend;
pub(crate) mod indexer;
pub mod keys;
mod patient_key;

pub use backend::{Entry, IndexBackend, SledBackend};
pub use indexer::STALE_REQUEST;
pub use patient_key::PatientKey;

pub const INDEX_DIR: &str = "index";
pub const INDEX_KEY_FILE: &str = "index.key";
/// A tool asking the running store to let go of the index for a while.
pub const INDEX_REQUEST_FILE: &str = "index.request";

/// Records indexed per backend batch when catching up.
const CATCH_UP_BATCH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index store: {0}")]
    Backend(String),
    #[error("the index is in use by another process (a running gateway?)")]
    Busy,
    #[error("{action}: {source}")]
    Io {
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("audit log: {0}")]
    Log(String),
    #[error("index key file: {0}")]
    Key(String),
}

pub(crate) fn io_err(action: &'static str) -> impl FnOnce(io::Error) -> IndexError {
    move |source| IndexError::Io { action, source }
}

/// One record with where it was written.
#[derive(Debug, Clone)]
pub struct Located {
    pub record: AuditRecord,
    /// First sequence number of the segment holding it.
    pub segment: u64,
    /// Byte offset of its frame in that segment.
    pub offset: u64,
    /// Its Merkle leaf hash (of the bytes as written).
    pub leaf: Hash,
}

/// The indexes of one audit directory.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
    backend: Box<dyn IndexBackend>,
    key: PatientKey,
}

/// A field an index is kept for (exact match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Patient,
    Partner,
    Agreement,
    Purpose,
    Decision,
}

impl Index {
    /// Opens (creating) the sled index of audit directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        let key = PatientKey::load_or_create(dir)?;
        let backend = SledBackend::open(&dir.join(INDEX_DIR))?;
        Index::with_backend(dir, Box::new(backend), key)
    }

    /// An index over `backend`. One written in another key layout
    /// ([`keys::FORMAT`]) is emptied here, to be rebuilt from the log by
    /// the next catch-up: it is derived data, and mixing layouts would
    /// give wrong answers.
    pub fn with_backend(
        dir: &Path,
        backend: Box<dyn IndexBackend>,
        key: PatientKey,
    ) -> Result<Self, IndexError> {
        let index = Index {
            dir: dir.to_path_buf(),
            backend,
            key,
        };
        let format = index
            .backend
            .get(keys::META_FORMAT)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes);
        if format != Some(keys::FORMAT) {
            if format.is_some() || index.next_seq()? > 1 {
                tracing::info!(
                    found = format.unwrap_or(1),
                    format = keys::FORMAT,
                    "audit index is in an older layout; rebuilding it from the log"
                );
            }
            index.reset()?;
        }
        Ok(index)
    }

    /// Empties the index and stamps it with this code's layout.
    fn reset(&self) -> Result<(), IndexError> {
        self.backend.clear()?;
        self.backend.write_batch(vec![(
            keys::META_FORMAT.to_vec(),
            keys::FORMAT.to_be_bytes().to_vec(),
        )])
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn backend_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, IndexError> {
        self.backend.get(key)
    }

    pub(crate) fn backend_put(&self, key: &[u8], value: Vec<u8>) -> Result<(), IndexError> {
        self.backend.write_batch(vec![(key.to_vec(), value)])
    }

    /// The next sequence number this index expects (1 when empty).
    pub fn next_seq(&self) -> Result<u64, IndexError> {
        Ok(self
            .backend
            .get(keys::META_NEXT)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(1, u64::from_be_bytes))
    }

    /// Adds records (in order, already durable). Records below
    /// [`next_seq`](Self::next_seq) are skipped; a gap is an error (catch
    /// up from the log first). The call is one batch of the key layout:
    /// one posting key per field value, one location key.
    pub fn add(&self, records: &[Located]) -> Result<(), IndexError> {
        let start = self.next_seq()?;
        let mut next = start;
        // Posting prefix → this batch's sequence numbers, ascending.
        let mut postings: BTreeMap<Vec<u8>, Vec<u64>> = BTreeMap::new();
        let mut locations = Vec::with_capacity(records.len());
        let mut leaves = Vec::with_capacity(records.len() * 32);
        for located in records.iter().filter(|l| l.record.seq >= start) {
            if located.record.seq != next {
                return Err(IndexError::Log(format!(
                    "record {} arrived before record {next}",
                    located.record.seq
                )));
            }
            for prefix in self.prefixes(&located.record) {
                postings.entry(prefix).or_default().push(next);
            }
            locations.push((located.segment, located.offset));
            leaves.extend_from_slice(&located.leaf.0);
            next += 1;
        }
        if locations.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::with_capacity(postings.len() + 2);
        for (prefix, seqs) in postings {
            entries.push((keys::with_seq(prefix, start), keys::pack_seqs(start, &seqs)));
        }
        entries.push((keys::location_key(start), keys::pack_locations(&locations)));
        entries.push((keys::leaf_key(start), leaves));
        entries.push((keys::META_NEXT.to_vec(), next.to_be_bytes().to_vec()));
        self.backend.write_batch(entries)
    }

    /// The posting prefixes (`tag ‖ value`) a record is listed under.
    fn prefixes(&self, record: &AuditRecord) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(8);
        // Attempts are found by patient too: a denied read of an opted-out
        // patient is exactly what a privacy officer looks for.
        let mut patients = record.concerned_patients();
        patients.sort_unstable();
        for patient in patients {
            out.push(keys::bytes_prefix(keys::PATIENT, &self.key.tag(patient)));
        }
        if let Some(partner) = &record.partner {
            out.push(keys::text_prefix(keys::PARTNER, partner));
        }
        let mut agreements: Vec<&str> = record.agreement_ids().collect();
        agreements.sort_unstable();
        agreements.dedup();
        for agreement in agreements {
            out.push(keys::text_prefix(keys::AGREEMENT, agreement));
        }
        if let Some(purpose) = &record.purpose {
            out.push(keys::text_prefix(keys::PURPOSE, purpose));
        }
        out.push(vec![keys::DECISION, keys::decision_byte(record.decision)]);
        out.push(keys::bytes_prefix(
            keys::TIME,
            &keys::time_bytes(record.time.unix_timestamp()),
        ));
        out
    }

    /// The sequence numbers of the posting keys in `[start, end)` whose
    /// key is `expected` bytes long, in key order.
    fn postings(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        expected: Option<usize>,
    ) -> Result<Vec<u64>, IndexError> {
        let mut out = Vec::new();
        for (key, value) in self.backend.scan(start, end)? {
            if expected.is_some_and(|len| key.len() != len) {
                continue;
            }
            keys::seq_of(&key)
                .and_then(|batch| keys::unpack_seqs(batch, &value, &mut out))
                .ok_or_else(|| {
                    IndexError::Backend("corrupt posting (run `accord audit reindex`)".into())
                })?;
        }
        Ok(out)
    }

    /// Sequence numbers of records whose `field` equals `value`, ascending.
    pub fn lookup(&self, field: Field, value: &str) -> Result<Vec<u64>, IndexError> {
        let prefix = match field {
            Field::Patient => keys::bytes_prefix(keys::PATIENT, &self.key.tag(value)),
            Field::Partner => keys::text_prefix(keys::PARTNER, value),
            Field::Agreement => keys::text_prefix(keys::AGREEMENT, value),
            Field::Purpose => keys::text_prefix(keys::PURPOSE, value),
            Field::Decision => match value.parse() {
                Ok(d) => vec![keys::DECISION, keys::decision_byte(d)],
                Err(()) => return Ok(Vec::new()),
            },
        };
        let end = keys::prefix_end(&prefix);
        self.postings(&prefix, end.as_deref(), Some(prefix.len() + 8))
    }

    /// The distinct values of a text field (partner, agreement, purpose)
    /// the indexed records hold. Patients are kept as keyed tags, never as
    /// text, so they cannot be listed (empty); decisions are the three
    /// words.
    pub fn values(&self, field: Field) -> Result<BTreeSet<String>, IndexError> {
        let tag = match field {
            Field::Partner => keys::PARTNER,
            Field::Agreement => keys::AGREEMENT,
            Field::Purpose => keys::PURPOSE,
            Field::Patient | Field::Decision => return Ok(BTreeSet::new()),
        };
        let end = [tag.saturating_add(1)];
        let mut out = BTreeSet::new();
        for (key, _) in self.backend.scan(&[tag], Some(&end))? {
            if let Some(value) = keys::text_of(&key) {
                out.insert(value);
            }
        }
        Ok(out)
    }

    /// Sequence numbers of records with `since <= time < until` (unix
    /// seconds), in time order.
    pub fn in_time(&self, since: Option<i64>, until: Option<i64>) -> Result<Vec<u64>, IndexError> {
        let start = keys::bytes_prefix(keys::TIME, &keys::time_bytes(since.unwrap_or(i64::MIN)));
        let end = match until {
            Some(until) => keys::bytes_prefix(keys::TIME, &keys::time_bytes(until)),
            None => vec![keys::TIME + 1],
        };
        self.postings(&start, Some(&end), None)
    }

    /// Reads record `seq` from its segment through the location index.
    pub fn read(&self, seq: u64) -> Result<Option<AuditRecord>, IndexError> {
        Ok(self.read_frame(seq)?.map(|(record, _)| record))
    }

    /// Reads record `seq` and says whether its bytes still hash to the
    /// leaf indexed for it (`Some(false)`: changed since it was indexed;
    /// `None`: no leaf indexed).
    pub fn read_checked(
        &self,
        seq: u64,
    ) -> Result<Option<(AuditRecord, Option<bool>)>, IndexError> {
        let Some((record, leaf)) = self.read_frame(seq)? else {
            return Ok(None);
        };
        let indexed = self.leaf(seq)?;
        Ok(Some((record, indexed.map(|i| i == leaf))))
    }

    /// The leaf hash indexed for record `seq`.
    pub fn leaf(&self, seq: u64) -> Result<Option<Hash>, IndexError> {
        let Some((key, value)) = self.backend.floor(&[keys::LEAF], &keys::leaf_key(seq))? else {
            return Ok(None);
        };
        let at = keys::seq_of(&key)
            .and_then(|batch| seq.checked_sub(batch))
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| n.checked_mul(32));
        Ok(at
            .and_then(|at| value.get(at..at.checked_add(32)?))
            .and_then(Hash::from_slice))
    }

    /// The leaf hashes indexed for records `from..=to`, in order; a record
    /// with no leaf (unreadable when indexed) gives `None`.
    pub fn leaves(&self, from: u64, to: u64) -> Result<Vec<(u64, Option<Hash>)>, IndexError> {
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let start = match self.backend.floor(&[keys::LEAF], &keys::leaf_key(from))? {
            Some((key, _)) => key,
            None => keys::leaf_key(from),
        };
        let end = keys::leaf_key(to.saturating_add(1));
        let mut next = from;
        for (key, value) in self.backend.scan(&start, Some(&end))? {
            let Some(batch) = keys::seq_of(&key) else {
                continue;
            };
            for (i, chunk) in value.chunks_exact(32).enumerate() {
                let seq = batch + i as u64;
                if seq < next {
                    continue;
                }
                if seq > to {
                    break;
                }
                while next < seq {
                    out.push((next, None));
                    next += 1;
                }
                out.push((seq, Hash::from_slice(chunk)));
                next = seq + 1;
            }
        }
        while next <= to {
            out.push((next, None));
            next += 1;
        }
        Ok(out)
    }

    /// Reads record `seq` and the leaf hash of its bytes.
    fn read_frame(&self, seq: u64) -> Result<Option<(AuditRecord, Hash)>, IndexError> {
        let Some((key, value)) = self
            .backend
            .floor(&[keys::LOCATION], &keys::location_key(seq))?
        else {
            return Ok(None);
        };
        let Some((segment, offset)) = keys::seq_of(&key)
            .and_then(|batch| seq.checked_sub(batch))
            .and_then(|n| keys::nth_location(&value, n))
        else {
            return Ok(None);
        };
        read_leaf_at(&self.dir, segment, offset, seq).map(Some)
    }

    /// Indexes whatever the log holds past [`next_seq`](Self::next_seq);
    /// returns how many records were added.
    pub fn catch_up(&self) -> Result<u64, IndexError> {
        let mut next = self.next_seq()?;
        let start = next;
        let mut skipped = 0;
        let segments = segment::list(&self.dir)
            .map_err(io_err("list segments"))?
            .map_err(|d| IndexError::Log(d.to_string()))?;
        let from = segments
            .iter()
            .rposition(|s| s.first_seq <= next)
            .unwrap_or(0);
        for seg in segments.iter().skip(from) {
            let bytes = segment::read_file(&seg.path).map_err(io_err("read segment"))?;
            let scan = segment::scan(seg, &bytes);
            let name = segment_name(seg.first_seq);
            let damage: Vec<_> = scan
                .damaged
                .iter()
                .map(|d| damage_entry(&name, d))
                .collect();
            if !damage.is_empty() {
                self.backend.write_batch(damage)?;
            }
            let mut batch = Vec::with_capacity(CATCH_UP_BATCH);
            let from = next;
            for frame in scan.frames.into_iter().filter(|f| f.seq >= from) {
                if frame.seq > next + batch.len() as u64 {
                    // Unreadable records before this one: index around them.
                    self.add(&batch)?;
                    batch.clear();
                    skipped += frame.seq - self.next_seq()?;
                    self.skip_to(frame.seq)?;
                    next = frame.seq;
                }
                let record: AuditRecord = serde_json::from_slice(&frame.payload)
                    .map_err(|e| IndexError::Log(format!("record {}: {e}", frame.seq)))?;
                batch.push(Located {
                    record,
                    segment: seg.first_seq,
                    offset: frame.offset,
                    leaf: frame.leaf,
                });
                if batch.len() == CATCH_UP_BATCH {
                    self.add(&batch)?;
                    batch.clear();
                }
            }
            self.add(&batch)?;
            next = self.next_seq()?;
        }
        self.backend.flush()?;
        Ok(next - start - skipped)
    }

    /// Moves past records the log cannot read (never listed).
    fn skip_to(&self, seq: u64) -> Result<(), IndexError> {
        if seq > self.next_seq()? {
            self.backend
                .write_batch(vec![(keys::META_NEXT.to_vec(), seq.to_be_bytes().to_vec())])?;
        }
        Ok(())
    }

    /// The unreadable stretches of the log met while indexing, in words
    /// ("records 150–150 unreadable: checksum mismatch in segment …, byte
    /// offset 186248"): the answers of queries and reports leave them out.
    pub fn damaged(&self) -> Result<Vec<String>, IndexError> {
        Ok(self
            .backend
            .scan(&[keys::DAMAGE], Some(&[keys::DAMAGE + 1]))?
            .into_iter()
            .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
            .collect())
    }

    /// Drops every index entry and rebuilds from the log.
    pub fn rebuild(&self) -> Result<u64, IndexError> {
        self.reset()?;
        self.catch_up()
    }

    pub fn flush(&self) -> Result<(), IndexError> {
        self.backend.flush()
    }
}

/// An index a tool borrowed from a running store (see [`Index::borrow`]).
#[derive(Debug)]
pub struct Borrowed {
    // Field order matters: the index (and its lock) goes before the request
    // is withdrawn, so the store finds it free.
    index: Index,
    _request: Option<RequestFile>,
}

#[derive(Debug)]
struct RequestFile(PathBuf);

impl Drop for RequestFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl std::ops::Deref for Borrowed {
    type Target = Index;

    fn deref(&self) -> &Index {
        &self.index
    }
}

impl Index {
    /// Opens the index for a tool. If a running store holds it, asks the
    /// store to let go (`index.request`), waits up to `wait`, and gives it
    /// back on drop. Then catches up with the log so answers are current.
    pub fn borrow(dir: &Path, wait: std::time::Duration) -> Result<Borrowed, IndexError> {
        let mut request = None;
        let start = std::time::Instant::now();
        let index = loop {
            match Index::open(dir) {
                Ok(index) => break index,
                Err(IndexError::Busy) if start.elapsed() < wait => {
                    if request.is_none() {
                        let path = dir.join(INDEX_REQUEST_FILE);
                        fs::write(&path, std::process::id().to_string())
                            .map_err(io_err("ask the gateway for the index"))?;
                        request = Some(RequestFile(path));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        };
        let borrowed = Borrowed {
            index,
            _request: request,
        };
        borrowed.catch_up()?;
        Ok(borrowed)
    }
}

/// The index entry naming one damaged stretch (keyed by where it is, so
/// meeting it again rewrites the same entry).
fn damage_entry(segment: &str, d: &segment::Damaged) -> (Vec<u8>, Vec<u8>) {
    let records = match d.count {
        Some(0) => "bytes that are no record".to_owned(),
        Some(n) => format!("records {}–{} unreadable", d.first_seq, d.first_seq + n - 1),
        None => format!(
            "records {} to the end of the segment unreadable",
            d.first_seq
        ),
    };
    let text = format!(
        "{records}: {} in segment {segment}, byte offset {}",
        d.what, d.offset
    );
    let mut key = keys::bytes_prefix(keys::DAMAGE, segment.as_bytes());
    key.extend_from_slice(&d.offset.to_be_bytes());
    (key, text.into_bytes())
}

/// Reads and checks the frame at `offset` of segment `segment`.
pub fn read_at(dir: &Path, segment: u64, offset: u64, seq: u64) -> Result<AuditRecord, IndexError> {
    read_leaf_at(dir, segment, offset, seq).map(|(record, _)| record)
}

/// [`read_at`], with the leaf hash of the record's bytes.
fn read_leaf_at(
    dir: &Path,
    segment: u64,
    offset: u64,
    seq: u64,
) -> Result<(AuditRecord, Hash), IndexError> {
    let path = dir.join(SEGMENTS_DIR).join(segment_name(segment));
    let mut file = fs::File::open(&path).map_err(io_err("open segment"))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(io_err("seek segment"))?;
    let mut head = [0u8; 8];
    file.read_exact(&mut head).map_err(io_err("read frame"))?;
    let [l0, l1, l2, l3, c0, c1, c2, c3] = head;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len > segment::MAX_RECORD {
        return Err(IndexError::Log(format!(
            "{}: offset {offset}: bad frame length",
            path.display()
        )));
    }
    let mut payload = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.read_exact(&mut payload)
        .map_err(io_err("read frame"))?;
    if crc32fast::hash(&payload) != crc {
        return Err(IndexError::Log(format!(
            "{}: offset {offset}: checksum mismatch (run `accord audit verify`)",
            path.display()
        )));
    }
    let record: AuditRecord = serde_json::from_slice(&payload)
        .map_err(|e| IndexError::Log(format!("record {seq}: {e}")))?;
    if record.seq != seq {
        return Err(IndexError::Log(format!(
            "index points record {seq} at record {} (run `accord audit reindex`)",
            record.seq
        )));
    }
    Ok((record, leaf_hash(&payload)))
}
