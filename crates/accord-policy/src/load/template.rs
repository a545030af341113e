//! Templates: one agreement pattern instantiated for many partners.
//!
//! `policies/templates/<name>.toml` is an agreement with `{{param}}`
//! placeholders; an agreement file holding `template = "<name>"` and
//! `[[instance]]` tables (one per agreement, each giving every parameter)
//! instantiates it. Errors in an instance point at the instance: at the
//! parameter whose value the offending template line holds, else at the
//! `[[instance]]` table, with the template line named in the message.

use std::collections::BTreeSet;

use super::others::parse_checked;
use crate::schema::SchemaKind;
use crate::source::{PolicyError, SourceFile};
use crate::spans::SpannedDoc;

/// Where an expanded agreement came from, to point its errors there.
pub(super) struct Origin {
    instances: SourceFile,
    index: usize,
    table: std::ops::Range<usize>,
    template: SourceFile,
}

/// One agreement to compile: its text, and for an instance, the label
/// agreements carry and where it came from.
pub(super) struct Expanded {
    pub text: SourceFile,
    pub label: Option<String>,
    pub origin: Option<Origin>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InstancesFile {
    template: toml::Spanned<String>,
    instance: Vec<toml::Spanned<toml::Table>>,
}

/// The agreement texts a file stands for: itself, or one per instance.
pub(super) fn expand(
    source: &SourceFile,
    templates: &[SourceFile],
    errors: &mut Vec<PolicyError>,
) -> Vec<Expanded> {
    let is_instances = source
        .text
        .lines()
        .any(|l| l.trim_start().starts_with("template") && l.contains('='));
    if !is_instances {
        return vec![Expanded {
            text: source.clone(),
            label: None,
            origin: None,
        }];
    }
    let Some(file) = parse_checked::<InstancesFile>(source, SchemaKind::Instances, errors) else {
        return Vec::new();
    };
    let name = file.template.get_ref();
    let Some(template) = templates.iter().find(|t| {
        std::path::Path::new(&t.name)
            .file_stem()
            .is_some_and(|s| s == name.as_str())
    }) else {
        errors.push(source.error_hint(
            Some(file.template.span()),
            format!("template `{name}` is not in policies/templates/"),
            "create policies/templates/<name>.toml or correct the name",
        ));
        return Vec::new();
    };
    let wanted = placeholders(&template.text);
    let mut out = Vec::new();
    for (index, instance) in file.instance.iter().enumerate() {
        let params = instance.get_ref();
        let given: BTreeSet<String> = params.keys().cloned().collect();
        let missing: Vec<_> = wanted.difference(&given).cloned().collect();
        let extra: Vec<_> = given.difference(&wanted).cloned().collect();
        if !missing.is_empty() || !extra.is_empty() {
            errors.push(source.error_hint(
                Some(instance.span()),
                format!(
                    "instance of `{name}`: missing parameters [{}], unknown parameters [{}]",
                    missing.join(", "),
                    extra.join(", ")
                ),
                format!(
                    "template `{name}` takes: {}",
                    wanted.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
            continue;
        }
        let mut text = template.text.clone();
        for (key, value) in params {
            text = text.replace(
                &format!("{{{{{key}}}}}"),
                value.as_str().unwrap_or_default(),
            );
        }
        let label: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        out.push(Expanded {
            text: SourceFile::new(template.name.clone(), text),
            label: Some(format!("{name} ({}) via {}", label.join(", "), source.name)),
            origin: Some(Origin {
                instances: source.clone(),
                index,
                table: instance.span(),
                template: template.clone(),
            }),
        });
    }
    out
}

/// The `{{name}}` placeholders of a template.
fn placeholders(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find("}}") else { break };
        out.insert(after.get(..end).unwrap_or_default().trim().to_owned());
        rest = after.get(end + 2..).unwrap_or_default();
    }
    out
}

// === impl Origin ===

impl Origin {
    /// Points an error found in the expanded text at the instance file.
    pub(super) fn relocate(&self, mut error: PolicyError) -> PolicyError {
        let Some(at) = error.location.take() else {
            return error;
        };
        let line = self
            .template
            .text
            .lines()
            .nth(at.line.saturating_sub(1))
            .unwrap_or_default();
        let doc = SpannedDoc::from_toml(&self.instances).ok();
        let parameter = placeholders(line).into_iter().find_map(|key| {
            let pointer = format!("/instance/{}/{key}", self.index);
            doc.as_ref()?.value_span(&pointer)
        });
        let span = parameter.unwrap_or_else(|| self.table.clone());
        error.location = Some(self.instances.location_of(span.start));
        if !error.message.contains(&self.template.name) {
            error.message = format!(
                "{} (template {} line {})",
                error.message, self.template.name, at.line
            );
        }
        error
    }
}
