//! Volume caps: a grant's `caps.requests_per_day` and `resources_per_day`,
//! counted per recipient per agreement per UTC day.
//!
//! Counters live in sled under the gateway's state directory, so a restart
//! does not reset a day's count. A request is counted when it is permitted
//! (before it reaches the upstream); resources are counted when they are
//! released, and a response that would take the day's count over the cap
//! is not released at all. Only grants with caps touch the store; the
//! pipeline flushes each counted update (on a blocking thread) before the
//! answer goes out.

use std::path::Path;
use std::time::Duration;

use accord_policy::Caps;
use time::{Date, OffsetDateTime, Time};

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CapKind {
    Requests,
    Resources,
}

/// Whose counter: the agreement whose grant permitted, and the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapKey {
    pub agreement: String,
    pub partner: String,
}

/// A cap was reached: the partner waits until the next UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapExceeded {
    pub kind: CapKind,
    pub limit: u64,
    /// Seconds until the next UTC midnight, when the counters start over.
    pub retry_after: u64,
}

/// The counter store could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("volume-cap counters in {path}: {source}")]
pub struct CapsStoreError {
    pub path: String,
    #[source]
    pub source: sled::Error,
}

/// The day's counters.
#[derive(Debug)]
pub struct VolumeCaps {
    db: sled::Db,
}

/// One counter's value with its key, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapUsage {
    pub agreement: String,
    pub partner: String,
    pub kind: CapKind,
    pub used: u64,
}

// === impl CapKind ===

impl CapKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CapKind::Requests => "requests_per_day",
            CapKind::Resources => "resources_per_day",
        }
    }

    fn limit(self, caps: &Caps) -> Option<u64> {
        match self {
            CapKind::Requests => caps.requests_per_day,
            CapKind::Resources => caps.resources_per_day,
        }
    }
}

// === impl CapExceeded ===

impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "daily volume cap reached: {} = {} (counts start over at 00:00 UTC)",
            self.kind.as_str(),
            self.limit
        )
    }
}

// === impl VolumeCaps ===

impl VolumeCaps {
    /// Opens (or creates) the counters in `dir`; `None` keeps them in
    /// memory only (tests, or a gateway without a state directory — then a
    /// restart resets the day's counts).
    pub fn open(dir: Option<&Path>) -> Result<Self, CapsStoreError> {
        let path = dir.map_or_else(|| "(memory)".to_owned(), |d| d.display().to_string());
        let config = match dir {
            Some(dir) => sled::Config::new().path(dir),
            None => sled::Config::new().temporary(true),
        };
        // A gateway restarting in the same process (tests, reload) may
        // find the previous instance's lock not yet released.
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                // sled reports a held lock as an `Other` I/O error that
                // says so.
                Err(sled::Error::Io(e))
                    if attempts < 50 && e.to_string().contains("could not acquire lock") =>
                {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(source) => return Err(CapsStoreError { path, source }),
            }
        };
        let caps = VolumeCaps { db };
        caps.forget_before(OffsetDateTime::now_utc().date());
        Ok(caps)
    }

    /// Counts one request; refused when the day's requests are used up, or
    /// the day's resources are (the request could release nothing).
    pub fn admit_request(
        &self,
        key: &CapKey,
        caps: &Caps,
        now: OffsetDateTime,
    ) -> Result<(), CapExceeded> {
        if let Some(limit) = caps.resources_per_day
            && self.used(key, CapKind::Resources, now) >= limit
        {
            return Err(exceeded(CapKind::Resources, limit, now));
        }
        self.take(key, caps, CapKind::Requests, 1, now)
    }

    /// Counts `released` resources; refused (and nothing counted) when they
    /// would take the day's count over the cap.
    pub fn take_resources(
        &self,
        key: &CapKey,
        caps: &Caps,
        released: u64,
        now: OffsetDateTime,
    ) -> Result<(), CapExceeded> {
        if released == 0 {
            return Ok(());
        }
        self.take(key, caps, CapKind::Resources, released, now)
    }

    /// Today's counters, for metrics.
    pub fn usage(&self, now: OffsetDateTime) -> Vec<CapUsage> {
        let prefix = format!("{}\u{0}", now.date());
        self.db
            .scan_prefix(prefix.as_bytes())
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                let key = String::from_utf8(k.to_vec()).ok()?;
                let mut parts = key.split('\u{0}').skip(1);
                let (agreement, partner, kind) = (parts.next()?, parts.next()?, parts.next()?);
                let kind = match kind {
                    "requests_per_day" => CapKind::Requests,
                    "resources_per_day" => CapKind::Resources,
                    _ => return None,
                };
                Some(CapUsage {
                    agreement: agreement.to_owned(),
                    partner: partner.to_owned(),
                    kind,
                    used: decode(&v),
                })
            })
            .collect()
    }

    /// Writes everything counted so far to disk.
    pub fn flush(&self) {
        if let Err(e) = self.db.flush() {
            tracing::error!(error = %e, "volume-cap counters could not be flushed");
        }
    }

    /// Today's count of `kind` for `key`.
    pub fn used(&self, key: &CapKey, kind: CapKind, now: OffsetDateTime) -> u64 {
        self.db
            .get(counter_key(key, kind, now))
            .ok()
            .flatten()
            .map_or(0, |v| decode(&v))
    }

    /// Adds `amount` to the counter if it stays within the cap (atomically:
    /// concurrent requests cannot both take the last unit).
    fn take(
        &self,
        key: &CapKey,
        caps: &Caps,
        kind: CapKind,
        amount: u64,
        now: OffsetDateTime,
    ) -> Result<(), CapExceeded> {
        let Some(limit) = kind.limit(caps) else {
            return Ok(());
        };
        let mut over = false;
        let updated = self
            .db
            .fetch_and_update(counter_key(key, kind, now), |old| {
                let used = old.map_or(0, decode);
                match used.checked_add(amount) {
                    Some(next) if next <= limit => Some(next.to_be_bytes().to_vec()),
                    _ => {
                        over = true;
                        old.map(<[u8]>::to_vec)
                    }
                }
            });
        match updated {
            Ok(_) if over => Err(exceeded(kind, limit, now)),
            Ok(_) => Ok(()),
            Err(e) => {
                // A counter that cannot be kept is a cap that cannot be
                // enforced: refuse.
                tracing::error!(error = %e, "volume-cap counter update failed");
                Err(exceeded(kind, limit, now))
            }
        }
    }

    /// Drops the counters of days before `today`.
    fn forget_before(&self, today: Date) {
        let today = today.to_string();
        for (key, _) in self.db.iter().filter_map(Result::ok) {
            let day = key.split(|b| *b == 0).next().unwrap_or(&[]);
            if day < today.as_bytes() {
                let _ = self.db.remove(&key);
            }
        }
    }
}

