//! A record serialized by its appender, ready for the writer to number.

use crate::record::AuditRecord;

/// Digits a sequence number can add to a record encoded with `seq` 0.
pub(crate) const SEQ_DIGITS: usize = 19;

/// A record's canonical JSON with `seq` 0, and where that `0` is, so the
/// writer can put the real number in without serializing on its thread.
pub(crate) struct Encoded {
    json: Vec<u8>,
    seq_at: usize,
}

impl Encoded {
    /// `None` when the JSON does not start `{"schema":N,"seq":0,` (the
    /// writer then serializes the record itself).
    pub fn new(record: &AuditRecord) -> Option<Encoded> {
        debug_assert_eq!(record.seq, 0);
        let json = serde_json::to_vec(record).ok()?;
        let seq_at = json.windows(9).position(|w| w == b",\"seq\":0,")? + 7;
        (crate::segment::leading_seq(&json) == Some(0) && seq_at < 32)
            .then_some(Encoded { json, seq_at })
    }

    /// The longest the record can be once its sequence number is in.
    pub fn longest(&self) -> usize {
        self.json.len().saturating_add(SEQ_DIGITS)
    }

    #[cfg(test)]
    pub fn write_for_test(&self, seq: u64, out: &mut Vec<u8>) {
        self.write(seq, out);
    }

    /// Appends the record's JSON with `seq` in place of the 0.
    pub(crate) fn write(&self, seq: u64, out: &mut Vec<u8>) {
        let (head, tail) = self.json.split_at(self.seq_at);
        out.extend_from_slice(head);
        out.extend_from_slice(seq.to_string().as_bytes());
        out.extend_from_slice(tail.get(1..).unwrap_or_default());
    }
}
