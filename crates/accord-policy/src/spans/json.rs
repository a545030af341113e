//! Spans of a JSON document's values, by JSON pointer. The text has already
//! been parsed by serde_json, so this scanner only needs to find positions;
//! on anything unexpected it stops (positions then fall back to an ancestor).

use std::ops::Range;

use super::{SpannedDoc, escape};

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

/// Fills `doc` with the spans of `text`'s values.
pub(crate) fn scan(text: &str, doc: &mut SpannedDoc) {
    let mut s = Scanner {
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let _ = s.value("", None, doc);
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        if self.peek() != Some(b'"') {
            return None;
        }
        self.pos += 1;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Some(start..self.pos);
                }
                _ => self.pos += 1,
            }
        }
    }

    fn value(
        &mut self,
        pointer: &str,
        key: Option<Range<usize>>,
        doc: &mut SpannedDoc,
    ) -> Option<()> {
        self.depth += 1;
        if self.depth > 128 {
            return None;
        }
        self.skip_ws();
        let start = self.pos;
        match self.peek()? {
            b'{' => {
                self.pos += 1;
                loop {
                    self.skip_ws();
                    if self.peek()? == b'}' {
                        self.pos += 1;
                        break;
                    }
                    let key_span = self.string()?;
                    let name: String =
                        serde_json::from_slice(self.bytes.get(key_span.clone())?).ok()?;
                    self.skip_ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.pos += 1;
                    self.value(&format!("{pointer}/{}", escape(&name)), Some(key_span), doc)?;
                    self.skip_ws();
                    if self.peek()? == b',' {
                        self.pos += 1;
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut i = 0;
                loop {
                    self.skip_ws();
                    if self.peek()? == b']' {
                        self.pos += 1;
                        break;
                    }
                    self.value(&format!("{pointer}/{i}"), None, doc)?;
                    i += 1;
                    self.skip_ws();
                    if self.peek()? == b',' {
                        self.pos += 1;
                    }
                }
            }
            b'"' => {
                self.string()?;
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                {
                    self.pos += 1;
                }
            }
        }
        self.depth -= 1;
        doc.insert_span(pointer.to_owned(), key, start..self.pos);
        Some(())
    }
}
