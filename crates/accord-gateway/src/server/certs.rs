//! The listener's TLS configuration, swappable without a restart: the server
//! certificate and key and the partner CA bundle are read again on reload
//! (SIGHUP or the admin API). Each new connection takes the configuration
//! in force when it is accepted; established ones keep theirs.

use std::sync::{Arc, RwLock};

use rustls::ServerConfig;

use crate::config::TlsFiles;
use crate::tls::{self, TlsError};

/// The TLS configuration in force and the files it came from.
#[derive(Debug)]
pub struct ServerCerts {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

// === impl ServerCerts ===

impl ServerCerts {
    /// Reads the files once; an error here stops the gateway from starting.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        Ok(ServerCerts {
            files: files.clone(),
            current: RwLock::new(tls::server_config(files)?),
        })
    }

    /// The files the configuration is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The configuration for the next connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reads the certificate, key and client CA bundle again. On error the
    /// configuration in force stays, and the error says which file failed.
    pub fn reload(&self) -> Result<(), TlsError> {
        let new = tls::server_config(&self.files)?;
        match self.current.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        Ok(())
    }
}
