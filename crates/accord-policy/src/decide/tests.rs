use super::*;
use crate::source::SourceFile;
use time::macros::datetime;

fn shipped_policies() -> PolicySet {
    let partners = SourceFile::new(
        "partners.toml",
        include_str!("../../../../policies/partners.toml"),
    );
    let agreements = [
        (
            "care-coordination.toml",
            include_str!("../../../../policies/agreements/care-coordination.toml"),
        ),
        (
            "quality-reporting.toml",
            include_str!("../../../../policies/agreements/quality-reporting.toml"),
        ),
        (
            "pilot-2024.toml",
            include_str!("../../../../policies/agreements/pilot-2024.toml"),
        ),
    ]
    .map(|(name, text)| SourceFile::new(name, text));
    PolicySet::compile(&partners, &agreements).unwrap()
}

fn pid(s: &str) -> PartnerId {
    PartnerId::parse(s).unwrap()
}

fn ask(
    set: &PolicySet,
    partner: &str,
    purpose: &str,
    interaction: InteractionKind,
    ty: Option<&str>,
) -> Decision {
    let partner = pid(partner);
    let purpose = Purpose::parse(purpose).unwrap();
    set.decide(&AccessRequest {
        partner: &partner,
        purpose: &purpose,
        interaction,
        resource_type: ty.map(|t| ResourceType::parse(t).unwrap()),
        at: datetime!(2026-06-15 12:00 UTC),
        patient: Some("Patient/example".to_owned()),
        operation: None,
    })
}

fn reason(decision: Decision) -> DenyReason {
    match decision {
        Decision::Deny(deny) => deny.reason,
        Decision::Permit(p) => panic!("expected a denial, got {p:?}"),
    }
}

#[test]
fn permits_through_the_matching_grant_and_names_it() {
    let set = shipped_policies();
    let decision = ask(
        &set,
        "maple-primary",
        "TREAT",
        InteractionKind::Read,
        Some("Condition"),
    );
    let Decision::Permit(Permit::Grant {
        agreement,
        agreement_version,
        grant,
        obligations,
    }) = &decision
    else {
        panic!("expected a grant, got {decision:?}");
    };
    assert_eq!(
        (agreement, *agreement_version, grant),
        (
            &AgreementId::parse("care-coordination-2026").unwrap(),
            1,
            &GrantId::parse("clinical-record").unwrap()
        )
    );
    assert_eq!(obligations.rules[0].rule, "clinical-record");
    assert!(obligations.policy_version.as_str().starts_with("sha256:"));
    assert_eq!(
        decision.rule(),
        "permit: agreement `care-coordination-2026` v1 grant `clinical-record`"
    );
}

#[test]
fn denies_types_and_interactions_no_grant_covers() {
    let set = shipped_policies();
    assert!(matches!(
        reason(ask(
            &set,
            "riverside-bh",
            "TREAT",
            InteractionKind::Read,
            Some("Immunization")
        )),
        DenyReason::ResourceTypeNotGranted { .. }
    ));
    // The clinic's current grant leaves out Condition; the expired pilot,
    // which granted it, is the better explanation.
    assert!(matches!(
        reason(ask(
            &set,
            "riverside-bh",
            "TREAT",
            InteractionKind::Read,
            Some("Condition")
        )),
        DenyReason::OutsideTerm { .. }
    ));
    assert!(matches!(
        reason(ask(
            &set,
            "maple-primary",
            "TREAT",
            InteractionKind::Delete,
            Some("Patient")
        )),
        DenyReason::InteractionNotGranted { .. }
    ));
}

#[test]
fn denies_purposes_the_agreement_does_not_list() {
    let set = shipped_policies();
    assert!(matches!(
        reason(ask(
            &set,
            "maple-primary",
            "HPAYMT",
            InteractionKind::Read,
            Some("Patient")
        )),
        DenyReason::PurposeNotPermitted { .. }
    ));
}

#[test]
fn suspended_and_expired_agreements_grant_nothing() {
    let set = shipped_policies();
    let suspended = reason(ask(
        &set,
        "st-brigid",
        "HOPERAT",
        InteractionKind::Search,
        Some("Observation"),
    ));
    assert!(
        matches!(
            suspended,
            DenyReason::AgreementNotActive {
                status: AgreementStatus::Suspended,
                ..
            }
        ),
        "{suspended:?}"
    );
    let expired = reason(ask(
        &set,
        "riverside-bh",
        "TREAT",
        InteractionKind::Read,
        Some("DocumentReference"),
    ));
    assert!(
        matches!(expired, DenyReason::OutsideTerm { .. }),
        "{expired:?}"
    );
}

#[test]
fn term_boundaries_are_inclusive_start_exclusive_end() {
    let set = shipped_policies();
    let partner = pid("maple-primary");
    let purpose = Purpose::parse("TREAT").unwrap();
    let at = |at| {
        set.decide(&AccessRequest {
            partner: &partner,
            purpose: &purpose,
            interaction: InteractionKind::Read,
            resource_type: Some(ResourceType::PATIENT),
            at,
            patient: None,
            operation: None,
        })
        .is_permit()
    };
    assert!(!at(datetime!(2025-12-31 23:59:59 UTC)));
    assert!(at(datetime!(2026-01-01 00:00 UTC)));
    assert!(
        at(datetime!(2028-12-31 23:59:59 UTC)),
        "the expiry day itself is covered"
    );
    assert!(!at(datetime!(2029-01-01 00:00 UTC)));
}

#[test]
fn unknown_and_inactive_partners_and_system_level_requests_are_denied() {
    let set = shipped_policies();
    assert_eq!(
        reason(ask(
            &set,
            "nobody",
            "TREAT",
            InteractionKind::Read,
            Some("Patient")
        )),
        DenyReason::UnknownPartner
    );
    assert_eq!(
        reason(ask(
            &set,
            "maple-primary",
            "TREAT",
            InteractionKind::Search,
            None
        )),
        DenyReason::SystemLevel
    );
    assert!(
        ask(
            &set,
            "maple-primary",
            "TREAT",
            InteractionKind::Capabilities,
            None
        )
        .is_permit()
    );

    let partners = SourceFile::new(
        "partners.toml",
        include_str!("../../../../policies/partners.toml").replacen(
            "status = \"active\"",
            "status = \"suspended\"",
            1,
        ),
    );
    let set = PolicySet::compile(&partners, &[]).unwrap();
    assert_eq!(
        reason(ask(
            &set,
            "riverside-bh",
            "TREAT",
            InteractionKind::Read,
            Some("Patient")
        )),
        DenyReason::PartnerNotActive {
            status: PartnerStatus::Suspended
        }
    );
}
