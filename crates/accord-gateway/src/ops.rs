//! What operators use beside the data path: the admin listener (health,
//! readiness, metrics, reloads, audit queries), Prometheus metrics and the
//! access log, the policy/TLS file watcher and the witness client.

pub mod admin;
pub mod metrics;
pub mod watch;
pub mod witness_client;
