//! Compiling policy files into a [`PolicySet`], with every error located.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use accord_fhir::InteractionKind;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::PolicySet;
use crate::agreement::{Agreement, AgreementFile, Grant, GrantEntry, Term};
use crate::ids::{AgreementId, PartnerId};
use crate::partner::{Partner, PartnerEntry, PartnersFile, SpkiPin};
use crate::source::{PolicyError, SourceFile};

/// Every error found in a set of policy files (loading does not stop at the
/// first, so a legal team sees all of them at once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

// === impl PolicySet ===

impl PolicySet {
    /// Reads `dir/partners.toml` and every `dir/agreements/*.toml` (in name
    /// order) and compiles them.
    pub fn load_dir(dir: &Path) -> Result<PolicySet, PolicyErrors> {
        let io_error = |path: &Path, e: std::io::Error| {
            PolicyErrors(vec![PolicyError {
                location: None,
                message: format!("{}: {e}", path.display()),
            }])
        };
        let read = |path: &Path| -> Result<SourceFile, PolicyErrors> {
            let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
            Ok(SourceFile::new(path.display().to_string(), text))
        };
        let partners = read(&dir.join("partners.toml"))?;
        let agreements_dir = dir.join("agreements");
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(&agreements_dir).map_err(|e| io_error(&agreements_dir, e))? {
            let path = entry.map_err(|e| io_error(&agreements_dir, e))?.path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                paths.push(path);
            }
        }
        paths.sort();
        let agreements = paths
            .iter()
            .map(|p| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        PolicySet::compile(&partners, &agreements)
    }

    /// Compiles partner and agreement sources; pure, no I/O.
    pub fn compile(
        partners: &SourceFile,
        agreements: &[SourceFile],
    ) -> Result<PolicySet, PolicyErrors> {
        let mut errors = Vec::new();
        let partners = compile_partners(partners, &mut errors);
        let mut compiled: Vec<Agreement> = Vec::new();
        let mut seen: BTreeMap<AgreementId, String> = BTreeMap::new();
        for source in agreements {
            let Some(agreement) = compile_agreement(source, &partners.0, &mut errors) else {
                continue;
            };
            if let Some(first) = seen.insert(agreement.id.clone(), source.name.clone()) {
                errors.push(source.error(
                    None,
                    format!("agreement id `{}` is also used by {first}", agreement.id),
                ));
                continue;
            }
            compiled.push(agreement);
        }
        if !errors.is_empty() {
            return Err(PolicyErrors(errors));
        }
        let (partners, by_pin) = partners;
        Ok(PolicySet {
            partners,
            by_pin,
            agreements: compiled,
        })
    }
}

type PartnerIndex = (BTreeMap<PartnerId, Partner>, HashMap<SpkiPin, PartnerId>);

