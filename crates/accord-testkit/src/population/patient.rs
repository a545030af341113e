//! One synthetic patient and everything recorded about them.
//!
//! INVARIANT: every random draw for patient `n` comes from its own stream
//! (`Rng::for_stream(seed, n)`), in the order written here. Reordering draws
//! changes the output for every seed, and the committed fixtures with it.

use serde_json::{Value, json};

use super::care::{self, Referral, ReferralState};
use super::clinical::{self, Prescription, Visit, VisitClass};
use super::coded;
use super::codes::{
    self, CHRONIC, Diagnosis, FAMILY, GIVEN_FEMALE, GIVEN_MALE, MENTAL_HEALTH, MRN, STREETS,
    SUBSTANCE_USE, Sensitivity,
};
use super::dates::{Day, SPAN_DAYS, birth_date};
use super::json::{Labels, meta};
use super::orgs::OrgKind;
use super::rng::Rng;

/// What the generator made for one patient.
#[derive(Debug)]
pub(crate) struct PatientRecords {
    pub(crate) id: String,
    /// Organizations the patient had encounters at, in `OrgKind` order.
    pub(crate) care: Vec<OrgKind>,
    pub(crate) resources: Vec<Value>,
}

/// A diagnosis made at one visit.
#[derive(Debug)]
struct Dx {
    id: String,
    diagnosis: &'static Diagnosis,
    visit: Visit,
    labels: Labels,
}

/// Per-patient id allocation and output buffer.
#[derive(Debug)]
struct Chart {
    number: String,
    patient: String,
    next: u32,
    out: Vec<Value>,
}

impl coded::Sink for Chart {
    fn id(&mut self, prefix: &str) -> String {
        Chart::id(self, prefix)
    }
    fn push(&mut self, resource: Value) {
        self.out.push(resource);
    }
}

impl Chart {
    /// `prefix-NNNN-SS`: the patient number keeps ids stable when the
    /// population grows; the sequence number is unique within the patient.
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{}-{:02}", self.number, self.next)
    }
}

/// The FHIR id of patient `n` (1-based): `pat-0001`.
pub(crate) fn patient_id(n: usize) -> String {
    format!("pat-{n:04}")
}

pub(crate) fn generate(seed: u64, n: usize) -> PatientRecords {
    let mut rng = Rng::for_stream(seed, n as u64);
    let mut chart = Chart {
        number: format!("{n:04}"),
        patient: patient_id(n),
        next: 0,
        out: Vec::new(),
    };

    let managing = match rng.below(100) {
        0..30 => OrgKind::Behavioral,
        30..75 => OrgKind::Primary,
        _ => OrgKind::Hospital,
    };
    let care: Vec<OrgKind> = OrgKind::ALL
        .into_iter()
        .filter(|org| *org == managing || rng.chance(35))
        .collect();
    let visits = plan_visits(&mut rng, &mut chart, &care);
    let first_day = visits.first().map_or(Day::from_offset(0), |v| v.day);
    let patient = patient_resource(&mut rng, &chart.patient, n, managing, first_day);
    chart.out.push(patient);

    for visit in &visits {
        chart.out.push(clinical::encounter(&chart.patient, visit));
    }
    let diagnoses = diagnose(&mut rng, &mut chart, &care, managing, &visits);
    for dx in &diagnoses {
        let condition =
            clinical::condition(&dx.id, &chart.patient, dx.diagnosis, &dx.visit, dx.labels);
        chart.out.push(condition);
    }
    observe(&mut rng, &mut chart, &visits, &diagnoses);
    prescribe(&mut rng, &mut chart, &diagnoses);
    plan_care(&mut chart, &care, &diagnoses);
    refer(&mut rng, &mut chart, &care, &visits, &diagnoses);
    consent(&mut rng, &mut chart, &care, managing, &visits, &diagnoses);
    // Records coded beyond ICD-10-CM, from their own stream (see coded.rs).
    let mut coded_rng = Rng::for_stream(seed ^ coded::STREAM, n as u64);
    let made: Vec<coded::Made<'_>> = diagnoses
        .iter()
        .map(|d| coded::Made {
            condition_id: &d.id,
            diagnosis: d.diagnosis,
            visit: &d.visit,
            labels: d.labels,
        })
        .collect();
    let patient = chart.patient.clone();
    coded::generate(&mut coded_rng, &mut chart, &patient, &visits, &made);

    PatientRecords {
        id: chart.patient,
        care,
        resources: chart.out,
    }
}

