//! Partners, cohorts and sensitivity categories.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::cohort::{Cohort, CohortEntry, CohortFile, CohortMembers, InlineCohorts};
use crate::ids::{CategoryId, CohortId, PartnerId};
use crate::partner::{Partner, PartnerEntry, PartnersFile, SpkiPin};
use crate::schema::{self, SchemaKind};
use crate::sensitivity::{Category, CodeSet, CodeSetEntry, Coding, SensitivityFile};
use crate::source::{PolicyError, SourceFile};
use crate::spans::SpannedDoc;

/// Schema-checks then deserializes a TOML policy file.
pub(crate) fn parse_checked<T: serde::de::DeserializeOwned>(
    source: &SourceFile,
    kind: SchemaKind,
    errors: &mut Vec<PolicyError>,
) -> Option<T> {
    let doc = match SpannedDoc::from_toml(source) {
        Ok(doc) => doc,
        Err(e) => {
            errors.extend(e);
            return None;
        }
    };
    let found = schema::validate(kind, source, &doc);
    let shape_ok = found.is_empty();
    errors.extend(found);
    // Carry on after schema errors when the typed form still reads, so the
    // meaning is checked too (duplicates at one position are dropped later).
    match source.parse_toml() {
        Ok(v) => Some(v),
        Err(e) => {
            if shape_ok {
                errors.push(e.with_hint(format!("see policies/schema/{}", kind.file_name())));
            }
            None
        }
    }
}

pub(crate) type PartnerIndex = (BTreeMap<PartnerId, Partner>, HashMap<SpkiPin, PartnerId>);

pub(crate) fn compile_partners(source: &SourceFile, errors: &mut Vec<PolicyError>) -> PartnerIndex {
    let mut partners = BTreeMap::new();
    let mut by_pin: HashMap<SpkiPin, PartnerId> = HashMap::new();
    let Some(file) = parse_checked::<PartnersFile>(source, SchemaKind::Partners, errors) else {
        return (partners, by_pin);
    };
    for entry in file.partner {
        let span = entry.span();
        let PartnerEntry {
            id,
            name,
            identifiers,
            organization,
            source_systems,
            contact,
            address,
            status,
            spki_sha256,
        } = entry.into_inner();
        let id_span = id.span();
        let id = id.into_inner();
        if partners.contains_key(&id) {
            errors.push(source.error_hint(
                Some(id_span),
                format!("partner `{id}` is declared twice"),
                "each partner id must be unique; merge the two entries",
            ));
            continue;
        }
        let mut pins = Vec::new();
        for pin in spki_sha256 {
            let pin_span = pin.span();
            let pin = pin.into_inner();
            if let Some(owner) = by_pin.insert(pin.clone(), id.clone()) {
                errors.push(source.error_hint(
                    Some(pin_span),
                    format!("this pin is already assigned to partner `{owner}`"),
                    "a certificate key identifies exactly one partner",
                ));
            }
            pins.push(pin);
        }
        if name.trim().is_empty() {
            errors.push(source.error(Some(span), format!("partner `{id}` has an empty name")));
        }
        partners.insert(
            id.clone(),
            Partner {
                id,
                name,
                identifiers,
                organization,
                source_systems,
                contact,
                // Blank means not given: the accounting then says so.
                address: address.filter(|a| !a.trim().is_empty()),
                status,
                spki_sha256: pins,
            },
        );
    }
    (partners, by_pin)
}

