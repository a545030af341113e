//! One agreement file → [`Agreement`], every error located.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use accord_fhir::{InteractionKind, Purpose, ResourceType, SearchParams};

use super::dates::{Boundary, to_instant};
use super::others::parse_checked;
use crate::agreement::{
    Agreement, AgreementFile, AgreementStatus, Caps, Forbid, ForbidEntry, Grant, GrantEntry,
    SearchConstraint, Term, UNCLASSIFIED_WITHHELD_BY_DEFAULT, UnclassifiedEntry,
};
use crate::cohort::Cohort;
use crate::elements;
use crate::ids::{CategoryId, CohortId, PartnerId};
use crate::partner::Partner;
use crate::schema::SchemaKind;
use crate::sensitivity::Category;
use crate::source::{PolicyError, SourceFile};

/// What an agreement may refer to.
pub(crate) struct Refs<'a> {
    pub partners: &'a BTreeMap<PartnerId, Partner>,
    pub cohorts: &'a BTreeMap<CohortId, Cohort>,
    pub categories: &'a BTreeMap<CategoryId, Category>,
}

struct Errors<'a> {
    source: &'a SourceFile,
    list: &'a mut Vec<PolicyError>,
}

impl Errors<'_> {
    fn at(&mut self, span: Range<usize>, message: String, hint: &str) {
        self.list
            .push(self.source.error_hint(Some(span), message, hint));
    }
}

pub(crate) fn compile_agreement(
    source: &SourceFile,
    refs: &Refs<'_>,
    template: Option<String>,
    errors: &mut Vec<PolicyError>,
) -> Option<Agreement> {
    let file: AgreementFile = parse_checked(source, SchemaKind::Agreement, errors)?;
    let before = errors.len();
    let mut e = Errors {
        source,
        list: errors,
    };

    let version = match u32::try_from(*file.version.get_ref()) {
        Ok(v) if v >= 1 => v,
        _ => {
            e.at(
                file.version.span(),
                "version must be a whole number from 1".to_owned(),
                "raise the version whenever the signed text changes",
            );
            0
        }
    };

    let mut parties = BTreeSet::new();
    for party in file.parties.get_ref() {
        if !refs.partners.contains_key(party.get_ref()) {
            e.at(
                party.span(),
                format!(
                    "party `{}` is not in partners.toml{}",
                    party.get_ref(),
                    crate::suggest::did_you_mean(
                        party.get_ref().as_str(),
                        refs.partners.keys().map(PartnerId::as_str)
                    )
                ),
                "add the partner to partners.toml or correct the id",
            );
        }
        if !parties.insert(party.get_ref().clone()) {
            e.at(
                party.span(),
                format!("party `{}` is listed twice", party.get_ref()),
                "list each party once",
            );
        }
    }
    if parties.len() < 2 {
        e.at(
            file.parties.span(),
            "an agreement needs at least two parties".to_owned(),
            "list every organization that signed",
        );
    }

    let status = status(&mut e, &file.status);

    let effective = to_instant(file.effective.get_ref(), Boundary::Start);
    let expires = to_instant(file.expires.get_ref(), Boundary::End);
    let date_hint = "dates are written 2026-01-31 (no quotes)";
    let term = match (effective, expires) {
        (Ok(effective), Ok(expires)) if effective < expires => Some(Term { effective, expires }),
        (Ok(_), Ok(_)) => {
            e.at(
                file.expires.span(),
                "`expires` must be after `effective`".to_owned(),
                "the agreement would never be in force: check the two dates (`expires` is the last day covered)",
            );
            None
        }
        (Err(m), _) => {
            e.at(file.effective.span(), m, date_hint);
            None
        }
        (_, Err(m)) => {
            e.at(file.expires.span(), m, date_hint);
            None
        }
    };

    let purposes = purposes(&mut e, file.purposes.get_ref());
    if file.purposes.get_ref().is_empty() {
        e.at(
            file.purposes.span(),
            "list at least one purpose of use".to_owned(),
            "e.g. purposes = [\"TREAT\"]",
        );
    }

    let mut grants: Vec<Grant> = Vec::new();
    let mut rule_ids = BTreeSet::new();
    for entry in file.grant {
        if !rule_ids.insert(entry.id.get_ref().clone()) {
            e.at(
                entry.id.span(),
                format!("rule `{}` is declared twice", entry.id.get_ref()),
                "grant and forbid ids are unique within an agreement",
            );
        }
        grants.push(compile_grant(entry, &parties, refs, &mut e));
    }
    let mut forbids = Vec::new();
    for entry in file.forbid {
        if !rule_ids.insert(entry.id.get_ref().clone()) {
            e.at(
                entry.id.span(),
                format!("rule `{}` is declared twice", entry.id.get_ref()),
                "grant and forbid ids are unique within an agreement",
            );
        }
        forbids.push(compile_forbid(entry, &parties, refs, &mut e));
    }

    let unclassified_withheld = unclassified(&mut e, file.unclassified.as_ref());

    if errors.len() > before {
        return None;
    }
    Some(Agreement {
        unclassified_withheld,
        written: source.written(file.id.span()),
        expires_written: source.written(file.expires.span()),
        purposes_written: source.written(file.purposes.span()),
        id: file.id.into_inner(),
        version,
        title: file.title,
        document: file.document,
        status,
        parties,
        term: term?,
        purposes,
        grants,
        forbids,
        source: source.name.clone(),
        template,
    })
}

