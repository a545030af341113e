//! `accord policy check` lints: things that are valid but probably not what
//! the authors meant. Warnings, not errors: they do not fail the check. Each
//! is located (`file:line:col`) at the rule it is about and names the other
//! rule's location when two rules are involved.
//!
//! Lint classes: an active agreement expired or not yet effective; a grant
//! whose own purposes are not the agreement's; a grant every request of
//! which a forbid denies (unreachable); a grant naming a sensitive category
//! a forbid withholds; two grants that overlap (same recipient, purpose,
//! type, interaction) within an agreement, or across agreements in force at
//! the same time with different obligations.

use std::collections::{BTreeMap, BTreeSet};

use accord_fhir::Purpose;
use time::OffsetDateTime;

use crate::PolicySet;
use crate::agreement::{Agreement, AgreementStatus, Forbid, Grant};
use crate::render::{day, last_day};
use crate::source::{PolicyError, Written};

// === impl PolicySet ===

impl PolicySet {
    /// Warnings for the policy set at `now`, located, in file order.
    pub fn lint(&self, now: OffsetDateTime) -> Vec<PolicyError> {
        let mut out = Vec::new();
        for a in &self.agreements {
            term_lints(a, now, &mut out);
            for g in &a.grants {
                purpose_lint(a, g, &mut out);
                for (fa, f) in self
                    .agreements
                    .iter()
                    .filter(|x| x.forbids_apply())
                    .flat_map(|x| x.forbids.iter().map(move |f| (x, f)))
                {
                    shadow_lints(a, g, fa, f, &mut out);
                }
            }
            overlaps_within(a, &mut out);
        }
        overlaps_across(&self.agreements, &mut out);
        out
    }
}

fn warn(at: &Written, message: String, hint: &str) -> PolicyError {
    PolicyError {
        location: at.0.clone(),
        message,
        hint: Some(hint.to_owned()),
    }
}

fn term_lints(a: &Agreement, now: OffsetDateTime, out: &mut Vec<PolicyError>) {
    if a.status == AgreementStatus::Active && a.term.expires <= now {
        out.push(warn(
            &a.expires_written,
            format!(
                "agreement `{}` expired on {}: it grants nothing",
                a.id,
                last_day(a.term.expires)
            ),
            "set status = \"terminated\" or renew it (new `expires`, raise `version`)",
        ));
    }
    if a.status == AgreementStatus::Active && now < a.term.effective {
        out.push(warn(
            &a.written,
            format!(
                "agreement `{}` is not yet effective (from {})",
                a.id,
                day(a.term.effective)
            ),
            "it grants nothing before `effective`; check the date if it should already apply",
        ));
    }
}

/// The purposes a grant can be used for: its own within the agreement's.
fn grant_purposes<'a>(a: &'a Agreement, g: &'a Grant) -> BTreeSet<&'a Purpose> {
    a.purposes.iter().filter(|p| g.covers_purpose(p)).collect()
}

fn purpose_lint(a: &Agreement, g: &Grant, out: &mut Vec<PolicyError>) {
    let outside: Vec<_> = g
        .purposes
        .difference(&a.purposes)
        .map(|p| format!("`{p}`"))
        .collect();
    if outside.is_empty() {
        return;
    }
    let never = grant_purposes(a, g).is_empty();
    out.push(warn(
        &g.purposes_written,
        format!(
            "grant `{}` names purpose {} that agreement `{}` does not permit{}",
            g.id,
            outside.join(", "),
            a.id,
            if never {
                ": the grant can never be used"
            } else {
                ": requests for it are denied"
            }
        ),
        "add the purpose to the agreement's `purposes` (if the signed text allows it) or remove it from the grant",
    ));
}

fn shadow_lints(a: &Agreement, g: &Grant, fa: &Agreement, f: &Forbid, out: &mut Vec<PolicyError>) {
    let recipients = g.recipients.is_subset(&f.recipients);
    if f.sensitive.is_empty() {
        let types = f.resources.is_empty() || g.resources.is_subset(&f.resources);
        let kinds = f.interactions.is_empty() || g.interactions.is_subset(&f.interactions);
        let purposes =
            f.purposes.is_empty() || grant_purposes(a, g).iter().all(|p| f.purposes.contains(*p));
        if recipients && types && kinds && purposes {
            out.push(warn(
                &g.written,
                format!(
                    "grant `{}` of `{}` is unreachable: forbid `{}` of `{}` ({}) denies everything it grants",
                    g.id, a.id, f.id, fa.id, f.written
                ),
                "forbids win over grants: remove the grant, or narrow the forbid",
            ));
        }
        return;
    }
    let both: Vec<_> = g
        .sensitive
        .intersection(&f.sensitive)
        .map(|c| format!("`{c}`"))
        .collect();
    if !both.is_empty() && recipients {
        out.push(warn(
            &g.written,
            format!(
                "grant `{}` names {} but forbid `{}` of `{}` ({}) withholds {}: the grant's mention has no effect",
                g.id,
                both.join(", "),
                f.id,
                fa.id,
                f.written,
                if both.len() == 1 { "it" } else { "them" }
            ),
            "forbids win over grants: drop the category from the grant, or narrow the forbid",
        ));
    }
}

