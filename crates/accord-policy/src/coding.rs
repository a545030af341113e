//! A coded value, the leaf type the facts of a resource, the sensitivity
//! tables and consents all speak (a module of its own so that none of them
//! imports another back).

use std::fmt;

/// A coded value, `system|code`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Coding {
    pub system: String,
    pub code: String,
}

// === impl Coding ===

impl Coding {
    /// Parses `system|code`.
    pub fn parse(token: &str) -> Option<Coding> {
        let (system, code) = token.split_once('|')?;
        (!system.is_empty() && !code.is_empty()).then(|| Coding {
            system: system.to_owned(),
            code: code.to_owned(),
        })
    }

    pub fn new(system: &str, code: &str) -> Coding {
        Coding {
            system: system.to_owned(),
            code: code.to_owned(),
        }
    }
}

impl fmt::Display for Coding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.system, self.code)
    }
}
