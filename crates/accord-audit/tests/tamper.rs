//! The tamper corpus: mutate a real log every way the issue lists and check
//! that `verify` catches every case, then open it as `accord serve` does
//! (`AuditStore::open_with`, recovery and all) and check that no byte of a
//! signed record was lost. A fixed-seed sample runs in CI; the full run is
//! `ACCORD_TAMPER_CASES=10000 cargo test -p accord-audit --release --test
//! tamper` (see docs/audit-store.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::fs;
use std::path::{Path, PathBuf};

use accord_audit::segment::{self, encode_frame, header};
use accord_audit::{
    AuditRecord, AuditSink, AuditStore, Checkpoint, DecisionKind, Signer, StoreOptions,
    VerifyOptions, merkle, read_checkpoint_log, verify,
};

const SEED: u64 = 0x5eed_a0d1;
const CI_CASES: usize = 400;
const RECORDS: usize = 80;

struct Base {
    _dir: tempfile::TempDir,
    path: PathBuf,
    key: Signer,
    kept: String,
    /// (size, note) of every checkpoint, oldest first.
    checkpoints: Vec<(u64, String)>,
}

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        request_id: format!("req-{i}"),
        partner: Some(["acme", "maple", "river"][i % 3].into()),
        peer: "10.0.0.1:4431".into(),
        method: "GET".into(),
        target: format!("/Observation?patient=Patient/{}", i % 7),
        decision: if i.is_multiple_of(5) {
            DecisionKind::Deny
        } else {
            DecisionKind::Permit
        },
        rule: "grant g1 of agreement a1".into(),
        status: 200,
        ..AuditRecord::default()
    }
}

fn base() -> Base {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit");
    let key = Signer::generate("tamper.test/audit").unwrap();
    let options = StoreOptions {
        segment_size: 4096,
        signer: Some(Signer::parse(&key.encode()).unwrap()),
        ..StoreOptions::default()
    };
    let (store, _) = AuditStore::open_with(&path, options).unwrap();
    for i in 0..RECORDS {
        store.append(&record(i)).unwrap();
        if i % 16 == 15 {
            store.checkpoint().unwrap();
        }
    }
    let kept = store.checkpoint().unwrap();
    store.close();
    let checkpoints = read_checkpoint_log(&path)
        .unwrap()
        .notes
        .into_iter()
        .map(|(_, note)| (Checkpoint::parse_note(&note).unwrap().size, note))
        .collect();
    Base {
        _dir: dir,
        path,
        key,
        kept,
        checkpoints,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A segment as a list of frames (payloads).
struct Seg {
    path: PathBuf,
    first_seq: u64,
    payloads: Vec<Vec<u8>>,
}

fn segments(dir: &Path) -> Vec<Seg> {
    segment::list(dir)
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|s| {
            let bytes = fs::read(&s.path).unwrap();
            let scan = segment::scan(&s, &bytes);
            Seg {
                path: s.path.clone(),
                first_seq: s.first_seq,
                payloads: scan.frames.into_iter().map(|f| f.payload).collect(),
            }
        })
        .collect()
}

fn write_seg(seg: &Seg) {
    let mut out = header(seg.first_seq).to_vec();
    for p in &seg.payloads {
        encode_frame(p, &mut out);
    }
    fs::write(&seg.path, out).unwrap();
}

fn set_seq(payload: &[u8], seq: u64) -> Vec<u8> {
    let mut r: AuditRecord = serde_json::from_slice(payload).unwrap();
    r.seq = seq;
    serde_json::to_vec(&r).unwrap()
}

/// Rewrites the whole log from `records`, renumbered and re-framed: a
/// perfectly self-consistent log that only the signed checkpoints expose.
fn rewrite_log(dir: &Path, records: Vec<Vec<u8>>) {
    let segs = segments(dir);
    for s in &segs {
        fs::remove_file(&s.path).unwrap();
    }
    let per = segs[0].payloads.len().max(1);
    for (n, chunk) in records.chunks(per).enumerate() {
        let first = (n * per) as u64 + 1;
        let payloads = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| set_seq(p, first + i as u64))
            .collect();
        let path = dir.join("segments").join(segment::segment_name(first));
        write_seg(&Seg {
            path,
            first_seq: first,
            payloads,
        });
    }
}

fn all_payloads(dir: &Path) -> Vec<Vec<u8>> {
    segments(dir).into_iter().flat_map(|s| s.payloads).collect()
}

