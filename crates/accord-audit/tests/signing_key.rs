//! The signing key lives apart from the log: its own path, never inside
//! the audit directory, readable by its owner only.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use accord_audit::{AuditError, AuditStore};

fn opened(dir: &std::path::Path, key: &std::path::Path) -> Result<(), AuditError> {
    AuditStore::open(dir, key).map(|(store, _)| store.close())
}

#[test]
fn the_audit_directory_never_holds_the_private_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let key = tmp.path().join("keys/audit.key");
    let (store, report) = AuditStore::open(&dir, &key).unwrap();
    assert!(report.key_created);
    store.close();
    let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(tmp.path().join("keys/audit.pub").exists());
    // Only the public half is in the audit directory.
    for entry in walk(&dir) {
        let text = fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains("PRIVATE+KEY"),
            "{} holds the private key",
            entry.display()
        );
    }
    assert!(dir.join("signing.pub").exists());
    // Reopening finds the same key.
    let (store, report) = AuditStore::open(&dir, &key).unwrap();
    assert!(!report.key_created);
    store.close();
}

#[test]
fn a_key_inside_the_audit_directory_is_refused_however_spelled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    fs::create_dir_all(dir.join("sub")).unwrap();
    for inside in [
        dir.join("signing.key"),
        dir.join("sub/../k.key"),
        tmp.path().join("audit/./sub/k.key"),
    ] {
        let err = opened(&dir, &inside).unwrap_err();
        assert!(
            err.to_string().contains("inside the audit directory"),
            "{}: {err}",
            inside.display()
        );
        assert!(!inside.exists(), "nothing is written for a refused key");
    }
    // Through a symbolic link to the audit directory, too.
    std::os::unix::fs::symlink(&dir, tmp.path().join("link")).unwrap();
    let err = opened(&dir, &tmp.path().join("link/k.key")).unwrap_err();
    assert!(
        err.to_string().contains("inside the audit directory"),
        "{err}"
    );
}

#[test]
fn a_key_others_may_read_and_a_key_left_in_the_log_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let key = tmp.path().join("audit.key");
    opened(&dir, &key).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let err = opened(&dir, &key).unwrap_err();
    assert!(err.to_string().contains("mode 644"), "{err}");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    opened(&dir, &key).unwrap();
    // An older version kept `signing.key` in the audit directory.
    fs::copy(&key, dir.join("signing.key")).unwrap();
    let err = opened(&dir, &key).unwrap_err();
    assert!(err.to_string().contains("move it out"), "{err}");
}

#[test]
fn without_a_configured_key_the_store_does_not_open() {
    let tmp = tempfile::tempdir().unwrap();
    let err = AuditStore::open_with(&tmp.path().join("audit"), Default::default()).unwrap_err();
    assert!(err.to_string().contains("signing_key"), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
