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
    let partners = [
        actors::test_partner("maple", Some("Organization/org-maple")),
        actors::test_partner("other", None),
    ];
    ConsentIndex::compile(&sources, &ConsentActors::new(&partners))
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

#[test]
fn an_actor_may_name_the_partner_by_its_upstream_organization() {
    // As a source system writes it: the partner's Organization resource on
    // the FHIR server, which partners.toml records as `organization`.
    let upstream = PART2.replace("Organization/maple", "Organization/org-maple");
    let index = index(&[("b.json", &upstream)]).unwrap();
    let maple = PartnerId::parse("maple").unwrap();
    let other = PartnerId::parse("other").unwrap();
    let treat = Purpose::parse("TREAT").unwrap();
    let eth = BTreeSet::from([Coding::new(
        "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "ETH",
    )]);
    let q = |partner| ConsentQuery {
        partner,
        purpose: &treat,
        at: datetime!(2026-06-01 0:00 UTC),
    };
    assert_eq!(
        index.for_labels("Patient/p2", &eth, &q(&maple)).rule,
        ConsentRule::Permit
    );
    assert_eq!(
        index.for_labels("Patient/p2", &eth, &q(&other)).rule,
        ConsentRule::Deny
    );
}

#[test]
fn an_unknown_upstream_organization_is_located() {
    // `other` has no `organization` in partners.toml: `org-other` is nobody.
    let unknown = PART2.replace("Organization/maple", "Organization/org-other");
    let errors: Vec<String> = index(&[("c.json", &unknown)])
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("c.json:13:85: actor `Organization/org-other` is not a partner"),
        "{errors:?}"
    );
}

#[test]
fn a_root_provision_naming_the_label_is_the_rule_for_that_data() {
    // How source systems write a Part 2 consent: one root permit with
    // actor, purpose and the ETH label, no nested provisions.
    let root = r#"{
  "resourceType": "Consent",
  "id": "part2-root",
  "status": "active",
  "scope": {"coding": [{"code": "patient-privacy"}]},
  "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
  "patient": {"reference": "Patient/p4"},
  "dateTime": "2026-02-01T10:00:00Z",
  "provision": {
    "type": "permit",
    "period": {"start": "2026-02-01"},
    "actor": [{"role": {"coding": [{"code": "IRCP"}]}, "reference": {"reference": "Organization/org-maple"}}],
    "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
    "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ETH"}]
  }
}"#;
    let index = index(&[("r.json", root)]).unwrap();
    let maple = PartnerId::parse("maple").unwrap();
    let other = PartnerId::parse("other").unwrap();
    let treat = Purpose::parse("TREAT").unwrap();
    let caremgt = Purpose::parse("CAREMGT").unwrap();
    let eth = BTreeSet::from([Coding::new(
        "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "ETH",
    )]);
    let rule = |partner, purpose, at| {
        let q = ConsentQuery {
            partner,
            purpose,
            at,
        };
        index.for_labels("Patient/p4", &eth, &q).rule
    };
    let june = datetime!(2026-06-01 0:00 UTC);
    assert_eq!(rule(&maple, &treat, june), ConsentRule::Permit);
    assert_eq!(
        rule(&other, &treat, june),
        ConsentRule::Deny,
        "not the named recipient"
    );
    assert_eq!(
        rule(&maple, &caremgt, june),
        ConsentRule::Deny,
        "not the named purpose"
    );
    assert_eq!(
        rule(&maple, &treat, datetime!(2026-01-15 0:00 UTC)),
        ConsentRule::Deny,
        "before the consent"
    );
    let hiv = BTreeSet::from([Coding::new(
        "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "HIV",
    )]);
    let q = ConsentQuery {
        partner: &maple,
        purpose: &treat,
        at: june,
    };
    assert_eq!(
        index.for_labels("Patient/p4", &hiv, &q).rule,
        ConsentRule::Deny,
        "another category is not consented to"
    );
}
