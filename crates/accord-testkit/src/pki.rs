//! A throwaway development PKI: one CA, a server certificate, client
//! certificates per partner, and SPKI pins.
//!
//! Keys are ECDSA P-256, made with rcgen on the ring backend. The pin of a
//! certificate is the lowercase hex SHA-256 of its DER SubjectPublicKeyInfo,
//! the same bytes the gateway hashes (x509-parser `subject_pki.raw`).
//!
//! "Unknown certificate" tests use [`DevPki::generate_untrusted_client`]: a
//! client certificate issued by a *fresh* CA that has the same subject name
//! as the dev CA but a different key, so only a real signature check can
//! tell it apart.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs;
use std::io;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};

/// Subject common name of the dev CA.
pub const CA_COMMON_NAME: &str = "Accord Dev CA";

/// Why a PKI could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused the parameters or failed to sign.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A name is not usable as a certificate name / file name.
    #[error("invalid name `{0}`: use letters, digits, `.`, `-`, `_`")]
    InvalidName(String),
    /// A PEM certificate could not be parsed.
    #[error("invalid certificate pem: {0}")]
    InvalidCertificate(String),
}

/// A certificate, its private key and its SPKI pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedKeyPem {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
    /// Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo (64 chars).
    pub spki_sha256_hex: String,
}

/// A dev CA with the certificates it issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPki {
    /// The CA certificate, PEM: the trust root for both sides.
    pub ca_cert_pem: String,
    /// The CA private key, PEM (dev only: lets tests issue more clients).
    pub ca_key_pem: String,
    /// The server certificate (serverAuth; SANs as given).
    pub server: CertifiedKeyPem,
    /// Client certificates by name (CN = name, clientAuth).
    pub clients: BTreeMap<String, CertifiedKeyPem>,
}

/// Lowercase hex SHA-256 of the SubjectPublicKeyInfo of a PEM certificate
/// (the first certificate in `cert_pem`).
pub fn spki_sha256_hex_from_cert_pem(cert_pem: &str) -> Result<String, PkiError> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| PkiError::InvalidCertificate(e.to_string()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| PkiError::InvalidCertificate(e.to_string()))?;
    Ok(sha256_hex(cert.tbs_certificate.subject_pki.raw))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Names end up in file names and CNs: keep them boring.
fn check_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(PkiError::InvalidName(name.to_owned()))
    }
}

/// Validity: from yesterday (clock skew) for ten years.
fn validity(params: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
}

fn ca_params() -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, "Accord development");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params);
    Ok(params)
}

/// A new CA: its certificate PEM and its key.
fn new_ca() -> Result<(String, KeyPair), PkiError> {
    let key = KeyPair::generate()?;
    let cert = ca_params()?.self_signed(&key)?;
    Ok((cert.pem(), key))
}

fn issue(
    params: CertificateParams,
    issuer: &Issuer<'_, &KeyPair>,
) -> Result<CertifiedKeyPem, PkiError> {
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok(CertifiedKeyPem {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        spki_sha256_hex: sha256_hex(&key.subject_public_key_info()),
    })
}

fn server_params(names: &[&str]) -> Result<CertificateParams, PkiError> {
    let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(sans)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("localhost"),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params);
    Ok(params)
}

fn client_params(name: &str) -> Result<CertificateParams, PkiError> {
    check_name(name)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params);
    Ok(params)
}

// === impl DevPki ===

impl DevPki {
    /// A new CA, a server certificate valid for `server_names` (DNS names,
    /// or IP addresses as IP SANs; e.g. `["localhost", "127.0.0.1"]`) and one
    /// client certificate per name in `client_names`.
    pub fn generate(server_names: &[&str], client_names: &[&str]) -> Result<DevPki, PkiError> {
        let (ca_cert_pem, ca_key) = new_ca()?;
        let ca = ca_params()?;
        let issuer = Issuer::from_params(&ca, &ca_key);
        let server = issue(server_params(server_names)?, &issuer)?;
        let mut clients = BTreeMap::new();
        for name in client_names {
            clients.insert((*name).to_owned(), issue(client_params(name)?, &issuer)?);
        }
        Ok(DevPki {
            ca_cert_pem,
            ca_key_pem: ca_key.serialize_pem(),
            server,
            clients,
        })
    }

    /// Issues (or replaces) a client certificate from this CA, e.g. to
    /// onboard a partner mid-test. Returns the new certificate.
    pub fn issue_client(&mut self, name: &str) -> Result<&CertifiedKeyPem, PkiError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        // The issuer needs only the CA's name and key; the name is fixed.
        let ca = ca_params()?;
        let issuer = Issuer::from_params(&ca, &ca_key);
        let issued = issue(client_params(name)?, &issuer)?;
        Ok(match self.clients.entry(name.to_owned()) {
            Entry::Occupied(mut slot) => {
                slot.insert(issued);
                slot.into_mut()
            }
            Entry::Vacant(slot) => slot.insert(issued),
        })
    }

    /// A client certificate named `name` issued by a throwaway CA that has
    /// the dev CA's subject name but another key: it must be refused.
    pub fn generate_untrusted_client(name: &str) -> Result<CertifiedKeyPem, PkiError> {
        let (_, rogue_key) = new_ca()?;
        let ca = ca_params()?;
        let issuer = Issuer::from_params(&ca, &rogue_key);
        issue(client_params(name)?, &issuer)
    }

    /// Writes `ca.pem`, `ca.key`, `server.pem`, `server.key`,
    /// `clients/<name>.pem` and `clients/<name>.key` under `dir`.
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        let clients = dir.join("clients");
        fs::create_dir_all(&clients)?;
        fs::write(dir.join("ca.pem"), &self.ca_cert_pem)?;
        write_key(&dir.join("ca.key"), &self.ca_key_pem)?;
        fs::write(dir.join("server.pem"), &self.server.cert_pem)?;
        write_key(&dir.join("server.key"), &self.server.key_pem)?;
        for (name, client) in &self.clients {
            fs::write(clients.join(format!("{name}.pem")), &client.cert_pem)?;
            write_key(&clients.join(format!("{name}.key")), &client.key_pem)?;
        }
        Ok(())
    }

    /// Reads what [`write_to`](Self::write_to) wrote, recomputing the pins
    /// from the certificates.
    pub fn load_from(dir: &Path) -> io::Result<DevPki> {
        let load = |cert: &Path, key: &Path| -> io::Result<CertifiedKeyPem> {
            let cert_pem = fs::read_to_string(cert)?;
            let spki_sha256_hex = spki_sha256_hex_from_cert_pem(&cert_pem).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", cert.display()),
                )
            })?;
            Ok(CertifiedKeyPem {
                cert_pem,
                key_pem: fs::read_to_string(key)?,
                spki_sha256_hex,
            })
        };
        let mut clients = BTreeMap::new();
        let mut entries: Vec<_> = fs::read_dir(dir.join("clients"))?
            .collect::<io::Result<Vec<_>>>()?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pem"))
            .collect();
        entries.sort();
        for cert in entries {
            let Some(name) = cert.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            let key = cert.with_extension("key");
            clients.insert(name, load(&cert, &key)?);
        }
        Ok(DevPki {
            ca_cert_pem: fs::read_to_string(dir.join("ca.pem"))?,
            ca_key_pem: fs::read_to_string(dir.join("ca.key"))?,
            server: load(&dir.join("server.pem"), &dir.join("server.key"))?,
            clients,
        })
    }
}

/// Writes a private key readable by its owner only (on Unix).
fn write_key(path: &Path, pem: &str) -> io::Result<()> {
    fs::write(path, pem)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
