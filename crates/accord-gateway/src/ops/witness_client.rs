//! Sends each new audit checkpoint to the configured witnesses (C2SP
//! tlog-witness `add-checkpoint`) and keeps their cosignatures with the
//! checkpoint (`checkpoint.witnessed` in the audit directory).
//!
//! Off the data path: the store's writer only hands the note to a watch
//! channel; a task submits the newest one. A witness that is down, slow or
//! refusing never holds a request up; its refusal is logged (a 409 is the
//! witness saying which size it last cosigned, and the next submission
//! proves from there; a 422 means the log no longer extends what the
//! witness saw, which is the alarm witnesses exist for).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use accord_audit::store::OnCheckpoint;
use accord_audit::store::witnessed::store_witnessed;
use accord_audit::witness::{AddCheckpoint, parse_size};
use accord_audit::{AuditStore, Checkpoint, CosignatureKey, cosign::add_cosignatures};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use crate::config::WitnessConfig;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: usize = 16 << 10;

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why the witness client could not start.
#[derive(Debug, thiserror::Error)]
pub enum WitnessClientError {
    #[error("witness `{url}`: key: {source}")]
    Key {
        url: String,
        source: accord_audit::NoteError,
    },
    #[error("witness client TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// One witness, and the size it last cosigned as far as we know.
#[derive(Debug)]
struct Remote {
    url: String,
    key: CosignatureKey,
    last: AtomicU64,
}

/// The hook to give the store (`StoreOptions::on_checkpoint`) and the feed
/// [`start`] reads it from.
pub fn feed() -> (OnCheckpoint, watch::Receiver<Option<String>>) {
    let (tx, rx) = watch::channel(None);
    let hook = move |note: &str| {
        tx.send_replace(Some(note.to_owned()));
    };
    (OnCheckpoint(Arc::new(hook)), rx)
}

/// Starts submitting checkpoints (the latest one first) to `witnesses`;
/// `None` when there are none.
pub fn start(
    witnesses: &[WitnessConfig],
    store: Arc<AuditStore>,
    mut feed: watch::Receiver<Option<String>>,
) -> Result<Option<tokio::task::JoinHandle<()>>, WitnessClientError> {
    if witnesses.is_empty() {
        return Ok(None);
    }
    let remotes: Vec<Arc<Remote>> = witnesses
        .iter()
        .map(|w| {
            Ok(Arc::new(Remote {
                url: w.url.trim_end_matches('/').to_owned(),
                key: CosignatureKey::parse(&w.key).map_err(|source| WitnessClientError::Key {
                    url: w.url.clone(),
                    source,
                })?,
                last: AtomicU64::new(0),
            }))
        })
        .collect::<Result<_, WitnessClientError>>()?;
    let tls = crate::tls::upstream_client_config(None)?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(connector);
    let first = std::fs::read_to_string(
        store
            .dir()
            .join(accord_audit::store::LATEST_CHECKPOINT_FILE),
    )
    .ok();
    Ok(Some(tokio::spawn(async move {
        let mut next = first;
        loop {
            if let Some(note) = next.take() {
                submit_all(&client, &remotes, &store, &note).await;
            }
            if feed.changed().await.is_err() {
                return;
            }
            next = feed.borrow_and_update().clone();
        }
    })))
}

/// Submits `note` to every witness at once and keeps what they cosigned.
async fn submit_all(
    client: &HttpClient,
    remotes: &[Arc<Remote>],
    store: &Arc<AuditStore>,
    note: &str,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for remote in remotes {
        let (client, remote, store, note) = (
            client.clone(),
            Arc::clone(remote),
            Arc::clone(store),
            note.to_owned(),
        );
        tasks.spawn(async move { submit(&client, &remote, &store, &note).await });
    }
    let mut lines = String::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(line)) = done {
            lines.push_str(&line);
        }
    }
    if lines.is_empty() {
        return;
    }
    let keys: Vec<CosignatureKey> = remotes.iter().map(|r| r.key.clone()).collect();
    let (cosigned, _) = add_cosignatures(note, &lines, &keys);
    let dir = store.dir().to_path_buf();
    let stored = tokio::task::spawn_blocking(move || store_witnessed(&dir, &cosigned)).await;
    if !matches!(stored, Ok(Ok(()))) {
        tracing::error!("cannot keep the witnesses' cosignatures");
    }
}

/// One witness's cosignature line on `note`, or `None` (logged).
async fn submit(
    client: &HttpClient,
    remote: &Remote,
    store: &Arc<AuditStore>,
    note: &str,
) -> Option<String> {
    let size = Checkpoint::parse_note(note).ok()?.size;
    // Twice at most: the second time from the size a 409 named.
    for _ in 0..2 {
        let old = remote.last.load(Ordering::Relaxed);
        if old > size {
            tracing::error!(witness = %remote.url, witnessed = old, size, "the witness has cosigned a larger tree than this log holds: the log was rolled back");
            return None;
        }
        let proof_store = Arc::clone(store);
        let proof = tokio::task::spawn_blocking(move || proof_store.consistency_proof(old, size))
            .await
            .ok()?
            .ok()??;
        let body = AddCheckpoint {
            old,
            proof,
            note: note.to_owned(),
        }
        .encode();
        let (status, answer) =
            match post(client, &format!("{}/add-checkpoint", remote.url), body).await {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(witness = %remote.url, error = %e, "cannot reach the witness");
                    return None;
                }
            };
        match status {
            200 => {
                let cosigned = format!("{note}{answer}");
                if remote.key.verify(&cosigned).is_err() {
                    tracing::warn!(witness = %remote.url, "the witness's answer is not a valid cosignature by its configured key");
                    return None;
                }
                remote.last.store(size, Ordering::Relaxed);
                return Some(answer);
            }
            409 => match parse_size(&answer) {
                Some(witnessed) => remote.last.store(witnessed, Ordering::Relaxed),
                None => return None,
            },
            _ => {
                tracing::error!(witness = %remote.url, status, answer = %answer.trim(), size, "the witness refused the checkpoint");
                return None;
            }
        }
    }
    None
}

async fn post(client: &HttpClient, url: &str, body: String) -> Result<(u16, String), String> {
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(
        TIMEOUT,
        Limited::new(response.into_body(), MAX_ANSWER).collect(),
    )
    .await
    .map_err(|_| "timed out".to_owned())?
    .map_err(|e| e.to_string())?
    .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