/// Applies mutation `kind`; returns a description.
fn mutate(kind: usize, rng: &mut fastrand::Rng, base: &Base, dir: &Path) -> String {
    let mut segs = segments(dir);
    let n_segs = segs.len();
    match kind {
        0 => {
            let s = &segs[rng.usize(..n_segs)];
            let mut bytes = fs::read(&s.path).unwrap();
            let at = rng.usize(..bytes.len());
            bytes[at] ^= rng.u8(1..);
            fs::write(&s.path, bytes).unwrap();
            format!("flip byte {at} of {}", s.path.display())
        }
        1 => {
            let s = &mut segs[rng.usize(..n_segs)];
            let i = rng.usize(..s.payloads.len());
            s.payloads.remove(i);
            write_seg(s);
            format!("delete record {} of segment {}", i, s.first_seq)
        }
        2 => {
            let donor = all_payloads(dir);
            let s = &mut segs[rng.usize(..n_segs)];
            let i = rng.usize(..=s.payloads.len());
            s.payloads
                .insert(i, donor[rng.usize(..donor.len())].clone());
            write_seg(s);
            format!("insert a record at {i} of segment {}", s.first_seq)
        }
        3 => {
            let s = &mut segs[rng.usize(..n_segs)];
            let i = rng.usize(..s.payloads.len() - 1);
            s.payloads.swap(i, i + 1);
            write_seg(s);
            format!("swap records {i} and {} of segment {}", i + 1, s.first_seq)
        }
        4 => {
            let s = &mut segs[rng.usize(..n_segs)];
            let i = rng.usize(..s.payloads.len());
            let copy = s.payloads[i].clone();
            s.payloads.insert(i + 1, copy);
            write_seg(s);
            format!("duplicate record {i} of segment {}", s.first_seq)
        }
        5 => {
            let s = &segs[rng.usize(..n_segs)];
            let bytes = fs::read(&s.path).unwrap();
            let cut = rng.usize(..bytes.len());
            fs::write(&s.path, &bytes[..cut]).unwrap();
            format!("truncate {} to {cut} bytes", s.path.display())
        }
        6 => {
            let a = rng.usize(..n_segs);
            let b = (a + 1 + rng.usize(..n_segs - 1)) % n_segs;
            let (pa, pb) = (segs[a].path.clone(), segs[b].path.clone());
            let tmp = pa.with_extension("swap");
            fs::rename(&pa, &tmp).unwrap();
            fs::rename(&pb, &pa).unwrap();
            fs::rename(&tmp, &pb).unwrap();
            format!("swap segments {a} and {b}")
        }
        7 => {
            // Change one record, delete or reorder, then recompute every
            // checksum, sequence number and segment: only checkpoints see it.
            let mut records = all_payloads(dir);
            let i = rng.usize(..records.len());
            match rng.u8(..3) {
                0 => {
                    let mut r: AuditRecord = serde_json::from_slice(&records[i]).unwrap();
                    r.partner = Some("mallory".into());
                    records[i] = serde_json::to_vec(&r).unwrap();
                }
                1 => {
                    records.remove(i);
                }
                _ => records.swap(i, (i + 1) % RECORDS),
            }
            rewrite_log(dir, records);
            format!("recompute the log after changing record {}", i + 1)
        }
        8 => {
            // Forge: sign the latest checkpoint with another key of the
            // same name, or corrupt the real signature.
            let forger = Signer::generate(base.key.name()).unwrap();
            let cp = Checkpoint::parse_note(&base.kept).unwrap();
            let note = if rng.bool() {
                forger.sign(&cp)
            } else {
                let (body, sig) = base.kept.rsplit_once(' ').unwrap();
                let mut sig = sig.as_bytes().to_vec();
                let at = rng.usize(..sig.len() - 2);
                sig[at] = if sig[at] == b'A' { b'B' } else { b'A' };
                format!("{body} {}", String::from_utf8(sig).unwrap())
            };
            fs::write(dir.join("checkpoint"), note).unwrap();
            "forge the latest checkpoint's signature".into()
        }
        9 => {
            let bytes = fs::read(dir.join("checkpoints.log")).unwrap();
            let mut bytes = bytes;
            let at = rng.usize(..bytes.len());
            bytes[at] ^= rng.u8(1..);
            fs::write(dir.join("checkpoints.log"), bytes).unwrap();
            format!("flip byte {at} of checkpoints.log")
        }
        _ => {
            // Roll back to an earlier, fully consistent state: records cut
            // at an old checkpoint, later checkpoints removed. Only the
            // checkpoint the auditor kept can tell.
            let older = base
                .checkpoints
                .iter()
                .filter(|(s, _)| *s < RECORDS as u64)
                .count();
            let pick = rng.usize(..older);
            let (size, note) = &base.checkpoints[pick];
            let records: Vec<_> = all_payloads(dir).into_iter().take(*size as usize).collect();
            rewrite_log(dir, records);
            let mut log = Vec::new();
            for (_, n) in &base.checkpoints[..=pick] {
                encode_frame(n.as_bytes(), &mut log);
            }
            fs::write(dir.join("checkpoints.log"), log).unwrap();
            fs::write(dir.join("checkpoint"), note).unwrap();
            format!("roll back to the checkpoint of size {size}")
        }
    }
}