pub(crate) fn compile_categories(
    sources: &[SourceFile],
    errors: &mut Vec<PolicyError>,
) -> BTreeMap<CategoryId, Category> {
    let mut out = BTreeMap::new();
    let mut extensions = Vec::new();
    for source in sources {
        let Some(file) = parse_checked::<SensitivityFile>(source, SchemaKind::Sensitivity, errors)
        else {
            continue;
        };
        for entry in file.category {
            let id = entry.id.get_ref().clone();
            if out.contains_key(&id) {
                errors.push(source.error_hint(
                    Some(entry.id.span()),
                    format!("sensitivity category `{id}` is defined twice"),
                    "category ids must be unique across policies/sensitivity/; to add codes to a category defined elsewhere, use an [[extend]] table",
                ));
                continue;
            }
            let security_labels = compile_labels(source, &entry.security_labels, errors);
            let codes = compile_code_sets(source, entry.codes, errors);
            out.insert(
                id.clone(),
                Category {
                    id,
                    name: entry.name,
                    sources: entry.sources,
                    requires_consent: entry.requires_consent,
                    security_labels,
                    codes,
                    source: source.name.clone(),
                },
            );
        }
        extensions.extend(file.extend.into_iter().map(|e| (source, e)));
    }
    // Extensions apply after every file is read, so a privacy officer's
    // own file may extend a category whatever the file names' order.
    for (source, extension) in extensions {
        let id = extension.category.get_ref();
        let Some(category) = out.get_mut(id) else {
            errors.push(source.error_hint(
                Some(extension.category.span()),
                format!("there is no sensitivity category `{id}` to extend"),
                "extend one of the categories defined in policies/sensitivity/ (e.g. part2, hiv-sti)",
            ));
            continue;
        };
        category
            .security_labels
            .extend(compile_labels(source, &extension.security_labels, errors));
        category
            .codes
            .extend(compile_code_sets(source, extension.codes, errors));
        if !extension.sources.is_empty() {
            category.sources.extend(extension.sources);
        }
    }
    out
}

fn compile_labels(
    source: &SourceFile,
    list: &[toml::Spanned<String>],
    errors: &mut Vec<PolicyError>,
) -> BTreeSet<Coding> {
    let mut labels = BTreeSet::new();
    for label in list {
        match Coding::parse(label.get_ref()) {
            Some(c) => {
                labels.insert(c);
            }
            None => errors.push(source.error_hint(
                Some(label.span()),
                format!("`{}` is not `system|code`", label.get_ref()),
                "e.g. http://terminology.hl7.org/CodeSystem/v3-ActCode|ETH",
            )),
        }
    }
    labels
}

fn compile_code_sets(
    source: &SourceFile,
    sets: Vec<CodeSetEntry>,
    errors: &mut Vec<PolicyError>,
) -> Vec<CodeSet> {
    let mut codes = Vec::new();
    for set in sets {
        let mut ranges = Vec::new();
        for range in set.ranges {
            match range.get_ref().as_slice() {
                [lo, hi] if lo <= hi => ranges.push((lo.clone(), hi.clone())),
                _ => errors.push(source.error_hint(
                    Some(range.span()),
                    "a range is `[low, high]` with low <= high".to_owned(),
                    "e.g. [\"F10\", \"F19\"]",
                )),
            }
        }
        let mut terms = Vec::new();
        for term in set.terms {
            let words = term.get_ref().trim().to_lowercase();
            if words.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
                errors.push(source.error_hint(
                    Some(term.span()),
                    format!("the display term `{}` is too short to match safely", term.get_ref()),
                    "use a drug or condition name of at least three letters, e.g. \"buprenorphine\"",
                ));
                continue;
            }
            terms.push(words);
        }
        codes.push(CodeSet {
            system: set.system,
            codes: set.codes.into_iter().collect(),
            ranges,
            terms,
        });
    }
    codes
}