/// HL7 v3 PurposeOfUse codes, for suggestions.
const PURPOSES: &[&str] = &[
    "TREAT",
    "ETREAT",
    "CAREMGT",
    "COC",
    "HPAYMT",
    "HOPERAT",
    "HQUALIMP",
    "PUBHLTH",
    "HRESCH",
    "PATRQT",
    "FAMRQT",
    "PWATRNY",
    "SUPNWK",
    "HLEGAL",
    "HMARKT",
    "HSYSADMIN",
    "TRAIN",
    "CLMATTCH",
    "COVERAGE",
    "HDIRECT",
    "HCOMPL",
    "HPRGRP",
    "HTEST",
    "PATADMIN",
    "DONAT",
    "FRAUD",
    "GOV",
    "HACCRED",
    "HDM",
    "HOUTCOMS",
    "PATSFTY",
    "PERFMSR",
    "RECORDMGT",
    "SYSDEV",
    "BTG",
    "ERTREAT",
];

fn status(e: &mut Errors<'_>, written: &toml::Spanned<String>) -> AgreementStatus {
    const ALL: [(&str, AgreementStatus); 4] = [
        ("draft", AgreementStatus::Draft),
        ("active", AgreementStatus::Active),
        ("suspended", AgreementStatus::Suspended),
        ("terminated", AgreementStatus::Terminated),
    ];
    if let Some((_, status)) = ALL.iter().find(|(name, _)| *name == written.get_ref()) {
        return *status;
    }
    e.at(
        written.span(),
        format!(
            "unknown status `{}`{}",
            written.get_ref(),
            crate::suggest::did_you_mean(written.get_ref(), ALL.iter().map(|(n, _)| *n))
        ),
        "status is one of draft, active, suspended, terminated (lower case)",
    );
    // Never grants: an agreement whose status cannot be read is a draft.
    AgreementStatus::Draft
}

fn purposes(e: &mut Errors<'_>, list: &[toml::Spanned<String>]) -> BTreeSet<Purpose> {
    let mut out = BTreeSet::new();
    for p in list {
        match Purpose::parse(p.get_ref()) {
            Ok(p) => {
                out.insert(p);
            }
            Err(err) => e.at(
                p.span(),
                format!(
                    "{err}{}",
                    crate::suggest::did_you_mean(p.get_ref(), PURPOSES.iter().copied())
                ),
                "use HL7 v3 PurposeOfUse codes: TREAT, ETREAT, CAREMGT, COC, HPAYMT, HOPERAT, HQUALIMP, PUBHLTH, HRESCH, ..."),
        }
    }
    out
}

/// The types withheld when unclassifiable: the default, plus `withhold`,
/// less `release`.
fn unclassified(e: &mut Errors<'_>, entry: Option<&UnclassifiedEntry>) -> BTreeSet<ResourceType> {
    let mut out: BTreeSet<ResourceType> = UNCLASSIFIED_WITHHELD_BY_DEFAULT
        .iter()
        .filter_map(|t| ResourceType::parse(t).ok())
        .collect();
    let Some(entry) = entry else {
        return out;
    };
    let withhold = resource_types(e, &entry.withhold);
    let release = resource_types(e, &entry.release);
    for r in &entry.release {
        if ResourceType::parse(r.get_ref()).is_ok_and(|t| withhold.contains(&t)) {
            e.at(
                r.span(),
                format!(
                    "`{}` is both withheld and released when unclassified",
                    r.get_ref()
                ),
                "name each type in one list only",
            );
        }
    }
    out.extend(withhold);
    out.retain(|t| !release.contains(t));
    out
}

