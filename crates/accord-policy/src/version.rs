//! The policy set version: a SHA-256 over every source file, so an audit
//! record can name exactly the rules in force.

use std::fmt;

use crate::source::SourceFile;

/// `sha256:<hex>` of the policy sources (names and texts, in load order).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyVersion(std::sync::Arc<str>);

// === impl PolicyVersion ===

impl PolicyVersion {
    pub fn of<'a>(sources: impl IntoIterator<Item = &'a SourceFile>) -> Self {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for source in sources {
            // The file name without its folder, so the same files hash the
            // same wherever they are checked out.
            let name = std::path::Path::new(&source.name)
                .file_name()
                .map_or_else(|| source.name.clone(), |n| n.to_string_lossy().into_owned());
            for part in [name.as_bytes(), source.text.as_bytes()] {
                ctx.update(&(part.len() as u64).to_be_bytes());
                ctx.update(part);
            }
        }
        let hex: String = ctx
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        PolicyVersion(std::sync::Arc::from(format!("sha256:{hex}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for people.
    pub fn short(&self) -> &str {
        self.0.get(7..19).unwrap_or(&self.0)
    }
}

impl serde::Serialize for PolicyVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
