//! The in-memory, versioned resource store behind the test server.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use http::StatusCode;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::params;

/// At most this many requests are remembered for [`FhirStore::recorded_requests`].
const RECORDED_LIMIT: usize = 10_000;

/// Why a write was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The body is not a JSON object.
    #[error("resource must be a JSON object")]
    NotAnObject,
    /// No `resourceType`.
    #[error("resource has no `resourceType`")]
    MissingType,
    /// A type the server does not serve.
    #[error("unsupported resource type `{0}`")]
    UnsupportedType(String),
    /// An id that breaks the FHIR id rule `[A-Za-z0-9\-\.]{1,64}`.
    #[error("invalid resource id `{0}`")]
    InvalidId(String),
}

/// A request the server received, for assertions such as "the gateway
/// never forwarded the denied request" or "the search was narrowed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path and query exactly as received, e.g. `/fhir/Observation?patient=pat-0001`.
    pub path_and_query: String,
}

/// A thread-safe, cloneable (shared) FHIR resource store with version
/// history and test knobs (delay, forced failure, request recording).
#[derive(Debug, Clone, Default)]
pub struct FhirStore {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// type → id → versions (index 0 is version "1").
    data: RwLock<BTreeMap<String, BTreeMap<String, Vec<Value>>>>,
    delay_ms: AtomicU64,
    failure: Mutex<Option<StatusCode>>,
    requests: Mutex<VecDeque<RecordedRequest>>,
    next_id: AtomicU64,
}

/// Whether the FHIR id rule holds.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The current time as a FHIR instant (whole seconds, UTC).
fn now_instant() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

// === impl FhirStore ===