fn resource_types(e: &mut Errors<'_>, list: &[toml::Spanned<String>]) -> BTreeSet<ResourceType> {
    let mut out = BTreeSet::new();
    for r in list {
        match ResourceType::parse(r.get_ref()) {
            Ok(t) => {
                out.insert(t);
            }
            Err(_) => e.at(
                r.span(),
                format!(
                    "`{}` is not a FHIR R4 resource type{}",
                    r.get_ref(),
                    crate::suggest::did_you_mean(
                        r.get_ref(),
                        ResourceType::all().map(|t| t.as_str())
                    )
                ),
                "resource types are spelled exactly as in FHIR R4, e.g. `Observation`",
            ),
        }
    }
    out
}

fn interactions(
    e: &mut Errors<'_>,
    list: &[toml::Spanned<String>],
) -> (BTreeSet<InteractionKind>, BTreeSet<String>) {
    let mut kinds = BTreeSet::new();
    let mut operations = BTreeSet::new();
    for name in list {
        if let Some(op) = name.get_ref().strip_prefix('$') {
            if !op.is_empty() && op.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                operations.insert(op.to_owned());
                kinds.insert(InteractionKind::Operation);
            } else {
                e.at(
                    name.span(),
                    format!("`{}` is not an operation name", name.get_ref()),
                    "e.g. `$everything`",
                );
            }
            continue;
        }
        match InteractionKind::parse(name.get_ref()) {
            Some(InteractionKind::Operation) => e.at(
                name.span(),
                "`operation` alone grants no operation; name it".to_owned(),
                "write the operation, e.g. `$everything`",
            ),
            Some(kind) => {
                kinds.insert(kind);
            }
            None => {
                let known: Vec<_> = InteractionKind::ALL.iter().map(|k| k.as_str()).collect();
                e.at(
                    name.span(),
                    format!(
                        "unknown interaction `{}`{} (one of: {})",
                        name.get_ref(),
                        crate::suggest::did_you_mean(name.get_ref(), known.iter().copied()),
                        known.join(", ")
                    ),
                    "or an operation such as `$everything`",
                );
            }
        }
    }
    (kinds, operations)
}

fn recipients(
    e: &mut Errors<'_>,
    list: &[toml::Spanned<PartnerId>],
    parties: &BTreeSet<PartnerId>,
) -> BTreeSet<PartnerId> {
    let mut out = BTreeSet::new();
    for r in list {
        if !parties.contains(r.get_ref()) {
            e.at(
                r.span(),
                format!(
                    "recipient `{}` is not a party to this agreement{}",
                    r.get_ref(),
                    crate::suggest::did_you_mean(
                        r.get_ref().as_str(),
                        parties.iter().map(PartnerId::as_str)
                    )
                ),
                "add it to `parties` (if it signed) or remove it",
            );
        }
        out.insert(r.get_ref().clone());
    }
    out
}

fn categories(
    e: &mut Errors<'_>,
    list: &[toml::Spanned<CategoryId>],
    refs: &Refs<'_>,
) -> BTreeSet<CategoryId> {
    let mut out = BTreeSet::new();
    for c in list {
        if !refs.categories.contains_key(c.get_ref()) {
            let known: Vec<_> = refs.categories.keys().map(|k| k.as_str()).collect();
            e.at(
                c.span(),
                format!(
                    "sensitivity category `{}` is not defined{}",
                    c.get_ref(),
                    crate::suggest::did_you_mean(c.get_ref().as_str(), known.iter().copied())
                ),
                &format!("defined in policies/sensitivity/: {}", known.join(", ")),
            );
        }
        out.insert(c.get_ref().clone());
    }
    out
}