pub(crate) fn compile_cohorts(
    sources: &[SourceFile],
    agreements: &[SourceFile],
    groups: &[SourceFile],
    partners: &BTreeMap<PartnerId, Partner>,
    errors: &mut Vec<PolicyError>,
) -> BTreeMap<CohortId, Cohort> {
    let mut out = BTreeMap::new();
    let mut files: Vec<(&SourceFile, Vec<CohortEntry>)> = Vec::new();
    for source in sources {
        if let Some(file) = parse_checked::<CohortFile>(source, SchemaKind::Cohort, errors) {
            files.push((source, file.cohort));
        }
    }
    // Agreement files may declare their own cohorts; shape errors there are
    // reported when the agreement itself is checked.
    for source in agreements {
        if source.text.contains("[[cohort]]")
            && let Ok(file) = source.parse_toml::<InlineCohorts>()
        {
            files.push((source, file.cohort));
        }
    }
    for (source, entries) in files {
        for entry in entries {
            let id = entry.id.get_ref().clone();
            if out.contains_key(&id) {
                errors.push(source.error_hint(
                    Some(entry.id.span()),
                    format!("cohort `{id}` is defined twice"),
                    "cohort ids must be unique across policies/cohorts/",
                ));
                continue;
            }
            let members = match entry.kind.get_ref().as_str() {
                "list" => CohortMembers::List(entry.patients.into_iter().collect()),
                "group" => {
                    let Some(file) = entry.group else {
                        errors.push(source.error_hint(
                            Some(entry.kind.span()),
                            format!("cohort `{id}` is a group but names no `group` file"),
                            "add group = \"<file>.json\" (a FHIR Group in policies/cohorts/)",
                        ));
                        continue;
                    };
                    match group_members(file.get_ref(), groups) {
                        Ok(patients) => CohortMembers::Group {
                            file: file.get_ref().clone(),
                            patients,
                        },
                        Err(message) => {
                            errors.push(source.error_hint(
                                Some(file.span()),
                                message,
                                "the Group file sits in policies/cohorts/ and lists member.entity references to Patient/<id>",
                            ));
                            continue;
                        }
                    }
                }
                _ => {
                    let mut between = BTreeSet::new();
                    for p in &entry.between {
                        if !partners.contains_key(p.get_ref()) {
                            errors.push(source.error_hint(
                                Some(p.span()),
                                format!("party `{}` is not in partners.toml", p.get_ref()),
                                "referral cohorts name partners by id",
                            ));
                        }
                        between.insert(p.get_ref().clone());
                    }
                    if between.len() < 2 {
                        errors.push(source.error_hint(
                            Some(entry.kind.span()),
                            format!(
                                "referral cohort `{id}` needs `between` with two or more partners"
                            ),
                            "e.g. between = [\"riverside-bh\", \"maple-primary\"]",
                        ));
                    }
                    let mut referrers = BTreeSet::new();
                    for p in &entry.referrers {
                        if !between.contains(p.get_ref()) {
                            errors.push(source.error_hint(
                                Some(p.span()),
                                format!("referrer `{}` is not one of `between`", p.get_ref()),
                                "referrers are the parties of `between` whose referrals count",
                            ));
                        }
                        referrers.insert(p.get_ref().clone());
                    }
                    CohortMembers::Referral {
                        between,
                        referrers: (!referrers.is_empty()).then_some(referrers),
                    }
                }
            };
            out.insert(
                id.clone(),
                Cohort {
                    id,
                    description: entry.description,
                    members,
                    source: source.name.clone(),
                },
            );
        }
    }
    out
}

fn group_members(name: &str, groups: &[SourceFile]) -> Result<BTreeSet<String>, String> {
    let file = groups
        .iter()
        .find(|g| g.name.ends_with(&format!("/{name}")) || g.name == name)
        .ok_or_else(|| format!("group file `{name}` not found"))?;
    let value: serde_json::Value = serde_json::from_str(&file.text)
        .map_err(|e| format!("group file `{name}` is not JSON: {e}"))?;
    if value
        .get("resourceType")
        .and_then(serde_json::Value::as_str)
        != Some("Group")
    {
        return Err(format!("`{name}` is not a FHIR Group resource"));
    }
    let mut patients = BTreeSet::new();
    for member in value
        .get("member")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        match member
            .pointer("/entity/reference")
            .and_then(serde_json::Value::as_str)
        {
            Some(r) if r.starts_with("Patient/") => {
                patients.insert(r.to_owned());
            }
            other => {
                return Err(format!(
                    "`{name}`: member `{}` is not a Patient reference",
                    other.unwrap_or("?")
                ));
            }
        }
    }
    Ok(patients)
}