fn counter_key(key: &CapKey, kind: CapKind, now: OffsetDateTime) -> Vec<u8> {
    format!(
        "{}\u{0}{}\u{0}{}\u{0}{}",
        now.date(),
        key.agreement,
        key.partner,
        kind.as_str()
    )
    .into_bytes()
}

fn decode(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes)
}

fn exceeded(kind: CapKind, limit: u64, now: OffsetDateTime) -> CapExceeded {
    CapExceeded {
        kind,
        limit,
        retry_after: seconds_to_next_utc_midnight(now),
    }
}

/// Seconds from `now` to the next 00:00 UTC (at least 1).
pub fn seconds_to_next_utc_midnight(now: OffsetDateTime) -> u64 {
    let now = now.to_offset(time::UtcOffset::UTC);
    let next = now
        .date()
        .next_day()
        .map(|d| d.with_time(Time::MIDNIGHT).assume_utc());
    next.map_or(86_400, |next| {
        u64::try_from((next - now).whole_seconds())
            .unwrap_or(1)
            .max(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CapKey {
        CapKey {
            agreement: "care".into(),
            partner: "maple".into(),
        }
    }

    #[test]
    fn requests_are_refused_beyond_the_cap_and_start_over_the_next_day() {
        let caps_store = VolumeCaps::open(None).unwrap();
        let caps = Caps {
            requests_per_day: Some(2),
            resources_per_day: None,
        };
        let day1 = time::macros::datetime!(2026-03-01 23:00 UTC);
        assert!(caps_store.admit_request(&key(), &caps, day1).is_ok());
        assert!(caps_store.admit_request(&key(), &caps, day1).is_ok());
        let refused = caps_store.admit_request(&key(), &caps, day1).unwrap_err();
        assert_eq!(
            (refused.kind, refused.retry_after),
            (CapKind::Requests, 3600)
        );
        let day2 = time::macros::datetime!(2026-03-02 00:00:01 UTC);
        assert!(caps_store.admit_request(&key(), &caps, day2).is_ok());
    }

    #[test]
    fn resources_are_taken_whole_or_not_at_all() {
        let caps_store = VolumeCaps::open(None).unwrap();
        let caps = Caps {
            requests_per_day: None,
            resources_per_day: Some(5),
        };
        let now = time::macros::datetime!(2026-03-01 12:00 UTC);
        assert!(caps_store.take_resources(&key(), &caps, 3, now).is_ok());
        assert!(caps_store.take_resources(&key(), &caps, 3, now).is_err());
        assert!(caps_store.take_resources(&key(), &caps, 2, now).is_ok());
        assert!(
            caps_store.admit_request(&key(), &caps, now).is_err(),
            "none left"
        );
        assert_eq!(caps_store.usage(now)[0].used, 5);
    }

    #[test]
    fn midnight_is_counted_in_utc() {
        let now = time::macros::datetime!(2026-03-01 23:59:30 +02:00);
        // 21:59:30 UTC: two hours and thirty seconds to go.
        assert_eq!(seconds_to_next_utc_midnight(now), 2 * 3600 + 30);
    }
}
