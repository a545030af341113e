//! Baseline (b): a plain hyper reverse proxy with the gateway's TLS setup
//! (same listener configuration, client certificates verified against the
//! same CA) and a pooled keep-alive client to the upstream — and nothing
//! else: no identification, policy, filtering or audit.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use accord_gateway::TlsFiles;
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

type Body = BoxBody<Bytes, hyper::Error>;

/// A running plain proxy; stops when dropped.
#[derive(Debug)]
pub struct PlainProxy {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for PlainProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the proxy on a free loopback port, forwarding to `upstream`
/// (`host:port`, plain HTTP). Must run inside a Tokio runtime.
pub async fn start(tls: &TlsFiles, upstream: SocketAddr) -> anyhow::Result<PlainProxy> {
    let acceptor = TlsAcceptor::from(accord_gateway::tls::server_config(tls)?);
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);
    let authority = Authority::try_from(upstream.to_string())?;
    let state = Arc::new((client, authority));
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |request| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(forward(&state.0, &state.1, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(PlainProxy { addr, task })
}

async fn forward(
    client: &Client<HttpConnector, Incoming>,
    upstream: &Authority,
    request: Request<Incoming>,
) -> Response<Body> {
    let (mut parts, body) = request.into_parts();
    let mut uri = parts.uri.clone().into_parts();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(upstream.clone());
    let Ok(uri) = Uri::from_parts(uri) else {
        return status(StatusCode::BAD_REQUEST);
    };
    parts.uri = uri;
    parts.headers.remove(http::header::HOST);
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(BodyExt::boxed),
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = code;
    response
}
