//! Small HTTP helpers shared by the emulated services: the parsed request and response
//! builders. No state, no clock.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

/// A request, read whole.
#[derive(Debug)]
pub struct Req {
    /// Method.
    pub method: Method,
    /// Raw path.
    pub path: String,
    /// Percent-decoded path segments, without empty ones.
    pub segs: Vec<String>,
    /// Raw query string, if any.
    pub raw_query: Option<String>,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Req {
    /// Builds a request from its parts.
    pub fn new(
        method: Method,
        path: &str,
        raw_query: Option<&str>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Req {
        let segs = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let query = raw_query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Req {
            method,
            path: path.to_owned(),
            segs,
            raw_query: raw_query.map(str::to_owned),
            query,
            headers,
            body,
        }
    }

    /// A query parameter by case-insensitive name (ARM treats names so).
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Path segment `i`, lowercased, for matching fixed segments.
    pub fn seg_lc(&self, i: usize) -> Option<String> {
        self.segs.get(i).map(|s| s.to_ascii_lowercase())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The bearer token of the `Authorization` header.
    pub fn bearer(&self) -> Bearer<'_> {
        match self.header("authorization") {
            None => Bearer::Missing,
            Some(v) => match v.split_once(' ') {
                Some((scheme, tok))
                    if scheme.eq_ignore_ascii_case("bearer") && !tok.trim().is_empty() =>
                {
                    Bearer::Token(tok.trim())
                }
                _ => Bearer::Malformed,
            },
        }
    }
}

/// What the `Authorization` header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer<'a> {
    /// No header.
    Missing,
    /// A header that is not `Bearer <token>`.
    Malformed,
    /// The token.
    Token(&'a str),
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON response.
pub fn json(status: StatusCode, v: &Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// A response without body.
pub fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &str) -> Response {
    let mut r = Response::new(Body::from(body.to_owned()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// An ARM error: `{"error":{"code","message"}}`.
pub fn arm_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json(
        status,
        &json!({"error": {"code": code, "message": message.into()}}),
    )
}

/// An ARM error with a target.
pub fn arm_error_target(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    target: &str,
) -> Response {
    json(
        status,
        &json!({"error": {"code": code, "message": message.into(), "target": target}}),
    )
}

/// Sets a header, ignoring values that are not valid header text (never the case for the
/// URLs and numbers the emulator writes).
pub fn set_header(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_segments_and_query() {
        let r = Req::new(
            Method::GET,
            "/a%20b//c",
            Some("api-version=2025-12-01&%24skip=2"),
            HeaderMap::new(),
            Bytes::new(),
        );
        assert_eq!(r.segs, vec!["a b", "c"]);
        assert_eq!(r.q("API-VERSION"), Some("2025-12-01"));
        assert_eq!(r.q("$skip"), Some("2"));
    }
}
