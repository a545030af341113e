//! Stage 2, parse (→ `Parsed`): HTTP request → typed FHIR interaction and purpose of use.
//! Anything not understood is refused here, never passed on.

use accord_fhir::{FhirRequest, InteractionKind, Method, ParamError, Purpose, RequestError};
use http::request::Parts;
use http::{HeaderMap, header};

use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::stages::{BoxError, Gateway, Parsed};

mod body;
mod compartment;
mod validate;

/// The header partners declare their purpose of use in.
pub const PURPOSE_HEADER: &str = "x-purpose-of-use";

/// Parses the request line, headers and (for `POST _search`) form body.
pub fn parse_request(
    parts: &Parts,
    body: &[u8],
    base_path: &str,
) -> Result<FhirRequest, GatewayError> {
    let method = match parts.method {
        http::Method::GET => Method::Get,
        http::Method::POST => Method::Post,
        http::Method::PUT => Method::Put,
        http::Method::PATCH => Method::Patch,
        http::Method::DELETE => Method::Delete,
        ref other => {
            return Err(GatewayError::method_not_allowed(format!(
                "method `{other}` is not part of the FHIR REST API"
            )));
        }
    };
    let path = parts.uri.path();
    let relative = strip_base(path, base_path).ok_or_else(|| {
        GatewayError::not_found(format!("`{path}` is not under the FHIR base `{base_path}`"))
    })?;
    check_accept(&parts.headers)?;

    let is_form = content_type(&parts.headers) == Some("application/x-www-form-urlencoded");
    let form_body = (method == Method::Post && is_form).then_some(body);
    let request = FhirRequest::parse(method, relative, parts.uri.query(), form_body)
        .map_err(from_request_error)?;

    let kind = request.interaction.kind();
    let is_search_post = method == Method::Post && kind == InteractionKind::Search;
    if is_search_post && !is_form && !body.is_empty() {
        return Err(GatewayError::unsupported_media_type(
            "POST _search takes an application/x-www-form-urlencoded body",
        ));
    }
    if matches!(
        kind,
        InteractionKind::Create | InteractionKind::Update | InteractionKind::Batch
    ) && !is_fhir_json(content_type(&parts.headers))
    {
        return Err(GatewayError::unsupported_media_type(
            "send resources as application/fhir+json",
        ));
    }
    Ok(request)
}

/// The declared purpose of use; a request without one is refused.
pub fn parse_purpose(headers: &HeaderMap) -> Result<Purpose, GatewayError> {
    let mut values = headers.get_all(PURPOSE_HEADER).iter();
    let value = values.next().ok_or_else(|| {
        GatewayError::forbidden(
            "declare a purpose of use in the X-Purpose-Of-Use header (e.g. TREAT)",
        )
    })?;
    if values.next().is_some() {
        return Err(GatewayError::forbidden(
            "declare exactly one purpose of use",
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| GatewayError::forbidden("X-Purpose-Of-Use is not text"))?;
    Purpose::parse(text).map_err(|e| GatewayError::forbidden(e.to_string()))
}

/// `path` relative to `base_path`, or `None` if it is not under it.
fn strip_base<'a>(path: &'a str, base_path: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(base_path)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or(value).trim())
}

fn is_fhir_json(media_type: Option<&str>) -> bool {
    matches!(
        media_type,
        Some("application/fhir+json" | "application/json" | "application/json+fhir")
    )
}

/// The gateway answers in JSON only (it must read every byte it releases).
fn check_accept(headers: &HeaderMap) -> Result<(), GatewayError> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(());
    };
    let accept = accept.to_str().unwrap_or("");
    let acceptable = accept.split(',').any(|item| {
        let media = item.split(';').next().unwrap_or("").trim();
        matches!(
            media,
            "*/*"
                | "application/*"
                | "application/fhir+json"
                | "application/json"
                | "application/json+fhir"
        )
    });
    if acceptable {
        Ok(())
    } else {
        Err(GatewayError::not_acceptable(
            "this gateway serves application/fhir+json only",
        ))
    }
}

fn from_request_error(e: RequestError) -> GatewayError {
    match &e {
        RequestError::UnknownType(_) => GatewayError::not_found(e.to_string()),
        RequestError::MethodNotAllowed { .. } => GatewayError::method_not_allowed(e.to_string()),
        RequestError::Param(ParamError::NotAcceptable(_)) => {
            GatewayError::not_acceptable(e.to_string())
        }
        RequestError::InvalidId(_)
        | RequestError::MalformedPath { .. }
        | RequestError::InvalidOperation(_)
        | RequestError::Param(_) => GatewayError::bad_request(e.to_string()),
    }
}