impl FhirStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `resources` (e.g. a generated population), each as
    /// its version 1 (a repeated type/id becomes a later version). Items
    /// without a supported `resourceType` are skipped with a warning;
    /// items without an id get one.
    pub fn from_resources(resources: Vec<Value>) -> Self {
        let store = Self::new();
        for resource in resources {
            if let Err(e) = store.load(resource) {
                tracing::warn!(error = %e, "skipping resource");
            }
        }
        store
    }

    /// Stores a resource as given (keeping its `meta.lastUpdated` if any).
    fn load(&self, resource: Value) -> Result<(), StoreError> {
        let (resource_type, mut object) = check(resource)?;
        let id = match object.get("id").and_then(Value::as_str) {
            Some(id) if valid_id(id) => id.to_owned(),
            Some(id) => return Err(StoreError::InvalidId(id.to_owned())),
            None => self.fresh_id(),
        };
        object.insert("id".into(), Value::String(id.clone()));
        let updated = meta_last_updated(&object).unwrap_or_else(now_instant);
        self.push_version(&resource_type, &id, object, updated);
        Ok(())
    }

    /// The latest version of a resource.
    pub fn read(&self, resource_type: &str, id: &str) -> Option<Value> {
        self.with_versions(resource_type, id, |v| v.last().cloned())
    }

    /// One version of a resource (`version_id` "1", "2", ...).
    pub fn vread(&self, resource_type: &str, id: &str, version_id: &str) -> Option<Value> {
        let index = version_id.parse::<usize>().ok()?.checked_sub(1)?;
        self.with_versions(resource_type, id, |v| v.get(index).cloned())
    }

    /// Every version of a resource, newest first (FHIR history order).
    pub fn history(&self, resource_type: &str, id: &str) -> Vec<Value> {
        self.with_versions(resource_type, id, |v| {
            Some(v.iter().rev().cloned().collect())
        })
        .unwrap_or_default()
    }

    /// The latest version of every resource of a type, in id order.
    pub fn all(&self, resource_type: &str) -> Vec<Value> {
        let data = self
            .inner
            .data
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        data.get(resource_type)
            .map(|ids| ids.values().filter_map(|v| v.last().cloned()).collect())
            .unwrap_or_default()
    }

    /// Number of resources (latest versions) across all types.
    pub fn len(&self) -> usize {
        let data = self
            .inner
            .data
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        data.values().map(BTreeMap::len).sum()
    }

    /// Whether the store holds no resources.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Creates a resource with a server-assigned id (any id in the body is
    /// replaced, as FHIR create requires). Returns the stored resource.
    pub fn create(&self, resource: Value) -> Result<Value, StoreError> {
        let (resource_type, mut object) = check(resource)?;
        let id = self.fresh_id();
        object.insert("id".into(), Value::String(id.clone()));
        Ok(self.push_version(&resource_type, &id, object, now_instant()))
    }

    /// Creates or updates the resource with the id in its body. Returns the
    /// stored resource and whether it was created (`true`) or updated.
    pub fn update(&self, resource: Value) -> Result<(Value, bool), StoreError> {
        let (resource_type, object) = check(resource)?;
        let id = match object.get("id").and_then(Value::as_str) {
            Some(id) if valid_id(id) => id.to_owned(),
            other => return Err(StoreError::InvalidId(other.unwrap_or_default().to_owned())),
        };
        let created = self.read(&resource_type, &id).is_none();
        let stored = self.push_version(&resource_type, &id, object, now_instant());
        Ok((stored, created))
    }

    /// Makes every response wait `delay` first (zero: no delay), e.g. to
    /// exercise the gateway's upstream timeout.
    pub fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.inner.delay_ms.store(millis, Ordering::Relaxed);
    }

    /// The configured response delay.
    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.inner.delay_ms.load(Ordering::Relaxed))
    }

    /// Makes every response fail with `status` and an OperationOutcome
    /// (`None` restores normal service), e.g. to exercise upstream-error mapping.
    pub fn set_failure(&self, status: Option<StatusCode>) {
        *self
            .inner
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = status;
    }

    /// The configured forced failure.
    pub fn failure(&self) -> Option<StatusCode> {
        *self
            .inner
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests received so far, oldest first (the last 10 000).
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        let requests = self
            .inner
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        requests.iter().cloned().collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_recorded_requests(&self) {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        let mut requests = self
            .inner
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if requests.len() >= RECORDED_LIMIT {
            requests.pop_front();
        }
        requests.push_back(request);
    }

    fn with_versions<T>(
        &self,
        resource_type: &str,
        id: &str,
        f: impl FnOnce(&Vec<Value>) -> Option<T>,
    ) -> Option<T> {
        let data = self
            .inner
            .data
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        data.get(resource_type)?.get(id).and_then(f)
    }

    fn fresh_id(&self) -> String {
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        format!("srv-{n:06}")
    }

    /// Appends a version, stamping `meta.versionId` and `meta.lastUpdated`.
    fn push_version(
        &self,
        resource_type: &str,
        id: &str,
        mut object: Map<String, Value>,
        last_updated: String,
    ) -> Value {
        let mut data = self
            .inner
            .data
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let versions = data
            .entry(resource_type.to_owned())
            .or_default()
            .entry(id.to_owned())
            .or_default();
        let version_id = (versions.len() + 1).to_string();
        let meta = object
            .entry("meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("versionId".into(), Value::String(version_id));
            meta.insert("lastUpdated".into(), Value::String(last_updated));
        }
        let resource = Value::Object(object);
        versions.push(resource.clone());
        resource
    }
}

/// Splits a resource into its type and object, checking the type is served.
fn check(resource: Value) -> Result<(String, Map<String, Value>), StoreError> {
    let Value::Object(object) = resource else {
        return Err(StoreError::NotAnObject);
    };
    let resource_type = object
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or(StoreError::MissingType)?
        .to_owned();
    if !params::is_supported(&resource_type) {
        return Err(StoreError::UnsupportedType(resource_type));
    }
    Ok((resource_type, object))
}

fn meta_last_updated(object: &Map<String, Value>) -> Option<String> {
    object
        .get("meta")?
        .get("lastUpdated")?
        .as_str()
        .map(str::to_owned)
}
