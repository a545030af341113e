//! A partner's view of the gateway: an HTTP/1.1 client over TLS with an
//! optional client certificate, as an EHR or referral platform would use.
//!
//! One connection per request keeps it simple and makes every request a
//! full mTLS handshake, which is what identity tests want. Note that with
//! TLS 1.3 a server rejecting the client certificate does so after the
//! client's handshake has finished, so such a rejection surfaces as
//! [`ClientError::Http`] or [`ClientError::Io`] on the request, not as
//! [`ClientError::Handshake`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Default time allowed for a whole request (connect, handshake, response).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL cannot be used.
    #[error("invalid url `{0}`")]
    InvalidUrl(String),
    /// A certificate or key PEM could not be read.
    #[error("invalid pem: {0}")]
    Pem(String),
    /// The TLS configuration was refused.
    #[error("tls configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A header name or value is not valid HTTP.
    #[error("invalid header `{0}`")]
    InvalidHeader(String),
    /// TCP connect failed.
    #[error("connect to `{addr}`: {source}")]
    Connect {
        /// `host:port` that was dialled.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The TLS handshake failed (e.g. the server certificate is not trusted).
    #[error("tls handshake: {0}")]
    Handshake(io::Error),
    /// HTTP exchange failed (including a server closing the connection after
    /// rejecting the client certificate).
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// Building the request failed.
    #[error("request: {0}")]
    Request(#[from] http::Error),
    /// Other I/O failure.
    #[error("io: {0}")]
    Io(#[from] io::Error),
    /// The request took longer than the client's timeout.
    #[error("request timed out")]
    Timeout,
}

/// A response: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct PartnerResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body bytes.
    pub body: Vec<u8>,
}

/// An HTTPS (or, from [`PartnerClient::plaintext`], plain HTTP) client.
#[derive(Clone)]
pub struct PartnerClient {
    tls: Option<TlsConnector>,
    timeout: Duration,
}

impl std::fmt::Debug for PartnerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerClient")
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The rustls client configuration [`PartnerClient::new`] uses: trusts only
/// the CA(s) in `ca_pem`, presents `identity` (`(cert_pem, key_pem)`) if
/// given, ring provider, safe default protocol versions, ALPN `http/1.1`.
/// Public so tests can drive other HTTP clients with the same identity.
pub fn tls_client_config(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.map_err(|e| ClientError::Pem(e.to_string()))?)?;
    }
    if roots.is_empty() {
        return Err(ClientError::Pem("no CA certificate in pem".into()));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ClientError::Pem(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| ClientError::Pem(e.to_string()))?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

// === impl PartnerClient ===

impl PartnerClient {
    /// A TLS client trusting only the CA(s) in `ca_pem`, presenting
    /// `identity` (`(cert_pem, key_pem)`) as its client certificate if given.
    /// Uses the ring provider and rustls' safe default protocol versions.
    pub fn new(ca_pem: &str, identity: Option<(&str, &str)>) -> Result<Self, ClientError> {
        let config = tls_client_config(ca_pem, identity)?;
        Ok(Self {
            tls: Some(TlsConnector::from(Arc::new(config))),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A client for plain `http://` URLs only (the test FHIR server, admin
    /// endpoints). An `https://` URL is refused.
    pub fn plaintext() -> Self {
        Self {
            tls: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with a different overall request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `GET url` with `X-Purpose-Of-Use: {purpose}` and
    /// `Accept: application/fhir+json`.
    pub async fn get(&self, url: &str, purpose: &str) -> Result<PartnerResponse, ClientError> {
        let headers = [
            ("X-Purpose-Of-Use", purpose),
            ("Accept", "application/fhir+json"),
        ];
        self.send(Method::GET, url, &headers, None).await
    }

    /// Sends one request on a fresh connection and reads the whole response.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<PartnerResponse, ClientError> {
        tokio::time::timeout(self.timeout, self.send_inner(method, url, headers, body))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn send_inner(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<PartnerResponse, ClientError> {
        let invalid = || ClientError::InvalidUrl(url.to_owned());
        let uri: Uri = url.parse().map_err(|_| invalid())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid()),
        };
        if self.tls.is_some() != https {
            let speaks = if self.tls.is_some() { "https" } else { "http" };
            return Err(ClientError::InvalidUrl(format!(
                "{url} (this client speaks {speaks} only)"
            )));
        }
        let authority = uri.authority().ok_or_else(invalid)?.clone();
        // `[::1]` in a URL is `::1` to the resolver and to rustls.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri.path_and_query().map_or("/", |pq| pq.as_str());

        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, authority.as_str());
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ClientError::InvalidHeader((*name).to_owned()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| ClientError::InvalidHeader(name.to_string()))?;
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;

        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|source| ClientError::Connect {
                addr: format!("{host}:{port}"),
                source,
            })?;
        match (&self.tls, https) {
            (Some(tls), true) => {
                let server_name = ServerName::try_from(host.clone()).map_err(|_| invalid())?;
                let stream = tls
                    .connect(server_name, tcp)
                    .await
                    .map_err(ClientError::Handshake)?;
                exchange(stream, request).await
            }
            (None, false) => exchange(tcp, request).await,
            (Some(_), false) | (None, true) => Err(ClientError::InvalidUrl(format!(
                "{url} (this client speaks {} only)",
                if self.tls.is_some() { "https" } else { "http" }
            ))),
        }
    }
}

async fn exchange<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> Result<PartnerResponse, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await;
    let result = match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await?.to_bytes().to_vec();
            Ok(PartnerResponse {
                status,
                headers,
                body,
            })
        }
        Err(e) => Err(ClientError::Http(e)),
    };
    // One request per connection: close it.
    driver.abort();
    result
}

// === impl PartnerResponse ===

impl PartnerResponse {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// One header value as a string, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Writes `bytes` to `addr` over plain TCP and returns whatever comes back
/// before the peer closes or 5 seconds pass, e.g. to check that a TLS port
/// does not answer plain HTTP.
pub async fn send_raw_plaintext(addr: SocketAddr, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(bytes).await?;
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(buffer.get(..n).unwrap_or_default()),
            // A reset after a TLS alert is an answer too.
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Ok(Err(e)) => return Err(e),
        }
    }
    Ok(received)
}

#[cfg(test)]
mod tests;
