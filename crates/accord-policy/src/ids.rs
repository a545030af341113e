//! Identifiers of policy objects: partners, agreements, grants.

use std::fmt;

macro_rules! policy_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        // Shared text: decisions copy ids into every permit and audit
        // record, and cloning an `Arc` does not allocate.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// Ids are 1-64 characters of `[A-Za-z0-9._-]`, so they can be
            /// written anywhere (file names, headers, logs) without escaping.
            pub fn parse(text: &str) -> Result<Self, InvalidPolicyId> {
                let ok = (1..=64).contains(&text.len())
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if ok {
                    Ok($name(std::sync::Arc::from(text)))
                } else {
                    Err(InvalidPolicyId(text.to_owned()))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

policy_id!(
    /// A partner organization's id in policies/partners.toml.
    PartnerId
);
policy_id!(
    /// A data-use agreement's id.
    AgreementId
);
policy_id!(
    /// A grant's or forbid's id, unique within its agreement.
    GrantId
);
policy_id!(
    /// A cohort's id in policies/cohorts/*.toml.
    CohortId
);
policy_id!(
    /// A sensitivity category's id in policies/sensitivity/*.toml.
    CategoryId
);

/// The text is not a valid policy id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid id (1-64 of A-Z a-z 0-9 . _ -)")]
pub struct InvalidPolicyId(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_restricted_to_safe_characters() {
        assert!(PartnerId::parse("maple-primary").is_ok());
        assert!(PartnerId::parse("a b").is_err());
        assert!(AgreementId::parse("").is_err());
        assert!(GrantId::parse("x\ny").is_err());
    }
}
