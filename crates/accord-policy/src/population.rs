//! A population of FHIR resources the tools decide over (`diff`,
//! `explain --fixtures`): every resource's facts, by patient and type, and
//! the referrals and Organizations among them.
//!
//! Read from NDJSON files in the FHIR bulk-data layout (one resource per
//! line), such as fixtures/population. Only [`Population::read_dir`] touches
//! the filesystem.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use accord_fhir::ResourceType;
use serde_json::Value;

use crate::facts::ResourceFacts;
use crate::referral::ReferralEvidence;

/// Resources by patient and type.
#[derive(Debug, Clone, Default)]
pub struct Population {
    /// Where it was read from, for reports.
    pub source: String,
    /// Every patient (`Patient/<id>`): each Patient resource, and each
    /// patient a resource belongs to.
    patients: BTreeSet<String>,
    records: BTreeMap<String, BTreeMap<ResourceType, Vec<Record>>>,
    /// Every resource by `Type/id`.
    by_key: BTreeMap<String, Record>,
    referrals: ReferralEvidence,
}

/// One resource of patient data.
#[derive(Debug, Clone)]
pub struct Record {
    /// `Type/id`.
    pub key: String,
    pub facts: ResourceFacts,
    /// The resource and the Encounter it was recorded in (if the
    /// population holds it): whose record it is, for grants with a source.
    pub resource: std::sync::Arc<Value>,
    pub encounter: Option<std::sync::Arc<Value>>,
}

/// Why a population could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PopulationError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a JSON resource: {message}")]
    Json {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{0}: no `.ndjson` files (one FHIR resource per line)")]
    Empty(String),
}

// === impl Population ===

impl Population {
    /// Every `*.ndjson` file in `dir`, one resource per line.
    pub fn read_dir(dir: &Path) -> Result<Population, PopulationError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| PopulationError::Io { path, source }
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(PopulationError::Empty(dir.display().to_string()));
        }
        let mut resources = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let value =
                    serde_json::from_str::<Value>(line).map_err(|e| PopulationError::Json {
                        path: path.display().to_string(),
                        line: n + 1,
                        message: e.to_string(),
                    })?;
                resources.push(value);
            }
        }
        let mut population = Population::from_resources(&resources);
        population.source = dir.display().to_string();
        Ok(population)
    }

    /// Indexes `resources`; a prescription's `Medication` is resolved from
    /// among them, as the gateway reads it from the upstream.
    pub fn from_resources(resources: &[Value]) -> Population {
        let medications: HashMap<String, &Value> = resources
            .iter()
            .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Medication"))
            .filter_map(|r| Some((format!("Medication/{}", r.get("id")?.as_str()?), r)))
            .collect();
        let encounters: HashMap<String, std::sync::Arc<Value>> = resources
            .iter()
            .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Encounter"))
            .filter_map(|r| {
                Some((
                    format!("Encounter/{}", r.get("id")?.as_str()?),
                    std::sync::Arc::new(r.clone()),
                ))
            })
            .collect();
        let mut population = Population {
            referrals: ReferralEvidence::from_resources(resources),
            ..Population::default()
        };
        for resource in resources {
            let mut facts = ResourceFacts::of(resource);
            let Some(ty) = facts.resource_type else {
                continue;
            };
            let id = resource.get("id").and_then(Value::as_str).unwrap_or("");
            if ty == ResourceType::PATIENT && !id.is_empty() {
                population.patients.insert(format!("Patient/{id}"));
            }
            if let Some(medication) = facts
                .medication_reference
                .as_deref()
                .and_then(|r| medications.get(r))
            {
                facts.add_referenced(medication);
            }
            let encounter =
                crate::origin::encounter_of(resource).and_then(|r| encounters.get(r).cloned());
            let record = Record {
                key: format!("{}/{id}", ty.as_str()),
                facts,
                resource: std::sync::Arc::new(resource.clone()),
                encounter,
            };
            population.by_key.insert(record.key.clone(), record.clone());
            for patient in &record.facts.patients {
                population.patients.insert(patient.clone());
                population
                    .records
                    .entry(patient.clone())
                    .or_default()
                    .entry(ty)
                    .or_default()
                    .push(record.clone());
            }
        }
        population
    }

    /// Keeps only these patients (`Patient/<id>` or `<id>`).
    #[must_use]
    pub fn only(mut self, patients: &[String]) -> Population {
        let wanted: BTreeSet<String> = patients
            .iter()
            .map(|p| {
                if p.starts_with("Patient/") {
                    p.clone()
                } else {
                    format!("Patient/{p}")
                }
            })
            .collect();
        self.patients.retain(|p| wanted.contains(p));
        self.records.retain(|p, _| wanted.contains(p));
        self.by_key.retain(|_, r| {
            r.facts.patients.is_empty() || r.facts.patients.iter().any(|p| wanted.contains(p))
        });
        self
    }

    pub fn patients(&self) -> &BTreeSet<String> {
        &self.patients
    }

    /// The patient's resources of type `ty` (empty when none).
    pub fn records(&self, patient: &str, ty: ResourceType) -> &[Record] {
        self.records
            .get(patient)
            .and_then(|by_type| by_type.get(&ty))
            .map_or(&[], Vec::as_slice)
    }

    /// One resource by `Type/id`.
    pub fn record(&self, key: &str) -> Option<&Record> {
        self.by_key.get(key)
    }

    pub fn referrals(&self) -> &ReferralEvidence {
        &self.referrals
    }
}
