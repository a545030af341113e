//! `accord policy show`: an agreement as Markdown or HTML that a legal team
//! can hold beside the signed document; shared wording helpers.

use time::OffsetDateTime;

use crate::PolicySet;
use crate::agreement::{Agreement, Grant};
use crate::obligations::Obligations;

/// `2026-01-01`.
pub fn day(t: OffsetDateTime) -> String {
    let d = t.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The last day covered by an exclusive end instant.
pub fn last_day(end: OffsetDateTime) -> String {
    day(end - time::Duration::nanoseconds(1))
}

/// `2026-06-15T12:00:00Z`.
pub fn instant(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| day(t))
}

fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// The obligations of a permit, one per line; `withheld`: sensitive
/// categories the patient's consent keeps from the partner (category →
/// why), not listed as released.
pub fn obligations_text(
    o: &Obligations,
    withheld: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut out = String::from("   obligations:\n");
    out.push_str(&format!(
        "     types shared: {}\n",
        list(o.resource_types.iter())
    ));
    if let Some(c) = &o.cohort {
        out.push_str(&format!("     only patients in cohort `{c}`\n"));
    }
    for c in &o.constraints {
        out.push_str(&format!("     searches narrowed to `{}`\n", c.text));
    }
    if !o.redactions.is_empty() {
        out.push_str(&format!(
            "     removed before release: {}\n",
            list(&o.redactions)
        ));
    }
    out.push_str(&format!(
        "     sensitive categories released: {}\n",
        list(
            o.sensitive_allowed
                .iter()
                .filter(|c| !withheld.contains_key(c.as_str()))
        )
    ));
    for (category, why) in withheld {
        out.push_str(&format!(
            "     sensitive category withheld for this patient: {category} ({why})\n"
        ));
    }
    if !o.sensitive_forbidden.is_empty() {
        out.push_str(&format!(
            "     sensitive categories forbidden: {}\n",
            list(o.sensitive_forbidden.iter())
        ));
    }
    if let Some(n) = o.caps.requests_per_day {
        out.push_str(&format!("     at most {n} requests per day\n"));
    }
    if let Some(n) = o.caps.resources_per_day {
        out.push_str(&format!("     at most {n} resources per day\n"));
    }
    out.push_str(&format!(
        "     searches without a patient: {}\n",
        if o.population_search {
            "allowed"
        } else {
            "not allowed"
        }
    ));
    out.push_str("   rules:\n");
    for r in &o.rules {
        out.push_str(&format!("     {r}\n"));
    }
    out
}

/// One grant in plain words.
pub fn grant_sentence(set: &PolicySet, g: &Grant) -> Vec<String> {
    let mut lines = vec![format!(
        "{} may {} {}{}.",
        list(g.recipients.iter().map(|r| partner_name(set, r))),
        list(g.interaction_names()),
        list(g.resources.iter()),
        g.source
            .as_ref()
            .map(|s| format!(" held by {}", partner_name(set, s)))
            .unwrap_or_default()
    )];
    if let Some(c) = &g.cohort {
        lines.push(match set.cohort(c) {
            Some(c) => format!("Only for patients in {}.", c.describe()),
            None => format!("Only for patients in cohort `{c}`."),
        });
    }
    for c in &g.constraints {
        lines.push(format!("Only `{}`.", c.text));
    }
    if !g.redact.is_empty() {
        lines.push(format!("Removed before release: {}.", list(&g.redact)));
    }
    if g.sensitive.is_empty() {
        lines.push("No sensitive categories are released.".to_owned());
    } else {
        lines.push(format!(
            "Sensitive categories that may be released: {}.",
            list(g.sensitive.iter().map(|c| category_name(set, c)))
        ));
    }
    if let Some(n) = g.caps.requests_per_day {
        lines.push(format!("At most {n} requests per day per recipient."));
    }
    if let Some(n) = g.caps.resources_per_day {
        lines.push(format!("At most {n} resources per day per recipient."));
    }
    lines.push(if g.population_search {
        "Searches across the population (without naming a patient) are allowed.".to_owned()
    } else {
        "Each request must name one patient; population searches are not allowed.".to_owned()
    });
    lines
}

fn partner_name(set: &PolicySet, id: &crate::PartnerId) -> String {
    set.partner(id)
        .map_or_else(|| id.to_string(), |p| format!("{} ({id})", p.name))
}

