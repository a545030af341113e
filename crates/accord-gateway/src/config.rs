//! Gateway configuration: every setting has a safe default (TLS on, client
//! certificates required, fail closed, small limits).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use audit::{AuditConfig, WitnessConfig};
pub use consent_feed::ConsentFeedConfig;

mod audit;
mod consent_feed;

/// The `[gateway]` part of accord.toml.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address the partner-facing TLS listener binds.
    pub listen: SocketAddr,
    /// The FHIR base path partners use, e.g. `/fhir`.
    pub base_path: String,
    /// The gateway's FHIR base as partners reach it; links and `Location`
    /// headers are rewritten to it. Default: `https://localhost:{port}{base_path}`.
    pub public_url: Option<String>,
    /// Upstream FHIR base URL (`http://` or `https://`).
    pub upstream_url: String,
    /// Other bases the upstream writes into its own URLs (links, `fullUrl`,
    /// `Location`), e.g. the public name a server was configured with when
    /// the gateway reaches it by another. Rewritten like `upstream_url`.
    pub upstream_aliases: Vec<String>,
    /// CA bundle to trust for an `https://` upstream instead of the system
    /// roots.
    pub upstream_ca: Option<PathBuf>,
    /// The partner (policies/partners.toml id) whose FHIR server the
    /// upstream is: every resource read from it is that member's record.
    /// Unset: a shared server, where each resource's source is read from
    /// the resource (`meta.source`, its organization elements, its
    /// Encounter; see policies/README.md).
    pub upstream_owner: Option<String>,
    /// One FHIR server per member (`[[gateway.upstreams]]`): searches fan
    /// out over them and merge, reads go to the server that holds the id,
    /// each server's resources are its owner's records. When set,
    /// `upstream_url` and `upstream_owner` are not used; the first member's
    /// server answers the gateway's own lookups (referrals, consents).
    pub upstreams: Vec<MemberUpstream>,
    pub tls: TlsFiles,
    pub limits: Limits,
    /// Patients' Consent resources pulled from the upstream server.
    pub consent_feed: ConsentFeedConfig,
    /// Directory for the gateway's own state (volume-cap counters, sled).
    /// `accord serve` defaults it to `<audit dir>/gateway-state`; without
    /// one, counters are kept in memory and a restart resets them.
    pub state_dir: Option<PathBuf>,
}

/// One member's FHIR server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemberUpstream {
    /// The member (partner id in policies/partners.toml) whose server it is.
    pub owner: String,
    /// Its FHIR base URL.
    pub url: String,
    /// CA bundle for an `https://` server, if not a system root.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Other bases the server writes into its own URLs.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// PEM files for the partner-facing listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Server private key.
    pub key: PathBuf,
    /// CA certificates partner client certificates must chain to.
    pub client_ca: PathBuf,
}

/// Bounds on what a partner may send and how long anything may take.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
    /// Largest total size of request headers (bytes).
    pub max_header_bytes: usize,
    /// Most header lines a request may carry. The HTTP parser's own table
    /// holds four times as many, so a request over this limit still reaches
    /// the gateway and gets an OperationOutcome and an audit record.
    pub max_headers: usize,
    /// Largest upstream response body accepted (bytes).
    pub max_upstream_body_bytes: usize,
    /// Time allowed for a TLS handshake.
    #[serde(with = "seconds")]
    pub handshake_timeout: Duration,
    /// Time allowed for a client to send its request headers.
    #[serde(with = "seconds")]
    pub header_read_timeout: Duration,
    /// Time allowed for the upstream to answer, body included.
    #[serde(with = "seconds")]
    pub upstream_timeout: Duration,
    /// Time allowed for a client to send its whole request body once the
    /// headers are in: a body trickled a byte at a time would otherwise
    /// hold a connection (and a slot of `max_connections`) for ever.
    #[serde(with = "seconds")]
    pub body_read_timeout: Duration,
    /// Connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// Connections one partner may hold at once (clients without a partner
    /// certificate share one such allowance). A connection over it is
    /// closed after its TLS handshake, so one partner's slow connections
    /// cannot take every one of `max_connections`.
    pub max_connections_per_partner: usize,
}

// === impl GatewayConfig ===

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            base_path: "/fhir".to_owned(),
            public_url: None,
            upstream_url: "http://127.0.0.1:8080/fhir".to_owned(),
            upstream_aliases: Vec::new(),
            upstream_ca: None,
            upstream_owner: None,
            upstreams: Vec::new(),
            tls: TlsFiles::default(),
            limits: Limits::default(),
            consent_feed: ConsentFeedConfig::default(),
            state_dir: None,
        }
    }
}

impl GatewayConfig {
    /// The base path without a trailing slash (`""` for the root).
    pub fn normalized_base_path(&self) -> String {
        let trimmed = self.base_path.trim_end_matches('/');
        if trimmed.is_empty() || trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        }
    }

    /// The public FHIR base for a listener bound to `bound`.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!(
                "https://localhost:{}{}",
                bound.port(),
                self.normalized_base_path()
            ),
        }
    }
}

