//! Purpose of use: HL7 v3 `PurposeOfUse` codes a partner declares per request.

use std::fmt;

/// Code system of the HL7 v3 ActReason codes used for purpose of use.
pub const PURPOSE_OF_USE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// The codes of the HL7 v3 `PurposeOfUse` value set (v3-ActReason, the
/// `_PurposeOfUse` hierarchy) that a partner may declare.
// INVARIANT: sorted ascending, no duplicates (checked by a test).
const PURPOSE_OF_USE_CODES: &[&str] = &[
    "BIORCH",
    "BTG",
    "CAREMGT",
    "CLINTRCH",
    "CLINTRL",
    "COC",
    "COVAUTH",
    "COVERAGE",
    "DECEASED",
    "DISASTER",
    "DONAT",
    "DSRCH",
    "ELIGDTRM",
    "ELIGVER",
    "ENADMIN",
    "ETREAT",
    "ETRTMNT",
    "FAMRQT",
    "FRAUD",
    "GOV",
    "HACCRED",
    "HCOMPL",
    "HDECD",
    "HDIRECT",
    "HDM",
    "HLEGAL",
    "HMARKT",
    "HOPERAT",
    "HOUTCOMS",
    "HPAYMT",
    "HPRGRP",
    "HQUALIMP",
    "HRESCH",
    "HSYSADMIN",
    "HTEST",
    "LABELING",
    "METAMGT",
    "MILDCRG",
    "MLTRAINING",
    "PATADMIN",
    "PATRQT",
    "PATSFTY",
    "PAYMGT",
    "PMKTRCH",
    "POARCH",
    "PRCSRCH",
    "PUBHLTH",
    "PWATRNY",
    "RECORDMGT",
    "REMITADV",
    "SUPNWK",
    "SYSDEV",
    "TBOOST",
    "THREAT",
    "TRAIN",
    "TRANSRCH",
    "TREAT",
];

/// A declared purpose of use, one of the HL7 v3 PurposeOfUse codes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purpose(&'static str);

/// Why a purpose-of-use value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurposeError {
    #[error("`{0}` is not an HL7 v3 PurposeOfUse code")]
    Unknown(String),
    #[error("purpose of use code system `{0}` is not {PURPOSE_OF_USE_SYSTEM}")]
    WrongSystem(String),
}

// === impl Purpose ===

impl Purpose {
    /// Parses `CODE` or `system|CODE` (the FHIR token form).
    pub fn parse(text: &str) -> Result<Self, PurposeError> {
        let text = text.trim();
        let code = match text.split_once('|') {
            Some((system, code)) if system == PURPOSE_OF_USE_SYSTEM => code,
            Some((system, _)) => return Err(PurposeError::WrongSystem(system.to_owned())),
            None => text,
        };
        // The code as listed: copying a purpose (into every permit) is free.
        if let Ok(i) = PURPOSE_OF_USE_CODES.binary_search(&code)
            && let Some(known) = PURPOSE_OF_USE_CODES.get(i)
        {
            Ok(Purpose(known))
        } else {
            Err(PurposeError::Unknown(code.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        self.0
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl serde::Serialize for Purpose {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Purpose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Purpose::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_table_is_sorted_and_unique() {
        assert!(PURPOSE_OF_USE_CODES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn parses_plain_and_token_forms() {
        assert_eq!(Purpose::parse("TREAT").unwrap().as_str(), "TREAT");
        assert_eq!(Purpose::parse(" HPAYMT ").unwrap().as_str(), "HPAYMT");
        let token = format!("{PURPOSE_OF_USE_SYSTEM}|PUBHLTH");
        assert_eq!(Purpose::parse(&token).unwrap().as_str(), "PUBHLTH");
    }

    #[test]
    fn refuses_unknown_codes_and_systems() {
        assert!(matches!(
            Purpose::parse("treat"),
            Err(PurposeError::Unknown(_))
        ));
        assert!(matches!(Purpose::parse(""), Err(PurposeError::Unknown(_))));
        assert!(matches!(
            Purpose::parse("http://x|TREAT"),
            Err(PurposeError::WrongSystem(_))
        ));
    }
}
