//! Compiling policy files into a [`PolicySet`], with every error located.
//!
//! Each file is parsed (TOML syntax errors), checked against its JSON Schema
//! (all shape errors at once), then compiled (meaning: references, dates,
//! element paths). Loading never stops at the first file with errors.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::PolicySet;
use crate::agreement::Agreement;
use crate::consent::{ConsentActors, ConsentIndex};
use crate::ids::{AgreementId, PartnerId};
use crate::sensitivity::DEFAULT_SENSITIVITY;
use crate::source::{PolicyError, SourceFile};
use crate::version::PolicyVersion;

mod agreement;
mod dates;
mod others;
mod template;

pub(crate) use others::parse_checked;

/// The instant of a TOML date (start of day) or offset date-time.
pub(crate) fn instant_of(value: &toml::value::Datetime) -> Result<time::OffsetDateTime, String> {
    dates::to_instant(value, dates::Boundary::Start)
}

/// See `PolicySet::grant_index`. Indexes beyond `u32` cannot occur (a
/// policy folder that large would not load); they are skipped, which only
/// makes the decision take its slow path.
fn grant_index(agreements: &[Agreement]) -> crate::GrantIndex {
    let mut index: HashMap<PartnerId, HashMap<_, Vec<(u32, u32)>>> = HashMap::new();
    for (a, agreement) in agreements.iter().enumerate() {
        for (g, grant) in agreement.grants.iter().enumerate() {
            let (Ok(a), Ok(g)) = (u32::try_from(a), u32::try_from(g)) else {
                continue;
            };
            for recipient in &grant.recipients {
                let by_key = index.entry(recipient.clone()).or_default();
                for purpose in agreement
                    .purposes
                    .iter()
                    .filter(|p| grant.covers_purpose(p))
                {
                    for ty in &grant.resources {
                        by_key
                            .entry((purpose.clone(), *ty))
                            .or_default()
                            .push((a, g));
                    }
                }
            }
        }
    }
    index
}

/// One error per position: the schema and the compiler may both object to
/// the same value; the first (the schema's, with its hint) is kept.
/// Within a file, errors are sorted by position.
fn dedupe(mut errors: Vec<PolicyError>) -> Vec<PolicyError> {
    let mut files: Vec<String> = Vec::new();
    for e in &errors {
        let file = e
            .location
            .as_ref()
            .map(|l| l.file.clone())
            .unwrap_or_default();
        if !files.contains(&file) {
            files.push(file);
        }
    }
    errors.sort_by_key(|e| {
        let file = e
            .location
            .as_ref()
            .map(|l| l.file.as_str())
            .unwrap_or_default();
        let rank = files.iter().position(|f| f == file).unwrap_or(usize::MAX);
        let (line, column) = e.location.as_ref().map_or((0, 0), |l| (l.line, l.column));
        (rank, line, column)
    });
    let mut seen = std::collections::HashSet::new();
    errors
        .into_iter()
        .filter(|e| match &e.location {
            Some(l) => seen.insert((l.file.clone(), l.line, l.column)),
            None => true,
        })
        .collect()
}

/// Every error found in a set of policy files (loading does not stop at the
/// first, so a legal team sees all of them at once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors(pub Vec<PolicyError>);

/// The text of every file a policy set is compiled from.
#[derive(Debug, Clone)]
pub struct PolicySources {
    pub partners: SourceFile,
    pub agreements: Vec<SourceFile>,
    /// policies/templates/*.toml: agreement bodies with `{{param}}`.
    pub templates: Vec<SourceFile>,
    /// policies/cohorts/*.toml
    pub cohorts: Vec<SourceFile>,
    /// policies/cohorts/*.json: FHIR Group resources cohorts refer to.
    pub groups: Vec<SourceFile>,
    /// policies/sensitivity/*.toml; when the folder is absent, the shipped
    /// default set.
    pub sensitivity: Vec<SourceFile>,
    /// policies/consents/*.json: FHIR R4 Consent resources.
    pub consents: Vec<SourceFile>,
}

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

// === impl PolicySources ===

impl PolicySources {
    /// Partners and agreements only; the default sensitivity set; no
    /// cohorts, templates or consents.
    pub fn new(partners: SourceFile, agreements: Vec<SourceFile>) -> Self {
        PolicySources {
            partners,
            agreements,
            templates: Vec::new(),
            cohorts: Vec::new(),
            groups: Vec::new(),
            sensitivity: vec![SourceFile::new(
                "<builtin>/sensitivity/default.toml",
                DEFAULT_SENSITIVITY,
            )],
            consents: Vec::new(),
        }
    }