fn plan_visits(rng: &mut Rng, chart: &mut Chart, care: &[OrgKind]) -> Vec<Visit> {
    let mut planned = Vec::new();
    for org in care {
        for _ in 0..rng.range(1, 3) {
            // Leave room at the end of the window for follow-up records.
            let day = Day::from_offset(rng.below(SPAN_DAYS - 60));
            let minute = rng.range(8 * 4, 17 * 4) * 15;
            let practitioner = org.practitioner(rng.next_u64());
            let class = match (org, rng.below(100)) {
                (OrgKind::Hospital, 0..40) => VisitClass::Emergency,
                (OrgKind::Hospital, 40..60) => VisitClass::Inpatient,
                _ => VisitClass::Ambulatory,
            };
            planned.push((day, minute, *org, practitioner, class));
        }
    }
    // Ids follow the calendar, which makes fixtures easier to read.
    planned.sort_by_key(|a| (a.0, a.1, a.2));
    planned
        .into_iter()
        .map(|(day, minute, org, practitioner, class)| Visit {
            id: chart.id("enc"),
            org,
            day,
            minute,
            practitioner,
            class,
        })
        .collect()
}

fn patient_resource(rng: &mut Rng, id: &str, n: usize, managing: OrgKind, since: Day) -> Value {
    let female = rng.chance(52);
    let given = rng
        .pick(if female { GIVEN_FEMALE } else { GIVEN_MALE })
        .copied();
    let family = rng.pick(FAMILY).copied();
    let street = rng.pick(STREETS).copied();
    let house = rng.range(1, 999);
    let birth = birth_date(rng.range(1940, 2006), rng.range(1, 12), rng.range(1, 28));
    let phone = rng.range(100, 9999);
    json!({
        "resourceType": "Patient",
        "id": id,
        "meta": meta(since, Labels::None),
        "identifier": [{ "system": MRN, "value": format!("MRN-{n:06}") }],
        "active": true,
        "name": [{
            "use": "official",
            "family": family.unwrap_or("Doe"),
            "given": [given.unwrap_or("Alex")],
        }],
        "telecom": [{ "system": "phone", "value": format!("555-{phone:04}"), "use": "home" }],
        "gender": if female { "female" } else { "male" },
        "birthDate": birth,
        "address": [{
            "line": [format!("{house} {}", street.unwrap_or("Main Street"))],
            "city": "Fairhaven", "state": "MA", "postalCode": "02719", "country": "US",
        }],
        "managingOrganization": managing.reference(),
    })
}