fn category_name(set: &PolicySet, id: &crate::CategoryId) -> String {
    set.categories()
        .find(|c| &c.id == id)
        .map_or_else(|| id.to_string(), |c| format!("{} (`{id}`)", c.name))
}

/// The agreement as Markdown.
pub fn agreement_markdown(set: &PolicySet, a: &Agreement) -> String {
    let mut out = format!("# {}\n\n", a.title);
    out.push_str(&format!(
        "- **Agreement**: `{}`, version {}\n",
        a.id, a.version
    ));
    if let Some(d) = &a.document {
        out.push_str(&format!("- **Signed document**: {d}\n"));
    }
    out.push_str(&format!("- **Status**: {}\n", a.status.as_str()));
    out.push_str(&format!(
        "- **Term**: from {} through {}\n",
        day(a.term.effective),
        last_day(a.term.expires)
    ));
    out.push_str(&format!(
        "- **Parties**: {}\n",
        list(a.parties.iter().map(|p| partner_name(set, p)))
    ));
    out.push_str(&format!(
        "- **Purposes of use**: {}\n",
        list(a.purposes.iter().map(accord_fhir::Purpose::as_str))
    ));
    out.push_str(&format!("- **Source file**: {}\n", a.source));
    if let Some(t) = &a.template {
        out.push_str(&format!("- **From template**: {t}\n"));
    }
    out.push_str("\n## What is shared\n\n");
    for g in &a.grants {
        out.push_str(&format!("### Grant `{}`\n\n", g.id));
        for line in grant_sentence(set, g) {
            out.push_str(&format!("- {line}\n"));
        }
        out.push('\n');
    }
    if !a.forbids.is_empty() {
        out.push_str("## What is never shared\n\n");
        for f in &a.forbids {
            let who = if f.recipients.is_empty() {
                "any party".to_owned()
            } else {
                list(f.recipients.iter().map(|r| partner_name(set, r)))
            };
            let what = if f.sensitive.is_empty() {
                if f.resources.is_empty() {
                    "any data".to_owned()
                } else {
                    list(f.resources.iter())
                }
            } else {
                list(f.sensitive.iter().map(|c| category_name(set, c)))
            };
            out.push_str(&format!(
                "- **`{}`**: {what} to {who}. Reason: {}\n",
                f.id, f.reason
            ));
        }
    }
    out
}

/// The agreement as a standalone HTML page (the Markdown, converted by a
/// deliberately small renderer: headings, lists, bold, code).
pub fn agreement_html(set: &PolicySet, a: &Agreement) -> String {
    let md = agreement_markdown(set, a);
    let mut body = String::new();
    let mut in_list = false;
    for line in md.lines() {
        let close = |body: &mut String, in_list: &mut bool| {
            if *in_list {
                body.push_str("</ul>\n");
                *in_list = false;
            }
        };
        if let Some(h) = line.strip_prefix("### ") {
            close(&mut body, &mut in_list);
            body.push_str(&format!("<h3>{}</h3>\n", inline(h)));
        } else if let Some(h) = line.strip_prefix("## ") {
            close(&mut body, &mut in_list);
            body.push_str(&format!("<h2>{}</h2>\n", inline(h)));
        } else if let Some(h) = line.strip_prefix("# ") {
            close(&mut body, &mut in_list);
            body.push_str(&format!("<h1>{}</h1>\n", inline(h)));
        } else if let Some(item) = line.strip_prefix("- ") {
            if !in_list {
                body.push_str("<ul>\n");
                in_list = true;
            }
            body.push_str(&format!("<li>{}</li>\n", inline(item)));
        } else if !line.trim().is_empty() {
            close(&mut body, &mut in_list);
            body.push_str(&format!("<p>{}</p>\n", inline(line)));
        }
    }
    if in_list {
        body.push_str("</ul>\n");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:Georgia,serif;max-width:48em;margin:2em auto;line-height:1.5}}code{{background:#eee;padding:0 .2em}}</style></head>\n<body>\n{body}</body></html>\n",
        escape(&a.title)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `**bold**` and `` `code` `` of escaped text.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    let mut bold = false;
    let escaped = escape(text);
    let mut rest = escaped.as_str();
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("**") {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            rest = rest.get(2..).unwrap_or_default();
            continue;
        }
        if c == '`' {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
        } else {
            out.push(c);
        }
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
    }
    out
}
