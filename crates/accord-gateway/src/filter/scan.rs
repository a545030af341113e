//! Where the members of a JSON object and the items of an array lie, found
//! without building anything: the shallow half of the Bundle filter.
//!
//! The scanner checks the structure it walks (keys, `:`, `,`, brackets) but
//! not the values it steps over. That is enough because nothing it finds is
//! used as it stands: every range the filter decides on or passes on is
//! parsed again by serde_json first (the resource by `prune`, the small
//! fields as values), so a range that is not valid JSON fails closed.

use std::borrow::Cow;
use std::ops::Range;

/// One object member: its key (unescaped) and the bytes of its value.
#[derive(Debug)]
pub struct Member<'a> {
    pub key: Cow<'a, str>,
    pub value: &'a [u8],
}

/// The members of the object that is all of `json` (whitespace aside).
pub fn object(json: &[u8]) -> Option<Vec<Member<'_>>> {
    let mut scanner = Scanner {
        bytes: json,
        pos: 0,
    };
    let members = scanner.object()?;
    scanner.skip_whitespace();
    (scanner.pos == json.len()).then_some(members)
}

/// The items of the array that is all of `json` (whitespace aside).
pub fn array(json: &[u8]) -> Option<Vec<&[u8]>> {
    let mut scanner = Scanner {
        bytes: json,
        pos: 0,
    };
    let items = scanner.array()?;
    scanner.skip_whitespace();
    (scanner.pos == json.len()).then_some(items)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn slice(&self, range: Range<usize>) -> Option<&'a [u8]> {
        self.bytes.get(range)
    }

    fn object(&mut self) -> Option<Vec<Member<'a>>> {
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(members);
        }
        loop {
            self.skip_whitespace();
            let key = self.key()?;
            self.expect(b':')?;
            let value = self.value()?;
            members.push(Member { key, value });
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(members);
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self) -> Option<Vec<&'a [u8]>> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(items);
        }
        loop {
            items.push(self.value()?);
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(items);
                }
                _ => return None,
            }
        }
    }

    /// A key, unescaped only when it has escapes.
    fn key(&mut self) -> Option<Cow<'a, str>> {
        let start = self.pos;
        let escaped = self.string()?;
        let quoted = self.slice(start..self.pos)?;
        if escaped {
            serde_json::from_slice::<String>(quoted)
                .ok()
                .map(Cow::Owned)
        } else {
            let inner = quoted.get(1..quoted.len() - 1)?;
            std::str::from_utf8(inner).ok().map(Cow::Borrowed)
        }
    }

    /// Steps over a string starting here; whether it had escapes.
    fn string(&mut self) -> Option<bool> {
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        let mut escaped = false;
        loop {
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.pos += 2;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Steps over one value; its bytes.
    fn value(&mut self) -> Option<&'a [u8]> {
        self.skip_whitespace();
        let start = self.pos;
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
            }
            _ => {
                while !matches!(
                    self.peek()?,
                    b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'
                ) {
                    self.pos += 1;
                }
                if self.pos == start {
                    return None;
                }
            }
        }
        self.slice(start..self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_members_and_items_with_strings_that_look_like_structure() {
        let json = br#" {"a": "x\"}]", "b\u0063": [1, {"c": "]"}], "d": -1.5e3 , "e":null} "#;
        let members = object(json).unwrap();
        let keys: Vec<&str> = members.iter().map(|m| m.key.as_ref()).collect();
        assert_eq!(keys, ["a", "bc", "d", "e"]);
        assert_eq!(members[0].value, br#""x\"}]""#);
        assert_eq!(members[1].value, br#"[1, {"c": "]"}]"#);
        assert_eq!(members[2].value, b"-1.5e3");
        let items = array(members[1].value).unwrap();
        assert_eq!(items, [&b"1"[..], &br#"{"c": "]"}"#[..]]);
    }

    #[test]
    fn refuses_what_is_not_an_object_of_members() {
        for bad in [
            &b"{\"a\" 1}"[..],
            b"{\"a\":1,}",
            b"{\"a\":1",
            b"[1]",
            b"{\"a\":1} x",
            b"{\"a\":\"unterminated}",
            b"{\"a\":}",
        ] {
            assert!(object(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
