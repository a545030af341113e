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

/// One array item: its bytes and, when it is an object whose members
/// could be read, those members.
#[derive(Debug)]
pub struct Item<'a> {
    pub bytes: &'a [u8],
    pub members: Option<Vec<Member<'a>>>,
}

/// The members of the object that is all of `json`, and, found in the same
/// pass, the items of its member `expand` (which must be an array, at most
/// once) with the members of each item that is an object. A Bundle's
/// resources are stepped over once here instead of once per level.
pub fn object_expanding<'a>(
    json: &'a [u8],
    expand: &str,
) -> Option<(Vec<Member<'a>>, Option<Vec<Item<'a>>>)> {
    let mut scanner = Scanner {
        bytes: json,
        pos: 0,
    };
    let mut items = None;
    let members = scanner.object_with(|scanner, key| {
        if key != expand {
            return Some(false);
        }
        if items.is_some() {
            return None;
        }
        items = Some(scanner.items()?);
        Some(true)
    })?;
    scanner.skip_whitespace();
    (scanner.pos == json.len()).then_some((members, items))
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
        self.object_with(|_, _| Some(false))
    }

    /// An object; `expand` is asked about each key with the scanner at the
    /// start of its value: it either steps over the value itself (`true`),
    /// leaves it to the generic step (`false`) or refuses the object.
    fn object_with(
        &mut self,
        mut expand: impl FnMut(&mut Self, &str) -> Option<bool>,
    ) -> Option<Vec<Member<'a>>> {
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
            self.skip_whitespace();
            let start = self.pos;
            let value = if expand(self, &key)? {
                self.slice(start..self.pos)?
            } else {
                self.value()?
            };
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

    /// An array whose object items are read member by member. An object
    /// whose members cannot be read (a missing `:`, a trailing `,`) is
    /// stepped over as a value and kept without members, so the caller can
    /// refuse it alone.
    fn items(&mut self) -> Option<Vec<Item<'a>>> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(items);
        }
        loop {
            self.skip_whitespace();
            let start = self.pos;
            let members = if self.peek()? == b'{' {
                let members = self.object();
                if members.is_none() {
                    self.pos = start;
                    self.value()?;
                }
                members
            } else {
                self.value()?;
                None
            };
            let bytes = self.slice(start..self.pos)?;
            items.push(Item { bytes, members });
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
            // Strings are most of a resource's bytes: jump to the next
            // quote or backslash (SIMD) instead of stepping byte by byte.
            let rest = self.bytes.get(self.pos..)?;
            self.pos += memchr::memchr2(b'"', b'\\', rest)?;
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(escaped);
                }
                _ => {
                    escaped = true;
                    self.pos += 2;
                }
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
        let (_, items) = object_expanding(json, "bc").unwrap();
        let items = items.unwrap();
        let bytes: Vec<&[u8]> = items.iter().map(|i| i.bytes).collect();
        assert_eq!(bytes, [&b"1"[..], &br#"{"c": "]"}"#[..]]);
        assert!(items[0].members.is_none());
        assert_eq!(items[1].members.as_ref().unwrap()[0].value, br#""]""#);
    }

    #[test]
    fn expands_array_items_in_one_pass_and_keeps_unreadable_objects_whole() {
        let json = br#"{"type":"searchset", "entr\u0079" : [ {"resource":{"a":"\\"}} ,{"x" 1}, 7,{"b":[{"c":"}"}]}],"z":1}"#;
        let (members, items) = object_expanding(json, "entry").unwrap();
        let keys: Vec<&str> = members.iter().map(|m| m.key.as_ref()).collect();
        assert_eq!(
            keys,
            ["type", "entry", "z"],
            "an escaped key is the same key"
        );
        let items = items.unwrap();
        assert_eq!(items.len(), 4);
        let first = items[0].members.as_ref().unwrap();
        assert_eq!(first[0].value, br#"{"a":"\\"}"#);
        assert_eq!(items[1].bytes, br#"{"x" 1}"#);
        assert!(items[1].members.is_none(), "unreadable, kept to be refused");
        assert_eq!(items[2].bytes, b"7");
        assert_eq!(
            items[3].members.as_ref().unwrap()[0].value,
            br#"[{"c":"}"}]"#
        );
        assert_eq!(members[1].value.first(), Some(&b'['));
        assert_eq!(members[1].value.last(), Some(&b']'));
    }

    #[test]
    fn refuses_a_repeated_or_non_array_expanded_member() {
        assert!(object_expanding(br#"{"entry":[],"entry":[]}"#, "entry").is_none());
        assert!(object_expanding(br#"{"entry":{}}"#, "entry").is_none());
        assert!(object_expanding(br#"{"entry":[1,]}"#, "entry").is_none());
        let (_, none) = object_expanding(br#"{"entries":[]}"#, "entry").unwrap();
        assert!(none.is_none());
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
