//! File-watch reload: polls the policy directory and the TLS files (server
//! certificate, key, partner CA bundle) every `reload.watch_interval` and,
//! when their content changed, runs the same reload SIGHUP and the admin API
//! run: the new policy set or certificates are loaded and checked off the
//! request path and swapped in atomically; a set or file with errors is
//! refused (logged, in `GET /reloads`, counted in the reload metrics) and
//! the last good one stays.
//!
//! A change is seen through each file's size and modification time and
//! confirmed by a SHA-256 of the contents, so touching a file does not
//! reload; the contents are also hashed every `FULL_CHECK_EVERY` polls,
//! so a same-size rewrite within one mtime tick is seen too. Polling rather than
//! inotify: it works the same on every filesystem, including the symlink
//! swaps of Kubernetes ConfigMaps and Secrets.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime};

use ring::digest::{Context, SHA256};

use crate::ops::admin::{AdminState, Trigger};

/// Polls between content hashes of files whose metadata did not change.
const FULL_CHECK_EVERY: u32 = 10;

/// A running watch; stops on [`stop`](Self::stop) or drop.
#[derive(Debug)]
pub struct FileWatch {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FileWatch {
    /// Starts polling every `interval`; `None` when `interval` is zero
    /// (watching disabled).
    pub fn start(state: AdminState, interval: Duration) -> std::io::Result<Option<FileWatch>> {
        if interval.is_zero() {
            return Ok(None);
        }
        let policies_dir = state.policies_dir.clone();
        let tls = state.certs.files().clone();
        let mut policies = Tracked::new(move || files_under(&policies_dir));
        let mut certs =
            Tracked::new(move || vec![tls.cert.clone(), tls.key.clone(), tls.client_ca.clone()]);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("accord-file-watch".into())
            .spawn(move || {
                // Any message, or the sender dropped, stops the watch.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if policies.changed() {
                        tracing::info!("a policy file changed; reloading");
                        let _ = state.reload_policies_by(Trigger::Watch);
                    }
                    if certs.changed() {
                        tracing::info!("a TLS file changed; reloading");
                        let _ = state.reload_tls(Trigger::Watch);
                    }
                }
            })?;
        tracing::info!(
            interval_s = interval.as_secs_f64(),
            "watching policy and TLS files"
        );
        Ok(Some(FileWatch {
            stop: Some(stop),
            thread: Some(thread),
        }))
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Size and modification time of each file, in path order.
type Metadata = Vec<(PathBuf, Option<(u64, SystemTime)>)>;

/// A set of files and what they held when last looked at.
struct Tracked<F> {
    paths: F,
    metadata: Metadata,
    digest: Vec<u8>,
    polls: u32,
}

impl<F: Fn() -> Vec<PathBuf>> Tracked<F> {
    fn new(paths: F) -> Self {
        let metadata = metadata(&paths());
        let digest = digest(&metadata);
        Tracked {
            paths,
            metadata,
            digest,
            polls: 0,
        }
    }

    /// Whether the contents changed since the last call.
    fn changed(&mut self) -> bool {
        let metadata = metadata(&(self.paths)());
        self.polls = self.polls.wrapping_add(1);
        if metadata == self.metadata && !self.polls.is_multiple_of(FULL_CHECK_EVERY) {
            return false;
        }
        let digest = digest(&metadata);
        self.metadata = metadata;
        if digest == self.digest {
            return false;
        }
        self.digest = digest;
        true
    }
}

fn metadata(paths: &[PathBuf]) -> Metadata {
    paths
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path)
                .ok()
                .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
            (path.clone(), meta)
        })
        .collect()
}

/// SHA-256 over every path and its contents (a missing or unreadable file
/// counts as its own state).
fn digest(metadata: &Metadata) -> Vec<u8> {
    let mut context = Context::new(&SHA256);
    for (path, _) in metadata {
        context.update(path.as_os_str().as_encoded_bytes());
        context.update(&[0]);
        match std::fs::read(path) {
            Ok(bytes) => {
                context.update(&(bytes.len() as u64).to_le_bytes());
                context.update(&bytes);
            }
            Err(_) => context.update(b"\xffunreadable"),
        }
    }
    context.finish().as_ref().to_vec()
}

/// Every file under `dir`, recursively, sorted; hidden files and editor
/// backups (`.name`, `name~`) are not policy files.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.ends_with('~') {
                continue;
            }
            let path = entry.path();
            // Follows symlinks (ConfigMap mounts are symlinks to a directory).
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_its_content_not_its_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("agreements")).unwrap();
        let file = dir.path().join("agreements/a.toml");
        std::fs::write(&file, "id = \"a\"\n").unwrap();
        let root = dir.path().to_path_buf();
        let mut tracked = Tracked::new(move || files_under(&root));
        assert!(!tracked.changed());

        // Same content, new mtime: no reload.
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(!tracked.changed());

        // Same size and mtime, other content: seen by the periodic hash.
        std::fs::write(&file, "id = \"b\"\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let seen = (0..FULL_CHECK_EVERY).filter(|_| tracked.changed()).count();
        assert_eq!(seen, 1);
        assert!(!tracked.changed());

        // A new file, and hidden files ignored.
        std::fs::write(dir.path().join(".a.toml.swp"), "x").unwrap();
        assert!(!tracked.changed());
        std::fs::write(dir.path().join("agreements/b.toml"), "id = \"b\"\n").unwrap();
        assert!(tracked.changed());
        std::fs::remove_file(dir.path().join("agreements/b.toml")).unwrap();
        assert!(tracked.changed());
    }
}
