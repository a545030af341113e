//! Values copied from a request into an audit record or an
//! OperationOutcome are bounded: a 4 MiB query value once became a 25 MB
//! record (each control byte six bytes of JSON), past the store's record
//! limit, and made the log unreadable. Whatever a partner sends, what the
//! gateway writes about it has a fixed upper size.

use std::borrow::Cow;

/// Characters kept of a refusal message or a rule.
pub const MESSAGE: usize = 1024;
/// Characters kept of a request target (path and query).
pub const TARGET: usize = 2048;
/// Characters kept of a short field (method, a detail's path).
pub const SHORT: usize = 128;

/// `text` cut to at most `max` characters, with a marker that gives the
/// original length; control characters become U+FFFD so a value cannot
/// grow sixfold when escaped (or forge a log line).
pub fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    let count = text.chars().count();
    let clean = !text.chars().any(char::is_control);
    if count <= max && clean {
        return Cow::Borrowed(text);
    }
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if count > max {
        out.push_str(&format!(
            "… [cut: {} bytes in all, the first {max} characters kept]",
            text.len()
        ));
    }
    Cow::Owned(out)
}

/// [`bounded`] into an owned string.
pub fn bounded_owned(text: &str, max: usize) -> String {
    bounded(text, max).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_clean_text_is_kept_as_is() {
        assert!(matches!(bounded("patient=123", 64), Cow::Borrowed(_)));
    }

    #[test]
    fn long_text_is_cut_with_its_length_and_control_bytes_replaced() {
        let poison = format!("patient={}", "\u{1}".repeat(4_194_296));
        let cut = bounded(&poison, MESSAGE);
        assert!(cut.len() < 4 * MESSAGE, "{}", cut.len());
        assert!(cut.contains("4194304 bytes in all"), "{cut}");
        assert!(!cut.chars().any(char::is_control));
        let json = serde_json::to_string(&cut).unwrap_or_default();
        assert!(json.len() < 8 * MESSAGE);
    }
}
