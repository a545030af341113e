//! Witness cosignatures (C2SP tlog-cosignature, `cosignature/v1`, Ed25519).
//!
//! A cosignature is a note signature line a witness adds to a checkpoint:
//! `— <witness name> base64(key id ‖ timestamp u64be ‖ signature)`, where
//! the signature covers
//!
//! ```text
//! cosignature/v1
//! time <timestamp>
//! <the checkpoint's note body>
//! ```
//!
//! and key id = SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)\[:4\]. It says: as
//! of that time, this is the largest tree the witness has seen for the log,
//! and it is consistent with every tree it saw before.
//!
//! Keys are written like signed-note keys with type byte 0x04: the public
//! key `name+hexid+base64(0x04‖public)`, the private key
//! `PRIVATE+KEY+name+hexid+base64(0x04‖seed)`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::merkle::hex;
use crate::note::{Checkpoint, NoteError, key_id_for, split_key_for, valid_name};

/// The key type byte of an Ed25519 `cosignature/v1` key.
const ALG_COSIGNATURE_V1: u8 = 0x04;

/// A witness's private cosigning key.
pub struct Cosigner {
    name: String,
    id: [u8; 4],
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

/// A witness's public key: what a log and its auditors configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureKey {
    name: String,
    id: [u8; 4],
    public: Vec<u8>,
}

/// The signed message of a `cosignature/v1` at `time` over `body`.
fn message(body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

/// The note body (up to and including the line before the blank line).
pub(crate) fn note_body(note: &str) -> Result<&str, NoteError> {
    let end = note
        .find("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    Ok(note.get(..=end).unwrap_or_default())
}

/// The signature lines of a note.
pub fn signature_lines(note: &str) -> impl Iterator<Item = &str> {
    note.split_once("\n\n")
        .map_or("", |(_, sigs)| sigs)
        .lines()
        .filter(|l| l.starts_with("\u{2014} "))
}

// === impl Cosigner ===

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cosigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Cosigner {
    pub fn generate(name: &str) -> Result<Cosigner, NoteError> {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| NoteError::Random("system random source failed"))?;
        Cosigner::from_seed(name, seed)
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> Result<Cosigner, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key(
                "name must be non-empty, without `+`, spaces or newlines",
            ));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| NoteError::Key("bad Ed25519 seed"))?;
        let id = key_id_for(name, ALG_COSIGNATURE_V1, pair.public_key().as_ref());
        Ok(Cosigner {
            name: name.to_owned(),
            id,
            seed,
            pair,
        })
    }

    /// Parses `PRIVATE+KEY+name+hexid+base64(0x04‖seed)`.
    pub fn parse(text: &str) -> Result<Cosigner, NoteError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::Key(
                "cosigner key must start with `PRIVATE+KEY+`",
            ))?;
        let (name, key) = split_key_for(rest, ALG_COSIGNATURE_V1)?;
        let seed: [u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::Key("seed is not 32 bytes"))?;
        Cosigner::from_seed(name, seed)
    }

    pub fn encode(&self) -> String {
        let mut key = vec![ALG_COSIGNATURE_V1];
        key.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex(&self.id),
            B64.encode(key)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public(&self) -> CosignatureKey {
        CosignatureKey {
            name: self.name.clone(),
            id: self.id,
            public: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// The cosignature line (with its newline) over `checkpoint` at `time`
    /// (POSIX seconds, not zero).
    pub fn cosign(&self, checkpoint: &Checkpoint, time: u64) -> String {
        let sig = self.pair.sign(message(&checkpoint.body(), time).as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(sig.as_ref());
        format!("\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

// === impl CosignatureKey ===

impl CosignatureKey {
    /// Parses `name+hexid+base64(0x04‖public)`.
    pub fn parse(text: &str) -> Result<CosignatureKey, NoteError> {
        let text = text.trim();
        let (name, public) = split_key_for(text, ALG_COSIGNATURE_V1)?;
        if public.len() != 32 || !valid_name(name) {
            return Err(NoteError::Key("public key is not 32 bytes"));
        }
        let id = key_id_for(name, ALG_COSIGNATURE_V1, &public);
        if text.split('+').nth(1) != Some(hex(&id).as_str()) {
            return Err(NoteError::Key("key id does not match the key"));
        }
        Ok(CosignatureKey {
            name: name.to_owned(),
            id,
            public,
        })
    }

    pub fn encode(&self) -> String {
        let mut key = vec![ALG_COSIGNATURE_V1];
        key.extend_from_slice(&self.public);
        format!("{}+{}+{}", self.name, hex(&self.id), B64.encode(key))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time of this key's valid cosignature on `note`. Lines by other
    /// keys are ignored; a line by this key that does not verify is an
    /// error.
    pub fn verify(&self, note: &str) -> Result<u64, NoteError> {
        let body = note_body(note)?;
        for line in signature_lines(note) {
            let Some((name, blob)) = line
                .strip_prefix("\u{2014} ")
                .and_then(|rest| rest.split_once(' '))
            else {
                continue;
            };
            let Ok(blob) = B64.decode(blob) else {
                continue;
            };
            if name != self.name || blob.get(..4) != Some(&self.id[..]) {
                continue;
            }
            let time = blob
                .get(4..12)
                .and_then(|t| <[u8; 8]>::try_from(t).ok())
                .map(u64::from_be_bytes)
                .ok_or(NoteError::BadSignature(self.name.clone()))?;
            let sig = blob.get(12..).unwrap_or_default();
            UnparsedPublicKey::new(&ED25519, &self.public)
                .verify(message(body, time).as_bytes(), sig)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            if time == 0 {
                return Err(NoteError::BadSignature(self.name.clone()));
            }
            return Ok(time);
        }
        Err(NoteError::NotSigned(self.name.clone()))
    }
}

/// `note` with each line of `lines` that is a valid cosignature by one of
/// `keys` added (once), and the number of distinct keys that cosign it.
pub fn add_cosignatures(note: &str, lines: &str, keys: &[CosignatureKey]) -> (String, usize) {
    let mut out = note.to_owned();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for line in lines.lines().filter(|l| l.starts_with("\u{2014} ")) {
        if signature_lines(&out).any(|l| l == line) {
            continue;
        }
        let candidate = format!("{out}{line}\n");
        let before = keys.iter().filter(|k| k.verify(&out).is_ok()).count();
        let after = keys.iter().filter(|k| k.verify(&candidate).is_ok()).count();
        if after > before {
            out = candidate;
        }
    }
    let count = keys.iter().filter(|k| k.verify(&out).is_ok()).count();
    (out, count)
}

#[cfg(test)]
mod tests;
