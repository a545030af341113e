//! The audit log read back: segment frames (`segment::scan`, the reader
//! that steps past damage and finds torn tails), record decoding, and a
//! whole log directory read the way `accord serve` and `verify` open it
//! (`read_log`).
//!
//! Input: a selector byte, then either a segment's bytes after a valid
//! header (selector even) or a whole file (odd); a selector ≥ 0x80 reads
//! the bytes as one record's JSON instead.
//! Properties: no panic; what the scanner calls good lies inside the file,
//! record numbers only go up, and a record that decodes re-encodes to one
//! that decodes equal (what the writer wrote, the reader reads).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use accord_audit::segment::{self, SegmentFile};
use accord_audit::{AuditRecord, read_log};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("no scratch directory: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector >= 0x80 {
        record_round_trip(rest);
        return;
    }
    let mut bytes = Vec::with_capacity(rest.len() + 16);
    if selector % 2 == 0 {
        bytes.extend_from_slice(&segment::header(1));
    }
    bytes.extend_from_slice(rest);

    let seg = SegmentFile {
        first_seq: 1,
        path: PathBuf::from(segment::segment_name(1)),
    };
    let scan = segment::scan(&seg, &bytes);
    assert!(
        scan.good_len <= bytes.len() as u64,
        "good bytes past the end"
    );
    let mut last = 0;
    for frame in &scan.frames {
        assert!(frame.seq > last, "record {} after record {last}", frame.seq);
        last = frame.seq;
        let _ = serde_json::from_slice::<AuditRecord>(&frame.payload);
    }

    // The same bytes as the only segment of a log directory.
    let dir = scratch().path();
    let segments = dir.join(segment::SEGMENTS_DIR);
    if std::fs::create_dir_all(&segments).is_err()
        || std::fs::write(segments.join(segment::segment_name(1)), &bytes).is_err()
    {
        return;
    }
    if let Ok(log) = read_log(dir) {
        for damaged in &log.damaged {
            let _ = damaged.to_string();
        }
        assert!(log.frames.len() as u64 <= log.last_seq.max(log.frames.len() as u64));
    }
});

fn record_round_trip(json: &[u8]) {
    let Ok(record) = serde_json::from_slice::<AuditRecord>(json) else {
        return;
    };
    let encoded = match serde_json::to_vec(&record) {
        Ok(encoded) => encoded,
        Err(e) => panic!("a decoded record does not encode: {e}"),
    };
    match serde_json::from_slice::<AuditRecord>(&encoded) {
        Ok(again) => assert_eq!(again, record, "a record changed on the way through"),
        Err(e) => panic!("an encoded record does not decode: {e}"),
    }
}
