//! The per-deployment secret that turns patient references into index keys.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

use ring::hmac;

use super::{INDEX_KEY_FILE, IndexError, io_err};

/// The deployment's secret for patient keys.
#[derive(Debug)]
pub struct PatientKey(hmac::Key);

impl PatientKey {
    pub fn from_bytes(secret: &[u8]) -> Self {
        PatientKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// Loads `dir/index.key`, creating it (32 random bytes, hex, mode 0600)
    /// on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, IndexError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = dir.join(INDEX_KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => decode_hex(text.trim())
                .filter(|b| b.len() >= 32)
                .map(|b| PatientKey::from_bytes(&b))
                .ok_or_else(|| IndexError::Key(format!("{} is not 32+ hex bytes", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut secret = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
                    .map_err(|_| IndexError::Key("system random source failed".into()))?;
                let created = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path);
                match created {
                    Ok(mut file) => {
                        writeln!(file, "{}", crate::merkle::hex(&secret))
                            .and_then(|()| file.sync_all())
                            .map_err(io_err("write index key"))?;
                        crate::store::sync_dir(dir);
                        Ok(PatientKey::from_bytes(&secret))
                    }
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        PatientKey::load_or_create(dir)
                    }
                    Err(e) => Err(io_err("create index key")(e)),
                }
            }
            Err(e) => Err(io_err("read index key")(e)),
        }
    }

    pub fn tag(&self, patient: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.0, patient.as_bytes()).as_ref());
        out
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u32> = text
        .chars()
        .map(|c| c.to_digit(16))
        .collect::<Option<_>>()?;
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| match p {
            [hi, lo] => u8::try_from(hi * 16 + lo).ok(),
            _ => None,
        })
        .collect()
}