impl Default for TlsFiles {
    fn default() -> Self {
        TlsFiles {
            cert: PathBuf::from("tls/server.pem"),
            key: PathBuf::from("tls/server.key"),
            client_ca: PathBuf::from("tls/client-ca.pem"),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 * 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_upstream_body_bytes: 64 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            upstream_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_partner: 128,
        }
    }
}

/// Durations in configuration files are written as seconds (may be
/// fractional: `0.5`).
pub(crate) mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// The whole `accord.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccordConfig {
    pub gateway: GatewayConfig,
    pub policies: PoliciesConfig,
    pub audit: AuditConfig,
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub reload: ReloadConfig,
}

/// Reloading without a signal.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// How often the policy directory and the TLS files are checked for
    /// changes (seconds); a change reloads them as SIGHUP does. `0` turns
    /// the watch off.
    #[serde(with = "seconds")]
    pub watch_interval: Duration,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            watch_interval: Duration::from_secs(1),
        }
    }
}

/// The operators' listener: health, readiness, metrics, reloads. Off the
/// partner port; loopback unless told otherwise.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Serve the admin listener. Off unless asked for, so two gateways on
    /// one host (or a test run) never fight over its port.
    pub enabled: bool,
    /// Address of the admin listener (plain HTTP: keep it on loopback or a
    /// private network).
    pub listen: SocketAddr,
    /// File holding the bearer token admin requests must present. Without
    /// it every authenticated endpoint answers 401.
    pub token_file: Option<PathBuf>,
    /// `/healthz` and `/readyz` answer without a token (they reveal only
    /// whether the gateway is up and ready), so probes need no secret.
    pub open_probes: bool,
}

/// Where the policy files are.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoliciesConfig {
    pub dir: PathBuf,
}

/// Log output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `accord_gateway=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// accord.toml could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

// === impl AccordConfig ===

impl AccordConfig {
    /// Reads `path`; relative paths inside it are taken relative to the
    /// file's directory, so a deployment directory can be moved as a whole.
    pub fn load(path: &std::path::Path) -> Result<AccordConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|(offset, message)| {
            let before = text.get(..offset).unwrap_or(&text);
            ConfigError::Invalid {
                path: path.display().to_string(),
                line: before.matches('\n').count() + 1,
                column: before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1,
                message,
            }
        })?;
        let base = path.parent().unwrap_or_else(|| std::path::Path::new("."));
        config.resolve_relative_to(base);
        Ok(config)
    }

    /// Parses TOML text; on error, the byte offset and message.
    pub fn parse(text: &str) -> Result<AccordConfig, (usize, String)> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let offset = e.span().map_or(0, |s| s.start);
            (
                offset,
                e.message()
                    .lines()
                    .next()
                    .unwrap_or("invalid TOML")
                    .to_owned(),
            )
        })
    }

    /// Makes every relative path absolute against `base`.
    pub fn resolve_relative_to(&mut self, base: &std::path::Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.gateway.tls.cert);
        resolve(&mut self.gateway.tls.key);
        resolve(&mut self.gateway.tls.client_ca);
        if let Some(ca) = self.gateway.upstream_ca.as_mut() {
            resolve(ca);
        }
        for member in &mut self.gateway.upstreams {
            if let Some(ca) = member.ca.as_mut() {
                resolve(ca);
            }
        }
        resolve(&mut self.policies.dir);
        resolve(&mut self.audit.dir);
        resolve(&mut self.audit.signing_key);
        if let Some(token) = self.admin.token_file.as_mut() {
            resolve(token);
        }
    }
}

impl Default for PoliciesConfig {
    fn default() -> Self {
        PoliciesConfig {
            dir: PathBuf::from("policies"),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9443)),
            token_file: None,
            open_probes: true,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_safe_defaults() {
        let config = AccordConfig::parse("").unwrap();
        assert_eq!(
            config.gateway.listen.ip().to_string(),
            "127.0.0.1",
            "loopback unless told otherwise"
        );
        assert_eq!(config.gateway.limits.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(config.gateway.normalized_base_path(), "/fhir");
    }

    #[test]
    fn misspelled_keys_are_refused_with_a_position() {
        let err = AccordConfig::parse("[gateway]\nlisten = \"0.0.0.0:1\"\nupstream = \"x\"\n")
            .unwrap_err();
        assert!(err.1.contains("unknown field `upstream`"), "{err:?}");
        assert_eq!(err.0, 31, "the start of line 3");
    }

    #[test]
    fn durations_are_seconds_and_paths_resolve_against_the_file() {
        let mut config = AccordConfig::parse(
            "[gateway.limits]\nupstream_timeout = 2.5\n[gateway.tls]\ncert = \"c.pem\"\nkey = \"/abs/k.pem\"\nclient_ca = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            config.gateway.limits.upstream_timeout,
            Duration::from_millis(2500)
        );
        config.resolve_relative_to(std::path::Path::new("/etc/accord"));
        assert_eq!(config.gateway.tls.cert, PathBuf::from("/etc/accord/c.pem"));
        assert_eq!(config.gateway.tls.key, PathBuf::from("/abs/k.pem"));
        assert_eq!(config.audit.dir, PathBuf::from("/etc/accord/audit"));
        assert_eq!(
            config.audit.signing_key,
            PathBuf::from("/etc/accord/signing.key"),
            "the key's default lies beside the audit directory, not in it"
        );
    }
}
