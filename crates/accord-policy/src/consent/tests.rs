use super::*;
use time::macros::datetime;

const OPT_OUT: &str = r#"{
  "resourceType": "Consent",
  "id": "optout-1",
  "status": "active",
  "scope": {"coding": [{"code": "patient-privacy"}]},
  "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
  "patient": {"reference": "Patient/p1"},
  "dateTime": "2026-02-01",
  "provision": {"type": "deny"}
}"#;

const PART2: &str = r#"{
  "resourceType": "Consent",
  "id": "part2-1",
  "status": "active",
  "scope": {"coding": [{"code": "patient-privacy"}]},
  "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
  "patient": {"reference": "Patient/p2"},
  "dateTime": "2026-02-01T10:00:00Z",
  "provision": {
    "type": "permit",
    "provision": [{
      "type": "permit",
      "actor": [{"role": {"coding": [{"code": "IRCP"}]}, "reference": {"reference": "Organization/maple"}}],
      "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
      "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ETH"}]
    }]
  }
}"#;

fn index(files: &[(&str, &str)]) -> Result<ConsentIndex, Vec<PolicyError>> {
    let sources: Vec<_> = files.iter().map(|(n, t)| SourceFile::new(*n, *t)).collect();
    ConsentIndex::compile(&sources, &|p: &PartnerId| p.as_str() != "nobody")
}

#[test]
fn opt_out_denies_and_part2_needs_a_matching_provision() {
    let index = index(&[("a.json", OPT_OUT), ("b.json", PART2)]).unwrap();
    let maple = PartnerId::parse("maple").unwrap();
    let other = PartnerId::parse("other").unwrap();
    let treat = Purpose::parse("TREAT").unwrap();
    let at = datetime!(2026-06-01 0:00 UTC);
    let q = ConsentQuery {
        partner: &maple,
        purpose: &treat,
        at,
    };
    assert_eq!(index.general("Patient/p1", &q).rule, ConsentRule::Deny);
    assert_eq!(index.general("Patient/p2", &q).rule, ConsentRule::Permit);
    assert_eq!(index.general("Patient/p3", &q).rule, ConsentRule::Permit);
    let eth = BTreeSet::from([Coding::new(
        "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "ETH",
    )]);
    assert_eq!(
        index.for_labels("Patient/p2", &eth, &q).rule,
        ConsentRule::Permit
    );
    let q_other = ConsentQuery {
        partner: &other,
        ..q
    };
    assert_eq!(
        index.for_labels("Patient/p2", &eth, &q_other).rule,
        ConsentRule::Deny
    );
    assert_eq!(
        index.for_labels("Patient/p3", &eth, &q).rule,
        ConsentRule::Deny
    );
    // Before the consent was given it does not apply.
    let early = ConsentQuery {
        at: datetime!(2026-01-01 0:00 UTC),
        ..q
    };
    assert_eq!(
        index.general("Patient/p1", &early).rule,
        ConsentRule::Permit
    );
}

#[test]
fn the_most_recent_consent_wins() {
    let later = OPT_OUT
        .replace("optout-1", "optin-2")
        .replace("2026-02-01", "2026-03-01")
        .replace("\"deny\"", "\"permit\"");
    let index = index(&[("a.json", OPT_OUT), ("b.json", &later)]).unwrap();
    let maple = PartnerId::parse("maple").unwrap();
    let treat = Purpose::parse("TREAT").unwrap();
    let q = |at| ConsentQuery {
        partner: &maple,
        purpose: &treat,
        at,
    };
    assert_eq!(
        index
            .general("Patient/p1", &q(datetime!(2026-02-15 0:00 UTC)))
            .rule,
        ConsentRule::Deny
    );
    assert_eq!(
        index
            .general("Patient/p1", &q(datetime!(2026-03-15 0:00 UTC)))
            .rule,
        ConsentRule::Permit
    );
}

#[test]
fn invalid_consents_are_located() {
    let bad = PART2
        .replace("\"status\": \"active\"", "\"status\": \"on\"")
        .replace("Organization/maple", "Organization/nobody");
    let errors: Vec<String> = index(&[("c.json", &bad)])
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("c.json:4:13: `status` `on`"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("c.json:13:85: actor `Organization/nobody`"),
        "{errors:?}"
    );
}