fn compile_partners(source: &SourceFile, errors: &mut Vec<PolicyError>) -> PartnerIndex {
    let mut partners = BTreeMap::new();
    let mut by_pin: HashMap<SpkiPin, PartnerId> = HashMap::new();
    let file: PartnersFile = match source.parse_toml() {
        Ok(file) => file,
        Err(e) => {
            errors.push(e);
            return (partners, by_pin);
        }
    };
    for entry in file.partner {
        let span = entry.span();
        let PartnerEntry {
            id,
            name,
            identifiers,
            status,
            spki_sha256,
        } = entry.into_inner();
        let id_span = id.span();
        let id = id.into_inner();
        if partners.contains_key(&id) {
            errors.push(source.error(Some(id_span), format!("partner `{id}` is declared twice")));
            continue;
        }
        let mut pins = Vec::new();
        for pin in spki_sha256 {
            let pin_span = pin.span();
            let pin = pin.into_inner();
            if let Some(owner) = by_pin.insert(pin.clone(), id.clone()) {
                errors.push(source.error(
                    Some(pin_span),
                    format!("this pin is already assigned to partner `{owner}`"),
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
                status,
                spki_sha256: pins,
            },
        );
    }
    (partners, by_pin)
}

fn compile_agreement(
    source: &SourceFile,
    partners: &BTreeMap<PartnerId, Partner>,
    errors: &mut Vec<PolicyError>,
) -> Option<Agreement> {
    let file: AgreementFile = match source.parse_toml() {
        Ok(file) => file,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let before = errors.len();
    let mut error = |span, message: String| errors.push(source.error(Some(span), message));

    let version = match u32::try_from(*file.version.get_ref()) {
        Ok(v) if v >= 1 => v,
        _ => {
            error(
                file.version.span(),
                "version must be a whole number from 1".to_owned(),
            );
            0
        }
    };

    let mut parties = BTreeSet::new();
    for party in file.parties.get_ref() {
        if !partners.contains_key(party.get_ref()) {
            error(
                party.span(),
                format!("party `{}` is not in partners.toml", party.get_ref()),
            );
        }
        parties.insert(party.get_ref().clone());
    }
    if parties.len() < 2 {
        error(
            file.parties.span(),
            "an agreement needs at least two parties".to_owned(),
        );
    }

    let effective = to_instant(file.effective.get_ref(), Boundary::Start);
    let expires = to_instant(file.expires.get_ref(), Boundary::End);
    let term = match (effective, expires) {
        (Ok(effective), Ok(expires)) if effective < expires => Some(Term { effective, expires }),
        (Ok(_), Ok(_)) => {
            error(
                file.expires.span(),
                "`expires` must be after `effective`".to_owned(),
            );
            None
        }
        (Err(e), _) => {
            error(file.effective.span(), e);
            None
        }
        (_, Err(e)) => {
            error(file.expires.span(), e);
            None
        }
    };

    let purposes: BTreeSet<_> = file.purposes.get_ref().iter().cloned().collect();
    if purposes.is_empty() {
        error(
            file.purposes.span(),
            "list at least one purpose of use".to_owned(),
        );
    }

    let mut grants = Vec::new();
    for entry in file.grant {
        if grants.iter().any(|g: &Grant| g.id == *entry.id.get_ref()) {
            error(
                entry.id.span(),
                format!("grant `{}` is declared twice", entry.id.get_ref()),
            );
        }
        grants.push(compile_grant(entry, &parties, &mut error));
    }

    if errors.len() > before {
        return None;
    }
    Some(Agreement {
        id: file.id,
        version,
        title: file.title,
        document: file.document,
        status: file.status,
        parties,
        term: term?,
        purposes,
        grants,
        source: source.name.clone(),
    })
}

fn compile_grant(
    entry: GrantEntry,
    parties: &BTreeSet<PartnerId>,
    error: &mut impl FnMut(std::ops::Range<usize>, String),
) -> Grant {
    let mut recipients = BTreeSet::new();
    for recipient in entry.recipients.get_ref() {
        if !parties.contains(recipient.get_ref()) {
            error(
                recipient.span(),
                format!(
                    "recipient `{}` is not a party to this agreement",
                    recipient.get_ref()
                ),
            );
        }
        recipients.insert(recipient.get_ref().clone());
    }
    if recipients.is_empty() {
        error(
            entry.recipients.span(),
            "a grant needs at least one recipient".to_owned(),
        );
    }
    let resources: BTreeSet<_> = entry.resources.get_ref().iter().copied().collect();
    if resources.is_empty() {
        error(
            entry.resources.span(),
            "a grant needs at least one resource type".to_owned(),
        );
    }
    let mut interactions = BTreeSet::new();
    for name in entry.interactions.get_ref() {
        match InteractionKind::parse(name.get_ref()) {
            Some(kind) => {
                interactions.insert(kind);
            }
            None => {
                let known: Vec<_> = InteractionKind::ALL.iter().map(|k| k.as_str()).collect();
                error(
                    name.span(),
                    format!(
                        "unknown interaction `{}` (one of: {})",
                        name.get_ref(),
                        known.join(", ")
                    ),
                );
            }
        }
    }
    if entry.interactions.get_ref().is_empty() {
        error(
            entry.interactions.span(),
            "a grant needs at least one interaction".to_owned(),
        );
    }
    Grant {
        id: entry.id.into_inner(),
        recipients,
        resources,
        interactions,
    }
}

#[derive(Clone, Copy)]
enum Boundary {
    Start,
    End,
}

/// Converts a TOML date or offset date-time to an instant. A bare date means
/// the start of that day (UTC) for `effective` and the end of that day for
/// `expires`, which is how people read "effective 2026-01-01, expires
/// 2026-12-31". A date-time without an offset is refused: its instant would
/// depend on where the gateway runs.
fn to_instant(value: &toml::value::Datetime, boundary: Boundary) -> Result<OffsetDateTime, String> {
    let date = value
        .date
        .ok_or_else(|| "give a date (2026-01-31) or a date-time with offset".to_owned())?;
    let month = Month::try_from(date.month).map_err(|e| e.to_string())?;
    let day = Date::from_calendar_date(i32::from(date.year), month, date.day)
        .map_err(|e| e.to_string())?;
    match (value.time, value.offset) {
        (None, _) => {
            let start = PrimitiveDateTime::new(day, Time::MIDNIGHT).assume_utc();
            Ok(match boundary {
                Boundary::Start => start,
                Boundary::End => start + time::Duration::DAY,
            })
        }
        (Some(_), None) => Err(format!(
            "`{value}` has no time zone offset; add one (e.g. `Z` for UTC)"
        )),
        (Some(t), Some(offset)) => {
            let time = Time::from_hms_nano(
                t.hour,
                t.minute,
                t.second.unwrap_or(0),
                t.nanosecond.unwrap_or(0),
            )
            .map_err(|e| e.to_string())?;
            let minutes = match offset {
                toml::value::Offset::Z => 0,
                toml::value::Offset::Custom { minutes } => minutes,
            };
            let offset = UtcOffset::from_whole_seconds(i32::from(minutes) * 60)
                .map_err(|e| e.to_string())?;
            Ok(PrimitiveDateTime::new(day, time).assume_offset(offset))
        }
    }
}
