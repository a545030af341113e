//! FHIR R4 element paths: which `Type.element.child` paths exist.
//!
//! The table is generated from the official R4 StructureDefinitions
//! (`tools/gen-elements.py`): every element of every resource type and
//! complex data type, choice elements both as written (`value[x]`) and per
//! type (`valueQuantity`). Agreements name elements to redact with these
//! paths; a path that is not in R4 would redact nothing, so it is refused.

#[rustfmt::skip]
mod table;

/// Type → its `(path, kind)` entries; see `tools/gen-elements.py` for kind.
type Table = &'static [(&'static str, &'static [(&'static str, &'static str)])];

/// Why an element path is not a FHIR R4 path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElementPathError {
    #[error("`{0}` is not a FHIR R4 resource type")]
    UnknownType(String),
    #[error("`{0}` names a whole resource; name an element, e.g. `{0}.text`")]
    WholeResource(String),
    /// `path` is the full path as written; `suggestion` the closest
    /// existing path at the same level, if one is close.
    #[error("unknown element {path}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownElement {
        path: String,
        suggestion: Option<String>,
    },
}

/// Checks `path` (`Patient.address`, `Patient.name.given`,
/// `Observation.valueQuantity.value`, `Questionnaire.item.item.text`)
/// against the R4 definitions.
pub fn check_element_path(path: &str) -> Result<(), ElementPathError> {
    let mut segments = path.split('.');
    let ty = segments.next().unwrap_or_default();
    let Some(mut elements) = lookup(table::RESOURCES, ty) else {
        return Err(ElementPathError::UnknownType(ty.to_owned()));
    };
    let resource = elements;
    let mut prefix = String::new();
    let mut walked = ty.to_owned();
    let mut any = false;
    for segment in segments {
        any = true;
        let candidate = if prefix.is_empty() {
            segment.to_owned()
        } else {
            format!("{prefix}.{segment}")
        };
        let Some(kind) = find(elements, &candidate) else {
            return Err(ElementPathError::UnknownElement {
                path: path.to_owned(),
                suggestion: suggest(elements, &prefix, segment).map(|s| format!("{walked}.{s}")),
            });
        };
        walked = format!("{walked}.{segment}");
        if let Some(target) = kind.strip_prefix('#') {
            // A contentReference (`Questionnaire.item.item`): the children
            // are those of the referenced element of the same resource.
            elements = resource;
            prefix = target.to_owned();
        } else if let Some(data_type) = lookup(table::DATA_TYPES, kind) {
            elements = data_type;
            prefix = String::new();
        } else {
            prefix = candidate;
        }
    }
    if !any {
        return Err(ElementPathError::WholeResource(ty.to_owned()));
    }
    Ok(())
}

/// Whether `name` is an R4 resource type with an element table.
pub fn is_resource_type(name: &str) -> bool {
    lookup(table::RESOURCES, name).is_some()
}

/// Whether `name` is a choice element (`value[x]`) at the top level of
/// `resource_type`, so that `valueQuantity` is one of its forms.
pub fn is_choice_element(resource_type: &str, name: &str) -> bool {
    lookup(table::RESOURCES, resource_type)
        .is_some_and(|elements| find(elements, &format!("{name}[x]")).is_some())
}

/// Whether `name` is a top-level Reference element of `resource_type`
/// (`reasonReference` of ServiceRequest).
pub fn is_reference_element(resource_type: &str, name: &str) -> bool {
    lookup(table::RESOURCES, resource_type)
        .is_some_and(|elements| find(elements, name) == Some("Reference"))
}

/// The mandatory top-level elements of `resource_type` (min ≥ 1), as
/// written in the definitions (`status`, `value[x]`); empty for an unknown
/// type.
pub fn required_elements(resource_type: &str) -> &'static [&'static str] {
    table::REQUIRED
        .binary_search_by(|(name, _)| (*name).cmp(resource_type))
        .ok()
        .and_then(|i| table::REQUIRED.get(i))
        .map_or(&[], |(_, names)| *names)
}

fn lookup(table: Table, ty: &str) -> Option<&'static [(&'static str, &'static str)]> {
    table
        .binary_search_by(|(name, _)| (*name).cmp(ty))
        .ok()
        .and_then(|i| table.get(i))
        .map(|(_, elements)| *elements)
}

fn find(elements: &[(&str, &'static str)], path: &str) -> Option<&'static str> {
    elements
        .binary_search_by(|(p, _)| (*p).cmp(path))
        .ok()
        .and_then(|i| elements.get(i))
        .map(|(_, kind)| *kind)
}

/// The closest sibling of `segment` under `prefix` (at most two edits,
/// case ignored), for "did you mean".
fn suggest(elements: &[(&str, &str)], prefix: &str, segment: &str) -> Option<String> {
    let siblings = elements.iter().filter_map(|(path, _)| {
        let name = if prefix.is_empty() {
            *path
        } else {
            path.strip_prefix(prefix)?.strip_prefix('.')?
        };
        (!name.contains('.')).then_some(name)
    });
    let wanted = segment.to_ascii_lowercase();
    siblings
        .map(|name| (edit_distance(&name.to_ascii_lowercase(), &wanted), name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name.to_owned())
}

/// Levenshtein distance (short names; no allocation beyond one row).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = i;
        let mut left = i + 1;
        for (cb, above) in b.iter().zip(row.iter_mut().skip(1)) {
            let cost = usize::from(ca != *cb);
            let next = (diagonal + cost).min(*above + 1).min(left + 1);
            diagonal = *above;
            *above = next;
            left = next;
        }
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
    }
    row.last().copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_elements_backbones_choices_and_data_types_are_known() {
        for ok in [
            "Patient.address",
            "Patient.name.given",
            "Patient.contact.name.family",
            "Patient.deceased[x]",
            "Patient.deceasedBoolean",
            "Observation.valueQuantity",
            "Observation.valueQuantity.unit",
            "Observation.component.valueString",
            "Observation.note.text",
            "Observation.meta.security",
            "Questionnaire.item.item.text",
            "MedicationRequest.dispenseRequest.validityPeriod.start",
            "Account.coverage.priority",
            "ExplanationOfBenefit.addItem.adjudication.amount",
        ] {
            assert_eq!(check_element_path(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn typos_are_refused_with_the_nearest_existing_path() {
        let err = check_element_path("Patient.adress").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown element Patient.adress (did you mean Patient.address?)"
        );
        let err = check_element_path("Patient.name.givn").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown element Patient.name.givn (did you mean Patient.name.given?)"
        );
        assert!(matches!(
            check_element_path("Observation.valueBanana"),
            Err(ElementPathError::UnknownElement { .. })
        ));
        assert!(check_element_path("Patient.name.middle").is_err());
        assert!(check_element_path("Patient.gender.text").is_err());
        assert_eq!(
            check_element_path("Spaceship.hull"),
            Err(ElementPathError::UnknownType("Spaceship".to_owned()))
        );
        assert!(matches!(
            check_element_path("Patient"),
            Err(ElementPathError::WholeResource(_))
        ));
    }

    #[test]
    fn every_resource_type_accord_knows_has_a_table() {
        for ty in crate::ResourceType::all() {
            assert!(is_resource_type(ty.as_str()), "{ty}");
        }
    }

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for table in [table::RESOURCES, table::DATA_TYPES] {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
            for (ty, elements) in table {
                assert!(elements.windows(2).all(|w| w[0].0 < w[1].0), "{ty}");
            }
        }
    }
}
