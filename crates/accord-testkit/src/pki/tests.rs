use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;
use crate::client::tls_client_config;

/// A server config for `pki.server`, requiring a client certificate from the dev CA.
pub(crate) fn tls_server_config(pki: &DevPki) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_cert_pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let chain = vec![CertificateDer::from_pem_slice(pki.server.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server.key_pem.as_bytes()).unwrap();
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap()
}

/// Common name of the first peer certificate a server connection saw.
pub(crate) fn peer_common_name(certs: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let der = certs?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cn)
}

/// Handshakes in memory; returns the CN the server saw or the server's error.
async fn handshake(
    pki: &DevPki,
    client: Option<&CertifiedKeyPem>,
    server_name: &str,
) -> Result<String, String> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = TlsAcceptor::from(Arc::new(tls_server_config(pki)));
    let server = tokio::spawn(async move {
        let mut tls = acceptor
            .accept(server_io)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        peer_common_name(tls.get_ref().1.peer_certificates()).ok_or_else(|| "no cn".to_owned())
    });
    let identity = client.map(|c| (c.cert_pem.as_str(), c.key_pem.as_str()));
    let config = tls_client_config(&pki.ca_cert_pem, identity).unwrap();
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    // With TLS 1.3 the client may finish before the server rejects it, so
    // the server's verdict is the one that counts.
    if let Ok(mut tls) = connector.connect(name, client_io).await {
        let _ = tls.write_all(b"ping").await;
        let _ = tls.flush().await;
        let result = server.await.unwrap();
        drop(tls);
        return result;
    }
    match server.await.unwrap() {
        Ok(cn) => Err(format!("client failed but server accepted {cn}")),
        Err(e) => Err(e),
    }
}

fn pki() -> DevPki {
    DevPki::generate(
        &["localhost", "127.0.0.1"],
        &["maple-primary", "riverside-bh"],
    )
    .unwrap()
}

#[test]
fn pins_are_sha256_of_the_certificates_spki() {
    let pki = pki();
    let pins: Vec<&str> = pki
        .clients
        .values()
        .map(|c| c.spki_sha256_hex.as_str())
        .collect();
    assert_eq!(pins.len(), 2);
    assert_ne!(pins[0], pins[1]);
    for c in pki.clients.values().chain([&pki.server]) {
        assert_eq!(c.spki_sha256_hex.len(), 64);
        assert!(
            c.spki_sha256_hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        // rcgen's SPKI DER is exactly what x509-parser finds in the cert.
        assert_eq!(
            spki_sha256_hex_from_cert_pem(&c.cert_pem).unwrap(),
            c.spki_sha256_hex
        );
    }
    assert_ne!(pki.server.spki_sha256_hex, pins[0]);
}

#[test]
fn certificates_have_the_right_shape() {
    let pki = pki();
    let parse = |pem: &str| {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        (
            cert.is_ca(),
            cert.subject().to_string(),
            cert.issuer().to_string(),
            cert.extended_key_usage()
                .unwrap()
                .map(|e| (e.value.server_auth, e.value.client_auth)),
        )
    };
    let (ca, subject, _, _) = parse(&pki.ca_cert_pem);
    assert!(ca && subject.contains(CA_COMMON_NAME));
    let (ca, _, issuer, eku) = parse(&pki.server.cert_pem);
    assert!(!ca && issuer.contains(CA_COMMON_NAME));
    assert_eq!(eku, Some((true, false)));
    let (ca, subject, _, eku) = parse(&pki.clients["maple-primary"].cert_pem);
    assert!(!ca && subject.contains("CN=maple-primary"));
    assert_eq!(eku, Some((false, true)));
    assert!(matches!(
        DevPki::generate(&["localhost"], &["../etc"]),
        Err(PkiError::InvalidName(_))
    ));
}

#[tokio::test]
async fn trusted_client_completes_mutual_tls() {
    let pki = pki();
    let maple = &pki.clients["maple-primary"];
    assert_eq!(
        handshake(&pki, Some(maple), "localhost").await.unwrap(),
        "maple-primary"
    );
    assert_eq!(
        handshake(&pki, Some(maple), "127.0.0.1").await.unwrap(),
        "maple-primary"
    );
}

#[tokio::test]
async fn missing_or_untrusted_client_is_refused() {
    let pki = pki();
    assert!(handshake(&pki, None, "localhost").await.is_err());
    let rogue = DevPki::generate_untrusted_client("maple-primary").unwrap();
    assert_ne!(
        rogue.spki_sha256_hex,
        pki.clients["maple-primary"].spki_sha256_hex
    );
    let err = handshake(&pki, Some(&rogue), "localhost")
        .await
        .unwrap_err();
    assert!(err.to_lowercase().contains("cert"), "{err}");
    // Another dev PKI's client is just as unknown.
    let other = DevPki::generate(&["localhost"], &["maple-primary"]).unwrap();
    assert!(
        handshake(&pki, Some(&other.clients["maple-primary"]), "localhost")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn server_name_must_match() {
    let pki = pki();
    let maple = &pki.clients["maple-primary"];
    assert!(
        handshake(&pki, Some(maple), "gateway.example.org")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn issued_later_clients_verify_and_files_round_trip() {
    let mut pki = pki();
    let pin = pki
        .issue_client("st-brigid")
        .unwrap()
        .spki_sha256_hex
        .clone();
    assert_eq!(
        handshake(&pki, Some(&pki.clients["st-brigid"]), "localhost")
            .await
            .unwrap(),
        "st-brigid"
    );
    let dir = tempfile::tempdir().unwrap();
    pki.write_to(dir.path()).unwrap();
    assert!(dir.path().join("clients/st-brigid.key").exists());
    let loaded = DevPki::load_from(dir.path()).unwrap();
    assert_eq!(loaded, pki);
    assert_eq!(loaded.clients["st-brigid"].spki_sha256_hex, pin);
}
