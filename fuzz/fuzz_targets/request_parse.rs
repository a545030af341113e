//! A partner's request: method, target (path and query), headers and form
//! body, through the gateway's parse phase (`accord_gateway::stages::parse`) and
//! the FHIR grammar under it (`accord_fhir::FhirRequest`).
//!
//! Input: `method-selector` byte, then lines: the target, `name: value`
//! header lines, an empty line, and the body (as HTTP/1.1 lays them out).
//! Properties: no panic; a refusal's OperationOutcome stays bounded however
//! long the input (issue 17: a 4 MiB value echoed into a refusal).
#![no_main]

use accord_fhir::{FhirRequest, Method};
use accord_gateway::stages::parse::{parse_purpose, parse_request};
use libfuzzer_sys::fuzz_target;

/// An OperationOutcome echoes at most a bounded message and a few bounded
/// details; this is far above that and far below an unbounded echo.
const MAX_OUTCOME: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (head, body) = split_head(rest);
    let mut lines = head.split(|b| *b == b'\n');
    let target = lines.next().unwrap_or_default();
    let method = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"][usize::from(selector) % 6];

    // The grammar alone, on text the URI parser would never let through.
    let text = String::from_utf8_lossy(target);
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*text, None),
    };
    let fhir_method = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ][usize::from(selector) % 5];
    if let Ok(request) = FhirRequest::parse(fhir_method, path, query, Some(body)) {
        let _ = request.relative_path();
        let _ = request.interaction.kind();
    }

    // The gateway's view: what hyper would hand it.
    let mut builder = http::Request::builder().method(method).uri(target);
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        builder = builder.header(name, value);
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    for result in [
        parse_request(&parts, body, "/fhir").map(|_| ()),
        parse_purpose(&parts.headers).map(|_| ()),
    ] {
        if let Err(error) = result {
            let outcome = error.outcome().to_bytes();
            assert!(
                outcome.len() <= MAX_OUTCOME,
                "an OperationOutcome of {} bytes",
                outcome.len()
            );
        }
    }
});

/// The request head (up to the first empty line) and the body after it.
fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (
            bytes.get(..at).unwrap_or_default(),
            bytes.get(at + 2..).unwrap_or_default(),
        ),
        None => (bytes, &[]),
    }
}
