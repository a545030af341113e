//! NDJSON files in the FHIR bulk-data layout, written canonically.
//!
//! Canonical means: object keys sorted, no insignificant whitespace, one
//! resource per line, lines sorted by id. The bytes then depend only on the
//! data, not on serde_json's map feature flags, so committed fixtures can be
//! compared byte for byte.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde_json::Value;

use super::Population;

pub(super) fn write(population: &Population, dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for (resource_type, resources) in population.by_type() {
        let mut text = String::new();
        for resource in resources {
            canonical(resource, &mut text);
            text.push('\n');
        }
        let mut file = fs::File::create(dir.join(format!("{resource_type}.ndjson")))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    Ok(())
}

pub(super) fn read(dir: &Path) -> io::Result<Population> {
    let mut files: Vec<_> = fs::read_dir(dir)?
        .collect::<io::Result<Vec<_>>>()?
        .into_iter()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ndjson"))
        .collect();
    files.sort();
    let mut resources = Vec::new();
    for path in files {
        let text = fs::read_to_string(&path)?;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{}: {e}", path.display(), index + 1),
                )
            })?;
            resources.push(value);
        }
    }
    Ok(Population { resources })
}

/// Appends `value` as canonical JSON (sorted keys, no whitespace).
pub(crate) fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
