//! `accord policy check` lints: things that are valid but probably not what
//! the authors meant. Warnings, not errors: they do not fail the check.

use time::OffsetDateTime;

use crate::PolicySet;
use crate::agreement::AgreementStatus;
use crate::render::{day, last_day};

// === impl PolicySet ===

impl PolicySet {
    /// Warnings as `file: message`, for the policy set at `now`.
    pub fn lint(&self, now: OffsetDateTime) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.agreements {
            let file = &a.source;
            if a.status == AgreementStatus::Active && a.term.expires <= now {
                out.push(format!(
                    "{file}: agreement `{}` expired on {}: it grants nothing; set status = \"terminated\" or renew it",
                    a.id,
                    last_day(a.term.expires)
                ));
            }
            if a.status == AgreementStatus::Active && now < a.term.effective {
                out.push(format!(
                    "{file}: agreement `{}` is not yet effective (from {})",
                    a.id,
                    day(a.term.effective)
                ));
            }
            for g in &a.grants {
                for f in self
                    .agreements
                    .iter()
                    .filter(|x| x.forbids_apply())
                    .flat_map(|x| &x.forbids)
                {
                    if !f.sensitive.is_empty() {
                        continue;
                    }
                    let recipients =
                        f.recipients.is_empty() || g.recipients.is_subset(&f.recipients);
                    let types = f.resources.is_empty() || g.resources.is_subset(&f.resources);
                    let kinds =
                        f.interactions.is_empty() || g.interactions.is_subset(&f.interactions);
                    let purposes = f.purposes.is_empty() || a.purposes.is_subset(&f.purposes);
                    if recipients && types && kinds && purposes {
                        out.push(format!(
                            "{file}: grant `{}` of `{}` is unreachable: forbid `{}` denies everything it grants",
                            g.id, a.id, f.id
                        ));
                    }
                }
                for f in a.forbids.iter().filter(|f| !f.sensitive.is_empty()) {
                    let both: Vec<_> = g
                        .sensitive
                        .intersection(&f.sensitive)
                        .map(|c| format!("`{c}`"))
                        .collect();
                    if !both.is_empty()
                        && (f.recipients.is_empty() || g.recipients.is_subset(&f.recipients))
                    {
                        out.push(format!(
                            "{file}: grant `{}` names {} but forbid `{}` withholds {}: the grant's mention has no effect",
                            g.id,
                            both.join(", "),
                            f.id,
                            if both.len() == 1 { "it" } else { "them" }
                        ));
                    }
                }
            }
            // Two grants of agreements in force for the same recipient,
            // type and interaction: the first (file-name order) decides the
            // obligations, which authors may not expect.
            for (i, g) in a.grants.iter().enumerate() {
                for h in a.grants.iter().skip(i + 1) {
                    let r: Vec<_> = g.recipients.intersection(&h.recipients).collect();
                    let t: Vec<_> = g.resources.intersection(&h.resources).collect();
                    let k: Vec<_> = g.interactions.intersection(&h.interactions).collect();
                    if !r.is_empty() && !t.is_empty() && !k.is_empty() {
                        out.push(format!(
                            "{file}: grants `{}` and `{}` overlap (e.g. `{}` {} {}): the first listed decides the obligations",
                            g.id,
                            h.id,
                            r.first().map(|p| p.as_str()).unwrap_or_default(),
                            k.first().map(|k| k.as_str()).unwrap_or_default(),
                            t.first().map(|t| t.as_str()).unwrap_or_default()
                        ));
                    }
                }
            }
        }
        out
    }
}
