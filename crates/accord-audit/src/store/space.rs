//! Disk space: how the writer reserves it, and a byte budget that stands
//! in for a small disk in tests (fault injection: a disk that fills up,
//! then gets space back, without a real filesystem).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The space the writer keeps free after the records it writes when it
/// cannot reserve a whole `RESERVE_CHUNK`:
/// a record is refused only when it would not fit with this margin, not
/// whenever less than a chunk is free.
pub const RESERVE_MARGIN: u64 = 64 << 10;

/// A disk with `free` bytes left: every write that grows an audit file
/// takes from it, and one that does not fit fails as a full disk does
/// (`StorageFull`), writing nothing. For tests; `set_free` gives space
/// back.
#[derive(Debug)]
pub struct DiskBudget {
    free: AtomicU64,
}

impl DiskBudget {
    pub fn new(free: u64) -> Arc<Self> {
        Arc::new(DiskBudget {
            free: AtomicU64::new(free),
        })
    }

    pub fn set_free(&self, free: u64) {
        self.free.store(free, Ordering::SeqCst);
    }

    pub fn free(&self) -> u64 {
        self.free.load(Ordering::SeqCst)
    }

    fn take(&self, bytes: u64) -> io::Result<()> {
        self.free
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |free| {
                free.checked_sub(bytes)
            })
            .map(|_| ())
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on device (disk budget)",
                )
            })
    }
}

/// Writes `bytes` at `offset` of `file`, of which `growth` bytes are new
/// space. Out of budget, it writes the part that fits and fails, as a real
/// full disk leaves a torn write.
pub(crate) fn write_at(
    budget: Option<&Arc<DiskBudget>>,
    file: &std::fs::File,
    bytes: &[u8],
    offset: u64,
    growth: u64,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    if let Some(budget) = budget
        && let Err(e) = budget.take(growth)
    {
        let short = growth.saturating_sub(budget.free());
        let fits = (bytes.len() as u64).saturating_sub(short);
        budget.set_free(0);
        let part = bytes
            .get(..usize::try_from(fits).unwrap_or(0))
            .unwrap_or_default();
        file.write_all_at(part, offset)?;
        return Err(e);
    }
    file.write_all_at(bytes, offset)
}

/// Takes `bytes` of new space from `budget`, if there is one.
pub(crate) fn take(budget: Option<&Arc<DiskBudget>>, bytes: u64) -> io::Result<()> {
    match budget {
        Some(budget) => budget.take(bytes),
        None => Ok(()),
    }
}
