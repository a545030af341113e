//! The store's indexing thread. The writer hands it each durable batch with
//! `try_send` (never waiting); anything it misses — a full queue, an index
//! it could not open, a tool that borrowed the index — is caught up from the
//! log later. Failures are logged, never returned to an appender.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::{INDEX_REQUEST_FILE, Index, IndexError, Located};

/// Batches queued for the indexer before the writer starts dropping them.
const QUEUE: usize = 256;
/// Most records merged from queued batches into one index write.
const COALESCE: usize = 8192;
/// How long the indexer gathers batches before one index write. At low
/// rates the writer hands over one record per `fdatasync`; written one by
/// one they cost sled a batch each (≈40 % of the gateway's CPU per read in
/// the 2 KB read profile). Queries lose nothing by the wait: they catch the
/// index up from the log first.
const LINGER: Duration = Duration::from_millis(250);
const TICK: Duration = Duration::from_millis(200);
const RETRY: Duration = Duration::from_secs(10);
/// A request file older than this was left by a tool that died.
pub const STALE_REQUEST: Duration = Duration::from_secs(120);

pub(crate) type Sender = mpsc::SyncSender<Vec<Located>>;

pub(crate) fn spawn(
    dir: &Path,
) -> std::io::Result<(Sender, Arc<SharedIndex>, thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let shared = Arc::new(SharedIndex {
        dir: dir.to_path_buf(),
        slot: Mutex::new(None),
    });
    let indexer = Indexer::new(Arc::clone(&shared));
    let handle = thread::Builder::new()
        .name("accord-audit-index".into())
        .spawn(move || indexer.run(&rx))?;
    Ok((tx, shared, handle))
}

/// The index the indexing thread keeps open, shared with queries made
/// through the store (the running gateway's admin API): sled is exclusive,
/// so they use this handle rather than opening their own.
#[derive(Debug)]
pub(crate) struct SharedIndex {
    dir: PathBuf,
    slot: Mutex<Option<Index>>,
}

impl SharedIndex {
    fn lock(&self) -> MutexGuard<'_, Option<Index>> {
        // A panic while holding the lock leaves at worst a stale index,
        // which catch-up repairs: keep using it.
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the index, caught up with everything durable in the log
    /// first. Opens it if the indexing thread has not; `Busy` while a tool
    /// has borrowed it.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&Index) -> Result<R, IndexError>,
    ) -> Result<R, IndexError> {
        if requested(&self.dir) {
            return Err(IndexError::Busy);
        }
        let mut slot = self.lock();
        if slot.is_none() {
            *slot = Some(Index::open(&self.dir)?);
        }
        let index = slot.as_ref().ok_or(IndexError::Busy)?;
        index.catch_up()?;
        f(index)
    }
}

/// Whether a tool asked for the index (and is not long dead).
pub(crate) fn requested(dir: &Path) -> bool {
    std::fs::metadata(dir.join(INDEX_REQUEST_FILE))
        .and_then(|m| m.modified())
        .is_ok_and(|t| {
            SystemTime::now()
                .duration_since(t)
                .is_ok_and(|age| age < STALE_REQUEST)
        })
}

struct Indexer {
    shared: Arc<SharedIndex>,
    last_attempt: Option<Instant>,
    failing: bool,
}

impl Indexer {
    fn new(shared: Arc<SharedIndex>) -> Self {
        Indexer {
            shared,
            last_attempt: None,
            failing: false,
        }
    }

    fn run(mut self, rx: &mpsc::Receiver<Vec<Located>>) {
        loop {
            let batch = match rx.recv_timeout(TICK) {
                Ok(mut batch) => {
                    // One backend batch for everything that arrives within
                    // LINGER: sled's cost is per batch as much as per key.
                    let deadline = Instant::now() + LINGER;
                    while batch.len() < COALESCE {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(more) => batch.extend(more),
                            Err(_) => break,
                        }
                    }
                    Some(batch)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            if requested(&self.shared.dir) {
                if let Some(index) = self.shared.lock().take() {
                    let _ = index.flush();
                    tracing::info!("audit index lent to a tool; catching up when it is done");
                }
                continue;
            }
            if self.shared.lock().is_none() && !self.open() {
                continue;
            }
            if let Some(batch) = batch {
                self.add(&batch);
            }
        }
        let last = self.shared.lock().take();
        if let Some(index) = last
            && let Err(e) = index.catch_up()
        {
            tracing::warn!(error = %e, "audit index: final catch-up failed");
        }
    }

    /// Opens the index and catches up from the log; retried every few
    /// seconds while it fails.
    fn open(&mut self) -> bool {
        if self.last_attempt.is_some_and(|t| t.elapsed() < RETRY) {
            return false;
        }
        self.last_attempt = Some(Instant::now());
        let mut slot = self.shared.lock();
        if slot.is_some() {
            // A query opened it meanwhile.
            return true;
        }
        let opened = Index::open(&self.shared.dir).and_then(|index| {
            let added = index.catch_up()?;
            if added > 0 {
                tracing::info!(records = added, "audit index caught up from the log");
            }
            Ok(index)
        });
        match opened {
            Ok(index) => {
                *slot = Some(index);
                drop(slot);
                self.last_attempt = None;
                self.failing = false;
                true
            }
            Err(e) => {
                drop(slot);
                self.fail(&e);
                false
            }
        }
    }

    fn add(&mut self, batch: &[Located]) {
        let mut slot = self.shared.lock();
        let Some(index) = slot.as_ref() else { return };
        let result = index.add(batch).or_else(|e| match e {
            // Missed batches: read them from the log.
            IndexError::Log(_) => index.catch_up().map(|_| ()),
            e => Err(e),
        });
        if let Err(e) = result {
            *slot = None;
            drop(slot);
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &IndexError) {
        if !self.failing {
            tracing::warn!(error = %e, "audit index not updated (the log is unaffected; `accord audit reindex` rebuilds it)");
        }
        self.failing = true;
    }
}
