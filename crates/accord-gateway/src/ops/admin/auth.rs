//! Admin authentication: a bearer token read from a file, compared in
//! constant time.

use std::path::{Path, PathBuf};

use http::HeaderMap;
use ring::digest::{SHA256, digest};

/// Tokens shorter than this are refused at start: they can be guessed.
const MIN_TOKEN_LEN: usize = 16;

/// The admin bearer token (only its SHA-256 is kept).
#[derive(Clone)]
pub struct AdminToken {
    sha256: [u8; 32],
}

/// The token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("admin token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin token file {path}: the token must be at least {MIN_TOKEN_LEN} characters")]
    TooShort { path: PathBuf },
}

// === impl AdminToken ===

impl AdminToken {
    /// Reads the token: the file's content without surrounding whitespace.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?;
        let token = text.trim();
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort {
                path: path.to_owned(),
            });
        }
        Ok(Self::new(token))
    }

    pub fn new(token: &str) -> Self {
        AdminToken {
            sha256: sha256(token.as_bytes()),
        }
    }

    /// Compares hashes, so neither the length nor the content of the
    /// presented token shapes the comparison time.
    fn matches(&self, presented: &[u8]) -> bool {
        #[expect(
            deprecated,
            reason = "ring 0.17 keeps verify_slices_are_equal as its constant-time comparison"
        )]
        let equal = ring::constant_time::verify_slices_are_equal(&self.sha256, &sha256(presented));
        equal.is_ok()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// `Authorization: Bearer <token>` matching `token`. No token configured:
/// nobody is authorized.
pub(crate) fn authorized(token: Option<&AdminToken>, headers: &HeaderMap) -> bool {
    let Some(token) = token else {
        return false;
    };
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|presented| token.matches(presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let token = AdminToken::new("0123456789abcdef-secret");
        let mut headers = HeaderMap::new();
        assert!(!authorized(Some(&token), &headers));
        headers.insert(
            http::header::AUTHORIZATION,
            "Bearer 0123456789abcdef-secret".parse().unwrap(),
        );
        assert!(authorized(Some(&token), &headers));
        assert!(!authorized(None, &headers), "no token file: fail closed");
        headers.insert(
            http::header::AUTHORIZATION,
            "Bearer 0123456789abcdef-secreT".parse().unwrap(),
        );
        assert!(!authorized(Some(&token), &headers));
    }
}