    /// Reads a policy folder: `partners.toml`, `agreements/*.toml`, and the
    /// optional `templates/`, `cohorts/`, `sensitivity/`, `consents/`.
    pub fn read_dir(dir: &Path) -> Result<PolicySources, PolicyErrors> {
        let io_error = |path: &Path, e: std::io::Error| {
            PolicyErrors(vec![
                PolicyError::unlocated(format!("{}: {e}", path.display()))
                    .with_hint("a policy folder holds partners.toml and agreements/"),
            ])
        };
        let read = |path: &Path| -> Result<SourceFile, PolicyErrors> {
            let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
            Ok(SourceFile::new(path.display().to_string(), text))
        };
        let list =
            |sub: &str, ext: &str, required: bool| -> Result<Vec<SourceFile>, PolicyErrors> {
                let folder = dir.join(sub);
                if !required && !folder.is_dir() {
                    return Ok(Vec::new());
                }
                let mut paths = Vec::new();
                for entry in std::fs::read_dir(&folder).map_err(|e| io_error(&folder, e))? {
                    let path = entry.map_err(|e| io_error(&folder, e))?.path();
                    if path.extension().is_some_and(|x| x == ext) {
                        paths.push(path);
                    }
                }
                paths.sort();
                paths.iter().map(|p| read(p)).collect()
            };
        let mut sources = PolicySources::new(
            read(&dir.join("partners.toml"))?,
            list("agreements", "toml", true)?,
        );
        sources.templates = list("templates", "toml", false)?;
        sources.cohorts = list("cohorts", "toml", false)?;
        sources.groups = list("cohorts", "json", false)?;
        if dir.join("sensitivity").is_dir() {
            sources.sensitivity = list("sensitivity", "toml", false)?;
        }
        sources.consents = list("consents", "json", false)?;
        Ok(sources)
    }

    /// Every source, for hashing and display.
    pub fn all(&self) -> impl Iterator<Item = &SourceFile> {
        std::iter::once(&self.partners)
            .chain(&self.agreements)
            .chain(&self.templates)
            .chain(&self.cohorts)
            .chain(&self.groups)
            .chain(&self.sensitivity)
            .chain(&self.consents)
    }
}

// === impl PolicySet ===

impl PolicySet {
    /// Reads and compiles a policy folder (see [`PolicySources::read_dir`]).
    pub fn load_dir(dir: &Path) -> Result<PolicySet, PolicyErrors> {
        PolicySet::compile_sources(&PolicySources::read_dir(dir)?)
    }

    /// Compiles partner and agreement sources with the default sensitivity
    /// set; pure, no I/O.
    pub fn compile(
        partners: &SourceFile,
        agreements: &[SourceFile],
    ) -> Result<PolicySet, PolicyErrors> {
        PolicySet::compile_sources(&PolicySources::new(partners.clone(), agreements.to_vec()))
    }

    /// Compiles a full set of sources; pure, no I/O.
    pub fn compile_sources(sources: &PolicySources) -> Result<PolicySet, PolicyErrors> {
        let mut errors = Vec::new();
        let (partners, by_pin) = others::compile_partners(&sources.partners, &mut errors);
        let categories = others::compile_categories(&sources.sensitivity, &mut errors);
        let cohorts = others::compile_cohorts(
            &sources.cohorts,
            &sources.agreements,
            &sources.groups,
            &partners,
            &mut errors,
        );
        let refs = agreement::Refs {
            partners: &partners,
            cohorts: &cohorts,
            categories: &categories,
        };
        let mut compiled: Vec<Agreement> = Vec::new();
        let mut seen: BTreeMap<AgreementId, String> = BTreeMap::new();
        for source in &sources.agreements {
            let expanded = template::expand(source, &sources.templates, &mut errors);
            for template::Expanded {
                text,
                label,
                origin,
            } in expanded
            {
                let mut found = Vec::new();
                let compiled_one = agreement::compile_agreement(&text, &refs, label, &mut found);
                match &origin {
                    Some(origin) => errors.extend(found.into_iter().map(|e| origin.relocate(e))),
                    None => errors.extend(found),
                }
                let Some(agreement) = compiled_one else {
                    continue;
                };
                if let Some(first) = seen.insert(agreement.id.clone(), source.name.clone()) {
                    let error = text.error_hint(
                        crate::spans::SpannedDoc::from_toml(&text)
                            .ok()
                            .and_then(|doc| doc.value_span("/id")),
                        format!("agreement id `{}` is also used by {first}", agreement.id),
                        "each agreement needs its own id; raise `version` instead of copying a file",
                    );
                    errors.push(match &origin {
                        Some(origin) => origin.relocate(error),
                        None => error,
                    });
                    continue;
                }
                compiled.push(agreement);
            }
        }
        let consents =
            ConsentIndex::compile(&sources.consents, &ConsentActors::new(partners.values()))
                .unwrap_or_else(|e| {
                    errors.extend(e);
                    ConsentIndex::default()
                });
        if !errors.is_empty() {
            return Err(PolicyErrors(dedupe(errors)));
        }
        let mut by_recipient: HashMap<PartnerId, Vec<usize>> = HashMap::new();
        for (i, agreement) in compiled.iter().enumerate() {
            let recipients: BTreeSet<&PartnerId> = agreement
                .grants
                .iter()
                .flat_map(|g| &g.recipients)
                .collect();
            for r in recipients {
                by_recipient.entry(r.clone()).or_default().push(i);
            }
        }
        let grant_index = grant_index(&compiled);
        let mut forbid_index: HashMap<PartnerId, Vec<(usize, usize)>> = HashMap::new();
        for (i, agreement) in compiled.iter().enumerate() {
            if !agreement.forbids_apply() {
                continue;
            }
            for (f, forbid) in agreement.forbids.iter().enumerate() {
                for r in &forbid.recipients {
                    forbid_index.entry(r.clone()).or_default().push((i, f));
                }
            }
        }
        Ok(PolicySet {
            partners,
            by_pin,
            agreements: compiled,
            by_recipient,
            grant_index,
            forbid_index,
            cohorts,
            categories,
            consents: Arc::new(consents),
            version: PolicyVersion::of(sources.all()),
        })
    }
}