const KINDS: usize = 11;

/// Every segment file's bytes, by path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    out.sort();
    out
}

/// Opens the mutated log the way `accord serve` does (recovery, the
/// writer, the indexer), then closes it; panics if any byte of a signed
/// record was lost. Every record of the base log is signed, so recovery
/// may only ever cut a torn tail holding a record number past them; every
/// other byte of every segment must be where it was.
fn recover_keeps_signed_bytes(dir: &Path, key: &Signer, case: usize, what: &str) -> bool {
    let before = snapshot(dir);
    let options = StoreOptions {
        signer: Some(Signer::parse(&key.encode()).unwrap()),
        ..StoreOptions::default()
    };
    let opened = AuditStore::open_with(dir, options);
    let torn = match &opened {
        Ok((store, report)) => {
            store.close();
            report.torn_tail.clone()
        }
        Err(_) => None,
    };
    if let Some(torn) = &torn {
        assert!(
            torn.seq > RECORDS as u64,
            "case {case} ({what}): recovery cut signed record {} at {} of {}",
            torn.seq,
            torn.offset,
            torn.segment.display()
        );
    }
    for (path, bytes) in before {
        let after = fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "case {case} ({what}): recovery removed {}: {e}",
                path.display()
            )
        });
        let keep = match &torn {
            Some(t) if t.segment == path => t.offset as usize,
            _ => bytes.len(),
        };
        assert!(
            after.len() >= keep && after[..keep] == bytes[..keep],
            "case {case} ({what}): recovery changed bytes of {} (before {} bytes, after {})",
            path.display(),
            bytes.len(),
            after.len()
        );
    }
    opened.is_ok()
}

fn run_corpus(cases: usize) {
    let base = base();
    let key = base.key.verifier();
    let kept = VerifyOptions {
        kept_checkpoints: vec![("kept".into(), base.kept.clone())],
        ..VerifyOptions::default()
    };
    // The untouched log verifies.
    let clean = verify(&base.path, &key, &kept).unwrap();
    assert!(clean.is_ok(), "{:?}", clean.problems);
    assert_eq!(clean.records, RECORDS as u64);
    assert!(clean.segments > 3);
    let root = merkle::Tree::new().root();
    assert_ne!(clean.root, root);

    let mut rng = fastrand::Rng::with_seed(SEED);
    let scratch = tempfile::tempdir().unwrap();
    let mut per_kind = [0usize; KINDS];
    // Cases the store opened on (a rollback looks like a shorter log).
    let mut opened = [0usize; KINDS];
    for case in 0..cases {
        let dir = scratch.path().join(format!("case-{case}"));
        copy_dir(&base.path, &dir);
        let kind = case % KINDS;
        let what = mutate(kind, &mut rng, &base, &dir);
        let report = verify(&dir, &key, &kept).unwrap();
        assert!(!report.is_ok(), "case {case} missed: {what}");
        if recover_keeps_signed_bytes(&dir, &base.key, case, &what) {
            opened[kind] += 1;
        }
        per_kind[kind] += 1;
        fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!(
        "tamper corpus: {cases} cases, 0 missed, per kind {per_kind:?}; recovery lost no signed byte, opened on {opened:?}"
    );
}

#[test]
fn every_mutation_is_detected_fixed_seed_sample() {
    let cases = std::env::var("ACCORD_TAMPER_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(CI_CASES);
    run_corpus(cases);
}

#[test]
fn rollback_is_invisible_without_a_kept_checkpoint_but_caught_with_one() {
    let base = base();
    let key = base.key.verifier();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("rolled");
    copy_dir(&base.path, &dir);
    let mut rng = fastrand::Rng::with_seed(1);
    mutate(10, &mut rng, &base, &dir);
    assert!(
        verify(&dir, &key, &VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
    let kept = VerifyOptions {
        kept_checkpoints: vec![("kept".into(), base.kept.clone())],
        ..VerifyOptions::default()
    };
    let report = verify(&dir, &key, &kept).unwrap();
    assert!(
        report.problems.iter().any(|p| p.location == "kept"),
        "{:?}",
        report.problems
    );
}
