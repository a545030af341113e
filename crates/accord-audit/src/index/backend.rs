//! The key-value store under the indexes, behind a small trait so sled can
//! be swapped for another embedded store. Everything in it can be rebuilt
//! from the log.

use std::path::Path;

use super::IndexError;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An ordered byte-key store.
pub trait IndexBackend: Send + std::fmt::Debug {
    /// Writes every entry atomically (all or none).
    fn write_batch(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), IndexError>;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, IndexError>;
    /// Entries with keys in `[start, end)` (`end = None`: to the end),
    /// ascending by key.
    fn scan(&self, start: &[u8], end: Option<&[u8]>) -> Result<Vec<Entry>, IndexError>;
    /// The entry with the greatest key in `[start, key]`, if any.
    fn floor(&self, start: &[u8], key: &[u8]) -> Result<Option<Entry>, IndexError>;
    /// Removes everything.
    fn clear(&self) -> Result<(), IndexError>;
    /// Makes what was written durable.
    fn flush(&self) -> Result<(), IndexError>;
}

/// sled 0.34: one tree, keys as laid out in `keys`.
#[derive(Debug)]
pub struct SledBackend {
    db: sled::Db,
}

fn backend_err(e: sled::Error) -> IndexError {
    let text = e.to_string();
    if text.contains("could not acquire lock") {
        IndexError::Busy
    } else {
        IndexError::Backend(text)
    }
}

impl SledBackend {
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(64 << 20)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(backend_err)?;
        Ok(SledBackend { db })
    }
}

impl IndexBackend for SledBackend {
    fn write_batch(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), IndexError> {
        let mut batch = sled::Batch::default();
        for (k, v) in entries {
            batch.insert(k, v);
        }
        self.db.apply_batch(batch).map_err(backend_err)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, IndexError> {
        Ok(self.db.get(key).map_err(backend_err)?.map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], end: Option<&[u8]>) -> Result<Vec<Entry>, IndexError> {
        let iter = match end {
            Some(end) => self.db.range(start..end),
            None => self.db.range(start..),
        };
        iter.map(|kv| {
            kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(backend_err)
        })
        .collect()
    }

    fn floor(&self, start: &[u8], key: &[u8]) -> Result<Option<Entry>, IndexError> {
        self.db
            .range(start..=key)
            .next_back()
            .transpose()
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .map_err(backend_err)
    }

    fn clear(&self) -> Result<(), IndexError> {
        self.db.clear().map_err(backend_err)
    }

    fn flush(&self) -> Result<(), IndexError> {
        self.db.flush().map(|_| ()).map_err(backend_err)
    }
}
