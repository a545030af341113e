//! Templates: one agreement pattern instantiated for many partners.
//!
//! `policies/templates/<name>.toml` is an agreement with `{{param}}`
//! placeholders; an agreement file holding `template = "<name>"` and
//! `[[instance]]` tables (one per agreement, each giving every parameter)
//! instantiates it. Errors in an instance point into the template, with the
//! instance named in the message.

use std::collections::BTreeSet;

use super::others::parse_checked;
use crate::schema::SchemaKind;
use crate::source::{PolicyError, SourceFile};

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
) -> Vec<(SourceFile, Option<String>)> {
    let is_instances = source
        .text
        .lines()
        .any(|l| l.trim_start().starts_with("template") && l.contains('='));
    if !is_instances {
        return vec![(source.clone(), None)];
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
    for instance in &file.instance {
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
        out.push((
            SourceFile::new(template.name.clone(), text),
            Some(format!("{name} ({}) via {}", label.join(", "), source.name)),
        ));
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