// === impl Gateway ===

impl Gateway {
    /// The parse stage: headers within bounds, the body read (bounded in
    /// size and time), the request and purpose of use typed.
    pub(super) async fn parse<B>(
        &self,
        ctx: &mut RequestContext,
        request: http::Request<B>,
    ) -> Result<Parsed, GatewayError>
    where
        B: hyper::body::Body<Data = bytes::Bytes>,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        body::check_header_size(&parts, &self.limits)?;
        let body = body::read_body(&parts, body, &self.limits).await?;
        let mut fhir = parse_request(&parts, &body, &self.base_path)?;
        ctx.interaction = Some(fhir.interaction.kind());
        ctx.resource_type = fhir.resource_type();
        let purpose = parse_purpose(&parts.headers)?;
        ctx.purpose = Some(purpose.clone());
        compartment::as_type_search(&mut fhir);
        if let Some(partner) = &ctx.partner {
            ctx.subjects = super::narrow::subjects(&fhir, partner, &purpose);
        }
        validate::validate(&fhir)?;
        Ok(Parsed {
            headers: parts.headers,
            fhir,
            purpose,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn status(result: Result<FhirRequest, GatewayError>) -> StatusCode {
        result.unwrap_err().status
    }

    #[test]
    fn parses_requests_under_the_base_path_only() {
        assert!(parse_request(&parts("GET", "/fhir/Patient/p1", &[]), b"", "/fhir").is_ok());
        assert_eq!(
            status(parse_request(
                &parts("GET", "/other/Patient/p1", &[]),
                b"",
                "/fhir"
            )),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(parse_request(
                &parts("GET", "/fhirx/Patient", &[]),
                b"",
                "/fhir"
            )),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn maps_grammar_errors_to_statuses() {
        let p = |m, u| parse_request(&parts(m, u, &[]), b"", "/fhir");
        assert_eq!(status(p("GET", "/fhir/Nope/1")), StatusCode::NOT_FOUND);
        assert_eq!(
            status(p("GET", "/fhir/Patient/bad_id")),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(p("DELETE", "/fhir/Patient")),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(p("OPTIONS", "/fhir/Patient")),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(p("GET", "/fhir/Patient?_format=xml")),
            StatusCode::NOT_ACCEPTABLE
        );
    }

    #[test]
    fn refuses_non_json_accept_and_bodies() {
        let xml = parts(
            "GET",
            "/fhir/Patient/p1",
            &[("accept", "application/fhir+xml")],
        );
        assert_eq!(
            status(parse_request(&xml, b"", "/fhir")),
            StatusCode::NOT_ACCEPTABLE
        );
        let ok = parts(
            "GET",
            "/fhir/Patient/p1",
            &[("accept", "application/fhir+xml;q=0.9, */*;q=0.1")],
        );
        assert!(parse_request(&ok, b"", "/fhir").is_ok());
        let create = parts("POST", "/fhir/Task", &[("content-type", "text/plain")]);
        assert_eq!(
            status(parse_request(&create, b"{}", "/fhir")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let search = parts(
            "POST",
            "/fhir/Observation/_search",
            &[("content-type", "application/json")],
        );
        assert_eq!(
            status(parse_request(&search, b"{}", "/fhir")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn post_search_reads_the_form_body() {
        let search = parts(
            "POST",
            "/fhir/Observation/_search",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
        );
        let req = parse_request(&search, b"patient=p1", "/fhir").unwrap();
        assert_eq!(req.params.values_of("patient").collect::<Vec<_>>(), ["p1"]);
    }

    #[test]
    fn purpose_is_required_known_and_single() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            parse_purpose(&headers).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        headers.insert(PURPOSE_HEADER, "TREAT".parse().unwrap());
        assert_eq!(parse_purpose(&headers).unwrap().as_str(), "TREAT");
        headers.append(PURPOSE_HEADER, "HPAYMT".parse().unwrap());
        assert_eq!(
            parse_purpose(&headers).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let mut unknown = HeaderMap::new();
        unknown.insert(PURPOSE_HEADER, "BECAUSE".parse().unwrap());
        assert_eq!(
            parse_purpose(&unknown).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }
}
