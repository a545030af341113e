//! The checkpoint signing key, kept apart from the log.
//!
//! Whoever holds the key can re-sign a rewritten log, so it never lives in
//! the audit directory: an insider with the log's disk alone must not have
//! it. The key file is refused when it lies inside the audit directory
//! (however the path is spelled) and when its mode lets anyone but the
//! owner read it. A new key is made with mode 0600; its public half goes
//! beside it (`<key>.pub`) and, for convenience, into the audit directory
//! as `signing.pub` (auditors keep their own copy).
//!
//! An HSM or KMS would stand where this file stands: the store only needs
//! a [`Signer`] (see `StoreOptions::signer`).

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::AuditError;
use crate::note::Signer;
use crate::store::{KEY_FILE, PUBLIC_KEY_FILE, write_durably};

fn key_err(what: String) -> AuditError {
    AuditError::Key(what)
}

/// `path` with its directory resolved (symlinks, `..`), so that two
/// spellings of one place compare equal. The file itself may not exist.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => resolved(parent).join(name),
        _ => std::env::current_dir().map_or_else(|_| path.to_path_buf(), |d| d.join(path)),
    }
}

/// Refuses a key path inside `audit_dir`, and a key left in the audit
/// directory by an older version.
pub fn check_outside(key: &Path, audit_dir: &Path) -> Result<(), AuditError> {
    let dir = resolved(audit_dir);
    if resolved(key).starts_with(&dir) {
        return Err(key_err(format!(
            "the signing key `{}` lies inside the audit directory `{}`; whoever can read the log could re-sign a rewritten one: keep it elsewhere ([audit] signing_key)",
            key.display(),
            audit_dir.display()
        )));
    }
    if dir.join(KEY_FILE).exists() {
        return Err(key_err(format!(
            "the audit directory holds a signing key (`{}`); move it out of the audit directory (chmod 600) and set [audit] signing_key to where it now is",
            dir.join(KEY_FILE).display()
        )));
    }
    Ok(())
}

/// Loads the key at `path`, which must be outside `audit_dir` and readable
/// by its owner only; makes a new one named after a random origin if there
/// is none. Returns the key and whether it was made.
pub fn load_or_create(path: &Path, audit_dir: &Path) -> Result<(Signer, bool), AuditError> {
    check_outside(path, audit_dir)?;
    let (signer, created) = match load(path) {
        Ok(signer) => (signer, false),
        Err(AuditError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            let mut id = [0u8; 4];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
                .map_err(|_| key_err("system random source failed".into()))?;
            let origin = format!("accord.local/audit/{}", crate::merkle::hex(&id));
            let signer = Signer::generate(&origin).map_err(|e| key_err(e.to_string()))?;
            write_key_pair(path, &signer)?;
            (signer, true)
        }
        Err(e) => return Err(e),
    };
    publish(audit_dir, &signer)?;
    Ok((signer, created))
}

/// Reads the key at `path`, refusing a file others may read.
pub fn load(path: &Path) -> Result<Signer, AuditError> {
    let meta = fs::metadata(path).map_err(|e| AuditError::io("read signing key", e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_err(format!(
            "`{}` has mode {mode:03o}; a signing key must be readable by its owner only (chmod 600)",
            path.display()
        )));
    }
    let text = fs::read_to_string(path).map_err(|e| AuditError::io("read signing key", e))?;
    Signer::parse(&text).map_err(|e| key_err(format!("`{}`: {e}", path.display())))
}

/// The public key's file beside the private key: `signing.key` →
/// `signing.pub`.
pub fn public_path(key: &Path) -> PathBuf {
    key.with_extension("pub")
}

/// Writes the private key at `path` (0600, never overwritten) and its
/// public key beside it.
pub fn write_key_pair(path: &Path, signer: &Signer) -> Result<(), AuditError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| AuditError::io("create key directory", e))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AuditError::io("create signing key", e))?;
    writeln!(file, "{}", signer.encode())
        .and_then(|()| file.sync_all())
        .map_err(|e| AuditError::io("write signing key", e))?;
    write_durably(
        &public_path(path),
        format!("{}\n", signer.verifier().encode()).as_bytes(),
    )
}

/// Puts the public key into the audit directory (`signing.pub`) when it is
/// missing or different.
pub(crate) fn publish(audit_dir: &Path, signer: &Signer) -> Result<(), AuditError> {
    let text = format!("{}\n", signer.verifier().encode());
    let path = audit_dir.join(PUBLIC_KEY_FILE);
    if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        write_durably(&path, text.as_bytes())?;
    }
    Ok(())
}
