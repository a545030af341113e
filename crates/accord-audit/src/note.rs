//! Signed checkpoints in the C2SP tlog-checkpoint format, as signed notes
//! (C2SP signed-note) with Ed25519 keys (ring).
//!
//! ```text
//! <origin>
//! <tree size>
//! <base64 root hash>
//!
//! — <key name> <base64(key id ‖ signature)>
//! ```
//!
//! Key id = first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key). Keys
//! are written like Go's `golang.org/x/mod/sumdb/note`: the verifier key
//! `name+hexid+base64(0x01‖public)` and the signer key
//! `PRIVATE+KEY+name+hexid+base64(0x01‖seed)`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::merkle::{Hash, sha256};

/// The Ed25519 algorithm byte of a signed-note key.
const ALG_ED25519: u8 = 0x01;

/// Why a key or a note was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    Key(&'static str),
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    #[error("no signature by key `{0}` on the checkpoint")]
    NotSigned(String),
    #[error("signature by key `{0}` does not verify")]
    BadSignature(String),
    #[error("cannot make a key: {0}")]
    Random(&'static str),
}

/// A private signing key.
pub struct Signer {
    name: String,
    id: [u8; 4],
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

/// A public verification key: all an auditor needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    id: [u8; 4],
    public: Vec<u8>,
}

/// The signed statement "the log named `origin` had `size` records with
/// root `root`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

fn key_id(name: &str, public: &[u8]) -> [u8; 4] {
    key_id_for(name, ALG_ED25519, public)
}

/// SHA-256(name ‖ "\n" ‖ alg ‖ public)\[:4\].
pub(crate) fn key_id_for(name: &str, alg: u8, public: &[u8]) -> [u8; 4] {
    let mut data = Vec::with_capacity(name.len() + 2 + public.len());
    data.extend_from_slice(name.as_bytes());
    data.push(b'\n');
    data.push(alg);
    data.extend_from_slice(public);
    let h = sha256(&data);
    [h.0[0], h.0[1], h.0[2], h.0[3]]
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['+', ' ', '\n']) && name.chars().all(|c| !c.is_control())
}

// === impl Signer ===

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Makes a fresh key named `name` (also the log's origin line).
    pub fn generate(name: &str) -> Result<Signer, NoteError> {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| NoteError::Random("system random source failed"))?;
        Signer::from_seed(name, seed)
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> Result<Signer, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key(
                "name must be non-empty, without `+`, spaces or newlines",
            ));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| NoteError::Key("bad Ed25519 seed"))?;
        let id = key_id(name, pair.public_key().as_ref());
        Ok(Signer {
            name: name.to_owned(),
            id,
            seed,
            pair,
        })
    }

    /// Parses `PRIVATE+KEY+name+hexid+base64`.
    pub fn parse(text: &str) -> Result<Signer, NoteError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::Key("signer key must start with `PRIVATE+KEY+`"))?;
        let (name, key) = split_key(rest)?;
        let seed: [u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::Key("seed is not 32 bytes"))?;
        Signer::from_seed(name, seed)
    }

    pub fn encode(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            crate::merkle::hex(&self.id),
            B64.encode(key)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            id: self.id,
            public: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// The checkpoint as a signed note.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        let sig = self.pair.sign(body.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(sig.as_ref());
        format!("{body}\n\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

fn split_key(rest: &str) -> Result<(&str, Vec<u8>), NoteError> {
    split_key_for(rest, ALG_ED25519)
}

/// `name+hexid+base64(alg‖key)` → name and key, for keys of `alg`.
pub(crate) fn split_key_for(rest: &str, want: u8) -> Result<(&str, Vec<u8>), NoteError> {
    let mut parts = rest.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::Key("expected `name+id+key`"));
    };
    let key = B64
        .decode(key)
        .map_err(|_| NoteError::Key("key is not base64"))?;
    let (alg, key) = key.split_first().ok_or(NoteError::Key("empty key"))?;
    if *alg != want {
        return Err(NoteError::Key(
            "wrong key type (Ed25519 signer keys are type 1, cosigner keys type 4)",
        ));
    }
    if id.len() != 8 || crate::merkle::unhex(id).is_none() {
        return Err(NoteError::Key("key id must be 8 hex digits"));
    }
    Ok((name, key.to_vec()))
}

// === impl Verifier ===

impl Verifier {
    /// Parses `name+hexid+base64(0x01‖public)`.
    pub fn parse(text: &str) -> Result<Verifier, NoteError> {
        let (name, public) = split_key(text.trim())?;
        if public.len() != 32 || !valid_name(name) {
            return Err(NoteError::Key("public key is not 32 bytes"));
        }
        let id = key_id(name, &public);
        let claimed = text.trim().split('+').nth(1).unwrap_or_default();
        if claimed != crate::merkle::hex(&id) {
            return Err(NoteError::Key("key id does not match the key"));
        }
        Ok(Verifier {
            name: name.to_owned(),
            id,
            public,
        })
    }

    pub fn encode(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&self.public);
        format!(
            "{}+{}+{}",
            self.name,
            crate::merkle::hex(&self.id),
            B64.encode(key)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the note's signature by this key and parses its checkpoint.
    pub fn open(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let (body, sigs) = note
            .split_once("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let body = format!("{body}\n");
        let mut seen = false;
        for line in sigs.lines().filter(|l| !l.is_empty()) {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or(NoteError::Malformed("signature line must start with `— `"))?;
            let (name, blob) = rest.split_once(' ').ok_or(NoteError::Malformed(
                "signature line must be `— name signature`",
            ))?;
            let blob = B64
                .decode(blob)
                .map_err(|_| NoteError::Malformed("signature is not base64"))?;
            if name != self.name || blob.get(..4) != Some(&self.id[..]) {
                continue;
            }
            seen = true;
            let sig = blob.get(4..).unwrap_or_default();
            UnparsedPublicKey::new(&ED25519, &self.public)
                .verify(body.as_bytes(), sig)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
        }
        if !seen {
            return Err(NoteError::NotSigned(self.name.clone()));
        }
        Checkpoint::parse_body(&body)
    }
}

// === impl Checkpoint ===

impl Checkpoint {
    /// The note body: origin, size, base64 root, each on its own line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root.0)
        )
    }

    /// Parses a note's checkpoint *without* checking any signature (to
    /// learn its size before proving; never to trust it).
    pub fn parse_note(note: &str) -> Result<Checkpoint, NoteError> {
        let (body, _) = note
            .split_once("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        Checkpoint::parse_body(&format!("{body}\n"))
    }

    fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = body.lines();
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::Malformed("no origin"))?;
        let size = lines
            .next()
            .and_then(|s| (!(s.starts_with('+') || s.len() > 1 && s.starts_with('0'))).then_some(s))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(NoteError::Malformed("tree size is not a decimal number"))?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| Hash::from_slice(&r))
            .ok_or(NoteError::Malformed("root hash is not 32 bytes of base64"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

#[cfg(test)]
mod tests;
