//! The witness's HTTP: `POST /add-checkpoint` and, for monitors,
//! `GET /<origin hash>/checkpoint`. Bodies are bounded, headers have a
//! deadline, and the check-and-store runs off the async threads.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use accord_audit::witness::{MAX_BODY, SIZE_CONTENT_TYPE, Witness};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(listener: TcpListener, witness: Arc<Witness>) -> anyhow::Result<()> {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let witness = Arc::clone(&witness);
        let service = service_fn(move |request| {
            let witness = Arc::clone(&witness);
            async move { Ok::<_, Infallible>(handle(&witness, request).await) }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let connection = http.serve_connection(TokioIo::new(tcp), service);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

async fn handle(witness: &Arc<Witness>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    match (request.method().clone(), path.as_str()) {
        (Method::POST, "/add-checkpoint") => add_checkpoint(witness, request).await,
        (Method::GET, p) => match p
            .strip_prefix('/')
            .and_then(|p| p.strip_suffix("/checkpoint"))
            .and_then(|hash| witness.latest(hash))
        {
            Some(note) => text(StatusCode::OK, "text/plain; charset=utf-8", note),
            None => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        },
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

async fn add_checkpoint(
    witness: &Arc<Witness>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let body = Limited::new(request.into_body(), MAX_BODY);
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "body unreadable, too slow or too large\n".into(),
            );
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    let witness = Arc::clone(witness);
    let answer = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
    match answer {
        Ok(Ok(line)) => text(StatusCode::OK, "text/plain; charset=utf-8", line),
        Ok(Err(refusal)) => {
            let status =
                StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = if status == StatusCode::CONFLICT {
                SIZE_CONTENT_TYPE
            } else {
                "text/plain; charset=utf-8"
            };
            tracing::info!(status = refusal.status(), reason = %refusal, "refused a checkpoint");
            text(status, kind, refusal.body())
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "witness failed\n".into(),
        ),
    }
}

fn text(status: StatusCode, kind: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
    response
}
