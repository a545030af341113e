use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::pki::DevPki;
use crate::pki::tests::{peer_common_name, tls_server_config};

/// A TLS echo server requiring a dev-CA client certificate; replies with
/// what it saw as JSON.
async fn echo_server(pki: &DevPki) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let acceptor = TlsAcceptor::from(Arc::new(tls_server_config(pki)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let cn = peer_common_name(tls.get_ref().1.peer_certificates());
                let service = service_fn(move |req: Request<Incoming>| {
                    let cn = cn.clone();
                    async move {
                        let header =
                            |n: &str| req.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
                        let (purpose, accept, host) =
                            (header("x-purpose-of-use"), header("accept"), header("host"));
                        let method = req.method().to_string();
                        let path = req.uri().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let reply = json!({
                            "cn": cn, "purpose": purpose, "accept": accept, "host": host,
                            "method": method, "path": path, "body": String::from_utf8_lossy(&body),
                        });
                        let mut response = Response::new(Full::new(Bytes::from(reply.to_string())));
                        response
                            .headers_mut()
                            .insert("x-echo", "yes".parse().unwrap());
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, task)
}

fn pki() -> DevPki {
    DevPki::generate(&["localhost", "127.0.0.1"], &["maple-primary"]).unwrap()
}

fn client(pki: &DevPki) -> PartnerClient {
    let maple = &pki.clients["maple-primary"];
    PartnerClient::new(&pki.ca_cert_pem, Some((&maple.cert_pem, &maple.key_pem))).unwrap()
}

#[tokio::test]
async fn get_sends_purpose_and_accept_over_mtls() {
    let pki = pki();
    let (addr, _server) = echo_server(&pki).await;
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}/fhir/Patient?_id=pat-0001", addr.port());
        let response = client(&pki).get(&url, "TREAT").await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("x-echo"), Some("yes"));
        let seen = response.json().unwrap();
        assert_eq!(seen["cn"], "maple-primary");
        assert_eq!(seen["purpose"], "TREAT");
        assert_eq!(seen["accept"], "application/fhir+json");
        assert_eq!(seen["path"], "/fhir/Patient?_id=pat-0001");
        assert_eq!(seen["host"], format!("{host}:{}", addr.port()));
    }
}

#[tokio::test]
async fn send_carries_method_headers_and_body() {
    let pki = pki();
    let (addr, _server) = echo_server(&pki).await;
    let url = format!("https://127.0.0.1:{}/fhir/Task", addr.port());
    let response = client(&pki)
        .send(
            Method::POST,
            &url,
            &[("X-Purpose-Of-Use", "TREAT")],
            Some(b"{\"a\":1}".to_vec()),
        )
        .await
        .unwrap();
    let seen = response.json().unwrap();
    assert_eq!(
        (seen["method"].as_str(), seen["body"].as_str()),
        (Some("POST"), Some("{\"a\":1}"))
    );
    assert!(matches!(
        client(&pki)
            .send(Method::GET, &url, &[("bad header", "x")], None)
            .await,
        Err(ClientError::InvalidHeader(_))
    ));
}

#[tokio::test]
async fn refused_without_a_trusted_certificate() {
    let pki = pki();
    let (addr, _server) = echo_server(&pki).await;
    let url = format!("https://127.0.0.1:{}/fhir/metadata", addr.port());
    let anonymous = PartnerClient::new(&pki.ca_cert_pem, None).unwrap();
    assert!(anonymous.get(&url, "TREAT").await.is_err());
    let rogue = DevPki::generate_untrusted_client("maple-primary").unwrap();
    let rogue =
        PartnerClient::new(&pki.ca_cert_pem, Some((&rogue.cert_pem, &rogue.key_pem))).unwrap();
    assert!(rogue.get(&url, "TREAT").await.is_err());
    // A client that does not trust the server's CA fails its own handshake.
    let other = DevPki::generate(&["localhost"], &[]).unwrap();
    let distrustful = PartnerClient::new(&other.ca_cert_pem, None).unwrap();
    assert!(matches!(
        distrustful.get(&url, "TREAT").await,
        Err(ClientError::Handshake(_))
    ));
}

#[tokio::test]
async fn plaintext_to_a_tls_port_gets_no_http() {
    let pki = pki();
    let (addr, _server) = echo_server(&pki).await;
    let reply = send_raw_plaintext(addr, b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        !reply.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

#[tokio::test]
async fn scheme_and_url_errors() {
    let pki = pki();
    assert!(matches!(
        client(&pki).get("http://127.0.0.1:1/", "TREAT").await,
        Err(ClientError::InvalidUrl(_))
    ));
    assert!(matches!(
        PartnerClient::plaintext()
            .get("https://127.0.0.1:1/", "TREAT")
            .await,
        Err(ClientError::InvalidUrl(_))
    ));
    assert!(matches!(
        client(&pki).get("not a url", "TREAT").await,
        Err(ClientError::InvalidUrl(_))
    ));
    assert!(matches!(
        PartnerClient::plaintext()
            .get("http://127.0.0.1:1/", "TREAT")
            .await,
        Err(ClientError::Connect { .. })
    ));
    assert!(matches!(
        PartnerClient::new("garbage", None),
        Err(ClientError::Pem(_))
    ));
}