fn diagnose(
    rng: &mut Rng,
    chart: &mut Chart,
    care: &[OrgKind],
    managing: OrgKind,
    visits: &[Visit],
) -> Vec<Dx> {
    let seen_at = |org: OrgKind| care.contains(&org);
    let mut picks: Vec<(&'static Diagnosis, OrgKind)> = Vec::new();

    // Substance use: common at the clinic, occasionally found by the ED.
    if seen_at(OrgKind::Behavioral) && rng.chance(55) {
        picks.extend(rng.pick(SUBSTANCE_USE).map(|d| (*d, OrgKind::Behavioral)));
    } else if rng.chance(5) {
        let org = if seen_at(OrgKind::Hospital) {
            OrgKind::Hospital
        } else {
            managing
        };
        picks.extend(rng.pick(SUBSTANCE_USE).map(|d| (*d, org)));
    }
    // Mental health.
    let mental_health_rate = if seen_at(OrgKind::Behavioral) { 45 } else { 12 };
    if rng.chance(mental_health_rate) {
        let org = if seen_at(OrgKind::Behavioral) {
            OrgKind::Behavioral
        } else if seen_at(OrgKind::Primary) {
            OrgKind::Primary
        } else {
            managing
        };
        picks.extend(rng.pick(MENTAL_HEALTH).map(|d| (*d, org)));
    }
    // Chronic disease, managed in primary care when the patient has it.
    let chronic_org = if seen_at(OrgKind::Primary) {
        OrgKind::Primary
    } else {
        managing
    };
    for (dx, rate) in CHRONIC.iter().zip([30, 15, 10]) {
        if rng.chance(rate) {
            picks.push((*dx, chronic_org));
        }
    }

    picks
        .into_iter()
        .filter_map(|(diagnosis, org)| {
            let visit = visits.iter().find(|v| v.org == org)?.clone();
            let part2 =
                diagnosis.sensitivity == Sensitivity::SubstanceUse && org == OrgKind::Behavioral;
            Some(Dx {
                id: chart.id("cond"),
                diagnosis,
                visit,
                labels: if part2 { Labels::Part2 } else { Labels::None },
            })
        })
        .collect()
}

fn has(diagnoses: &[Dx], dx: &Diagnosis, org: OrgKind) -> bool {
    // Compare by code: `const` items have no stable address.
    diagnoses
        .iter()
        .any(|d| d.diagnosis.icd10 == dx.icd10 && d.visit.org == org)
}

fn observe(rng: &mut Rng, chart: &mut Chart, visits: &[Visit], diagnoses: &[Dx]) {
    let patient = chart.patient.clone();
    for visit in visits {
        let id = chart.id("obs");
        let value = rng.range(codes::HEART_RATE.low, codes::HEART_RATE.high) as f64;
        chart.out.push(clinical::measurement(
            &id,
            &patient,
            visit,
            &codes::HEART_RATE,
            value,
            Labels::None,
        ));
        let id = chart.id("obs");
        if rng.chance(50) {
            let systolic = rng.range(codes::SYSTOLIC.low, codes::SYSTOLIC.high);
            let diastolic = rng.range(60, 95);
            chart.out.push(clinical::blood_pressure(
                &id, &patient, visit, systolic, diastolic,
            ));
        } else {
            let value = rng.tenths(codes::BODY_WEIGHT.low, codes::BODY_WEIGHT.high);
            chart.out.push(clinical::measurement(
                &id,
                &patient,
                visit,
                &codes::BODY_WEIGHT,
                value,
                Labels::None,
            ));
        }
        let mut labs: Vec<(&codes::Measure, Labels)> = Vec::new();
        match visit.org {
            OrgKind::Hospital => labs.extend(codes::LABS.iter().map(|m| (*m, Labels::None))),
            OrgKind::Primary if has(diagnoses, &codes::DIABETES, OrgKind::Primary) => {
                labs.push((&codes::HBA1C, Labels::None));
            }
            // An alcohol level drawn by the clinic is itself a Part 2 record.
            OrgKind::Behavioral
                if has(diagnoses, &codes::ALCOHOL_DEPENDENCE, OrgKind::Behavioral) =>
            {
                labs.push((&codes::ETHANOL, Labels::Part2));
            }
            _ => {}
        }
        for (measure, labels) in labs {
            let id = chart.id("obs");
            let value = rng.tenths(measure.low, measure.high);
            chart.out.push(clinical::measurement(
                &id, &patient, visit, measure, value, labels,
            ));
        }
    }
}

fn prescribe(rng: &mut Rng, chart: &mut Chart, diagnoses: &[Dx]) {
    for dx in diagnoses {
        let Some(medication) = dx.diagnosis.medication else {
            continue;
        };
        if !rng.chance(80) {
            continue;
        }
        let id = chart.id("medrx");
        let rx = Prescription {
            id: &id,
            patient: &chart.patient,
            visit: &dx.visit,
            medication,
            condition_id: &dx.id,
            active: rng.chance(75),
            labels: dx.labels,
        };
        let resource = clinical::medication_request(&rx);
        chart.out.push(resource);
    }
}

fn plan_care(chart: &mut Chart, care: &[OrgKind], diagnoses: &[Dx]) {
    for org in care {
        let treated: Vec<&Dx> = diagnoses.iter().filter(|d| d.visit.org == *org).collect();
        let Some(first) = treated.first() else {
            continue;
        };
        let day = first.visit.day;
        let labels = if treated.iter().any(|d| d.labels == Labels::Part2) {
            Labels::Part2
        } else {
            Labels::None
        };
        let ids: Vec<String> = treated.iter().map(|d| d.id.clone()).collect();
        let id = chart.id("careplan");
        let plan = care::care_plan(&id, &chart.patient, *org, day, &ids, labels);
        chart.out.push(plan);
    }
}

fn refer(rng: &mut Rng, chart: &mut Chart, care: &[OrgKind], visits: &[Visit], diagnoses: &[Dx]) {
    let pairs: Vec<(OrgKind, OrgKind)> = care
        .windows(2)
        .filter_map(|w| Some((*w.first()?, *w.get(1)?)))
        .collect();
    for (index, (from, to)) in pairs.into_iter().enumerate() {
        // Every multi-partner patient has one referral; a second is rarer.
        if index > 0 && !rng.chance(50) {
            continue;
        }
        let Some(origin) = visits.iter().find(|v| v.org == from) else {
            continue;
        };
        let day = origin.day.plus(rng.range(1, 20));
        let reason = diagnoses.iter().find(|d| d.visit.org == from);
        let state = match rng.below(3) {
            0 => ReferralState::Requested,
            1 => ReferralState::Accepted,
            _ => ReferralState::Completed,
        };
        let service_request_id = chart.id("sr");
        let task_id = chart.id("task");
        let referral = Referral {
            service_request_id: &service_request_id,
            task_id: &task_id,
            patient: &chart.patient,
            from,
            to,
            day,
            reason_condition: reason.map(|d| d.id.as_str()),
            state,
            // A referral out of a Part 2 program for a SUD reveals treatment.
            labels: reason.map_or(Labels::None, |d| d.labels),
        };
        let sr = care::service_request(&referral);
        let task = care::task(&referral);
        chart.out.push(sr);
        chart.out.push(task);
    }
}

fn consent(
    rng: &mut Rng,
    chart: &mut Chart,
    care: &[OrgKind],
    managing: OrgKind,
    visits: &[Visit],
    diagnoses: &[Dx],
) {
    let first_day = visits.first().map_or(Day::from_offset(0), |v| v.day);
    if rng.chance(6) {
        let id = chart.id("consent");
        let resource = care::opt_out_consent(&id, &chart.patient, managing, first_day.plus(1));
        chart.out.push(resource);
        return;
    }
    let Some(part2) = diagnoses.iter().find(|d| d.labels == Labels::Part2) else {
        return;
    };
    // Some patients never sign a Part 2 consent: their SUD records must
    // stay at the clinic whatever the agreements say.
    if !rng.chance(70) {
        return;
    }
    let mut recipients: Vec<OrgKind> = care
        .iter()
        .copied()
        .filter(|o| *o != OrgKind::Behavioral)
        .collect();
    if recipients.is_empty() {
        recipients.push(OrgKind::Primary);
    }
    let id = chart.id("consent");
    let resource = care::part2_consent(&id, &chart.patient, part2.visit.day, &recipients);
    chart.out.push(resource);
}