/// Two grants of one agreement for the same recipient, purpose, type and
/// interaction: the first listed decides the obligations.
fn overlaps_within(a: &Agreement, out: &mut Vec<PolicyError>) {
    for (i, g) in a.grants.iter().enumerate() {
        for h in a.grants.iter().skip(i + 1) {
            if let Some(example) = overlap(a, g, a, h) {
                out.push(warn(
                    &h.written,
                    format!(
                        "grants `{}` ({}) and `{}` of `{}` overlap (e.g. {example}): only the first listed, `{}`, is ever used for it",
                        g.id, g.written, h.id, a.id, g.id
                    ),
                    "merge them into one grant, or make them cover different types, interactions or purposes",
                ));
            }
        }
    }
}

/// Grants of two agreements that can be in force at the same time, for the
/// same recipient, purpose, type and interaction, with different
/// obligations. The decision takes the first agreement in file-name order
/// and applies its grant alone: obligations are never merged, so the second
/// agreement's redactions, cohort or categories do not apply to it.
fn overlaps_across(agreements: &[Agreement], out: &mut Vec<PolicyError>) {
    let live = |a: &Agreement| a.status == AgreementStatus::Active;
    // Only agreements sharing a recipient can overlap.
    let mut by_recipient: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in agreements.iter().enumerate().filter(|(_, a)| live(a)) {
        let recipients: BTreeSet<&str> = a
            .grants
            .iter()
            .flat_map(|g| g.recipients.iter().map(|r| r.as_str()))
            .collect();
        for r in recipients {
            by_recipient.entry(r).or_default().push(i);
        }
    }
    let mut pairs = BTreeSet::new();
    for list in by_recipient.values() {
        for (n, i) in list.iter().enumerate() {
            for j in list.iter().skip(n + 1) {
                pairs.insert((*i, *j));
            }
        }
    }
    for (i, j) in pairs {
        let (Some(a), Some(b)) = (agreements.get(i), agreements.get(j)) else {
            continue;
        };
        if !(a.term.effective < b.term.expires && b.term.effective < a.term.expires) {
            continue;
        }
        for g in &a.grants {
            for h in &b.grants {
                let Some(example) = overlap(a, g, b, h) else {
                    continue;
                };
                let differences = obligation_differences(g, h);
                if differences.is_empty() {
                    continue;
                }
                out.push(warn(
                    &h.written,
                    format!(
                        "grant `{}` of `{}` and grant `{}` of `{}` ({}) both cover {example} with different {}: `{}` comes first in file-name order and its grant alone applies (obligations are not merged), so `{}`'s {} never apply to it",
                        h.id,
                        b.id,
                        g.id,
                        a.id,
                        g.written,
                        differences.join(", "),
                        a.id,
                        b.id,
                        differences.join(", "),
                    ),
                    "make one agreement's grant cover the overlap with the obligations legal expects, and narrow the other (types, interactions, purposes) so they do not meet",
                ));
            }
        }
    }
}

/// An example request both grants cover (`` `p` TREAT read Observation ``).
fn overlap(a: &Agreement, g: &Grant, b: &Agreement, h: &Grant) -> Option<String> {
    let recipient = g.recipients.intersection(&h.recipients).next()?;
    let gp = grant_purposes(a, g);
    let purpose = grant_purposes(b, h).into_iter().find(|p| gp.contains(p))?;
    let ty = g.resources.intersection(&h.resources).next()?;
    let kinds: Vec<String> = g
        .interaction_names()
        .into_iter()
        .filter(|k| h.interaction_names().contains(k))
        .collect();
    let kind = kinds.first()?;
    Some(format!("`{recipient}` {purpose} {kind} {ty}"))
}

fn obligation_differences(g: &Grant, h: &Grant) -> Vec<&'static str> {
    let mut out = Vec::new();
    let (gr, hr): (BTreeSet<_>, BTreeSet<_>) =
        (g.redact.iter().collect(), h.redact.iter().collect());
    if gr != hr {
        out.push("redactions");
    }
    if g.cohort != h.cohort {
        out.push("cohorts");
    }
    if g.sensitive != h.sensitive {
        out.push("sensitive categories");
    }
    if g.constraints != h.constraints {
        out.push("search constraints");
    }
    if g.caps != h.caps {
        out.push("caps");
    }
    if g.population_search != h.population_search {
        out.push("population search");
    }
    out
}

#[cfg(test)]
mod tests;