fn compile_grant(
    entry: GrantEntry,
    parties: &BTreeSet<PartnerId>,
    refs: &Refs<'_>,
    e: &mut Errors<'_>,
) -> Grant {
    let recipients = recipients(e, entry.recipients.get_ref(), parties);
    if recipients.is_empty() {
        e.at(
            entry.recipients.span(),
            "a grant needs at least one recipient".to_owned(),
            "name the receiving parties",
        );
    }
    if let Some(source) = &entry.source
        && !parties.contains(source.get_ref())
    {
        e.at(
            source.span(),
            format!(
                "source `{}` is not a party to this agreement",
                source.get_ref()
            ),
            "the source is the party whose data is shared",
        );
    }
    let resources = resource_types(e, entry.resources.get_ref());
    if entry.resources.get_ref().is_empty() {
        e.at(
            entry.resources.span(),
            "a grant needs at least one resource type".to_owned(),
            "e.g. resources = [\"Observation\"]",
        );
    }
    let (interactions, operations) = interactions(e, entry.interactions.get_ref());
    if entry.interactions.get_ref().is_empty() {
        e.at(
            entry.interactions.span(),
            "a grant needs at least one interaction".to_owned(),
            "e.g. interactions = [\"read\", \"search\"]",
        );
    }
    if let Some(cohort) = &entry.cohort
        && !refs.cohorts.contains_key(cohort.get_ref())
    {
        let known: Vec<_> = refs.cohorts.keys().map(|k| k.as_str()).collect();
        e.at(
            cohort.span(),
            format!(
                "cohort `{}` is not defined{}",
                cohort.get_ref(),
                crate::suggest::did_you_mean(cohort.get_ref().as_str(), known.iter().copied())
            ),
            &format!(
                "define it in policies/cohorts/ (known: {})",
                known.join(", ")
            ),
        );
    }
    let mut constraints = Vec::new();
    for c in &entry.constraints {
        match parse_constraint(c.get_ref()) {
            Ok(constraint) if resources.contains(&constraint.resource) => {
                constraints.push(constraint);
            }
            Ok(constraint) => e.at(
                c.span(),
                format!(
                    "constraint on `{}`, which this grant does not share",
                    constraint.resource
                ),
                "add the type to `resources` or drop the constraint",
            ),
            Err(m) => e.at(
                c.span(),
                m,
                "write `Type?param=value`, e.g. `Observation?category=laboratory`",
            ),
        }
    }
    let mut redact = Vec::new();
    for r in &entry.redact {
        let path = r.get_ref();
        if let Err(m) = elements::check_path(path) {
            e.at(
                r.span(),
                m,
                "element paths are `Type.element` as in the FHIR R4 resource pages",
            );
            continue;
        }
        let ty = path.split('.').next().unwrap_or_default();
        if !resources.iter().any(|t| t.as_str() == ty) {
            e.at(
                r.span(),
                format!("redaction of `{path}`, but this grant does not share `{ty}`"),
                "redact elements of the types in `resources`",
            );
        }
        redact.push(path.clone());
    }
    let sensitive = categories(e, &entry.sensitive, refs);
    let grant_purposes = entry
        .purposes
        .as_ref()
        .map(|p| purposes(e, p.get_ref()))
        .unwrap_or_default();
    let purposes_written = entry.purposes.as_ref().map_or_else(
        || e.source.written(entry.id.span()),
        |p| e.source.written(p.span()),
    );
    let written = e.source.written(entry.id.span());
    let caps = entry.caps.map_or(Caps::default(), |c| Caps {
        resources_per_day: c.resources_per_day,
        requests_per_day: c.requests_per_day,
    });
    Grant {
        id: entry.id.into_inner(),
        recipients,
        source: entry.source.map(toml::Spanned::into_inner),
        resources,
        interactions,
        operations,
        cohort: entry.cohort.map(toml::Spanned::into_inner),
        constraints,
        redact,
        sensitive,
        caps,
        population_search: entry.population_search,
        purposes: grant_purposes,
        written,
        purposes_written,
    }
}

fn compile_forbid(
    entry: ForbidEntry,
    parties: &BTreeSet<PartnerId>,
    refs: &Refs<'_>,
    e: &mut Errors<'_>,
) -> Forbid {
    let (interactions, _) = interactions(e, &entry.interactions);
    // A forbid that names no recipient binds every party of its agreement.
    let recipients = if entry.recipients.is_empty() {
        parties.clone()
    } else {
        recipients(e, &entry.recipients, parties)
    };
    Forbid {
        written: e.source.written(entry.id.span()),
        recipients,
        resources: resource_types(e, &entry.resources),
        interactions,
        purposes: purposes(e, &entry.purposes),
        sensitive: categories(e, &entry.sensitive, refs),
        id: entry.id.into_inner(),
        reason: entry.reason,
    }
}

/// Parses `Observation?category=laboratory`.
pub(crate) fn parse_constraint(text: &str) -> Result<SearchConstraint, String> {
    let (ty, query) = text
        .split_once('?')
        .ok_or_else(|| format!("constraint `{text}` has no `?`"))?;
    let resource =
        ResourceType::parse(ty).map_err(|_| format!("`{ty}` is not a FHIR R4 resource type"))?;
    let params =
        SearchParams::parse_query(query).map_err(|e| format!("constraint `{text}`: {e}"))?;
    if params.is_empty() {
        return Err(format!("constraint `{text}` has no parameters"));
    }
    Ok(SearchConstraint {
        resource,
        params: params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        text: text.to_owned(),
    })
}
