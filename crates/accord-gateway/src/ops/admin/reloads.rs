//! What the last policy and TLS reloads did, whoever asked (SIGHUP, the
//! admin API, the file watch), for `GET /reloads` and `GET /policies`.

use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

/// Who asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `SIGHUP`.
    Signal,
    /// `POST /policies/reload`, `POST /tls/reload`.
    Admin,
    /// A changed file under `policies.dir` or a TLS file.
    Watch,
}

/// The outcome of one reload.
#[derive(Debug, Clone, Serialize)]
pub struct LastReload {
    pub ok: bool,
    pub trigger: Trigger,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The refused set's or file's errors; the last good one stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The last policy and TLS reload.
#[derive(Debug, Default)]
pub struct ReloadStatus {
    policies: Mutex<Option<LastReload>>,
    tls: Mutex<Option<LastReload>>,
}

impl ReloadStatus {
    pub fn record_policies(&self, trigger: Trigger, error: Option<String>) {
        set(&self.policies, trigger, error);
    }

    pub fn record_tls(&self, trigger: Trigger, error: Option<String>) {
        set(&self.tls, trigger, error);
    }

    pub fn policies(&self) -> Option<LastReload> {
        get(&self.policies)
    }

    pub fn tls(&self) -> Option<LastReload> {
        get(&self.tls)
    }
}

fn set(slot: &Mutex<Option<LastReload>>, trigger: Trigger, error: Option<String>) {
    let last = LastReload {
        ok: error.is_none(),
        trigger,
        at: OffsetDateTime::now_utc(),
        error,
    };
    *slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(last);
}

fn get(slot: &Mutex<Option<LastReload>>) -> Option<LastReload> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}
