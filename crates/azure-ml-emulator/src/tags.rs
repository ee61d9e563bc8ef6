//! Emulated ARM Tags API on a compute's scope:
//! `PATCH {compute}/providers/Microsoft.Resources/tags/default` (`Tags_UpdateAtScope`).
//!
//! Order of checks, after the ARM front door in [`super::arm`] (faults, 401, 429,
//! `api-version` present): method (405), `api-version` new enough for tags at scope (400), RBAC
//! `Microsoft.Resources/tags/write` on the compute (403), the body (400), the workspace and the
//! compute (404), the tag limits after the change (400). Success is 200 with
//! `{"id", "name": "default", "type": "Microsoft.Resources/tags", "properties": {"tags"}}`, and
//! the next list or get shows the new tags.
//!
//! `Merge` adds or overwrites; `Replace` sets the whole set; `Delete` removes each given name
//! whose value matches (an empty value removes the name whatever its value). Names compare
//! case-insensitively, as ARM's do.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::arm::{forbidden, method_not_allowed, not_found_resource, parse_body};
use super::http::{Req, arm_error, arm_error_target, json};
use super::rbac;
use super::state::Shared;

/// The RBAC action the Tags API checks at the resource's scope.
pub const TAGS_WRITE_ACTION: &str = "Microsoft.Resources/tags/write";
/// Longest tag value Azure accepts, in characters (Microsoft's "Use tags to organize your
/// Azure resources", limitations).
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// Longest tag name Azure accepts, in characters (same page).
pub const MAX_TAG_NAME_CHARS: usize = 512;
/// Most tags one resource may carry (same page).
pub const MAX_TAGS: usize = 50;

/// Provider namespace of computes, as ARM spells it.
const NS: &str = "Microsoft.MachineLearningServices";
/// First api-version with tags at a resource's scope.
const FIRST_TAGS_API: &str = "2019-10-01";
/// Characters ARM refuses in tag names.
const RESERVED_NAME_CHARS: &[char] = &['<', '>', '%', '&', '\\', '?', '/'];

/// What the PATCH does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Merge,
    Replace,
    Delete,
}

/// Whether lowercased `s` (the path segments of a workspace route) is
/// `…/computes/{name}/providers/Microsoft.Resources/tags/default`.
pub fn is_tags_path(s: &[&str]) -> bool {
    s.len() == 14
        && s[8] == "computes"
        && s[10] == "providers"
        && s[11] == "microsoft.resources"
        && s[12] == "tags"
        && s[13] == "default"
}

/// Serves one request on a compute's tags (authenticated, unthrottled, `api-version` present).
pub fn handle(shared: &Shared, req: &Req, idx: usize, v: &str) -> Response {
    let (sub, rg, wsn, name) = (&req.segs[1], &req.segs[3], &req.segs[7], &req.segs[9]);
    if req.method != Method::PATCH {
        return method_not_allowed(req);
    }
    if v < FIRST_TAGS_API {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid for resource type 'Microsoft.Resources/tags'. The supported versions start at '{FIRST_TAGS_API}'."
            ),
        );
    }
    let scope = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/{NS}/workspaces/{wsn}/computes/{name}"
    );
    if !rbac::allowed(&shared.fleet.principals[idx].actions, TAGS_WRITE_ACTION) {
        return forbidden(shared, idx, TAGS_WRITE_ACTION, &scope);
    }
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (op, given) = match parse_patch(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };

    let now = shared.clock.now();
    let mut inner = shared.lock();
    inner.settle(now);
    let Some(wi) = inner.find_ws(sub, rg, wsn) else {
        return not_found_resource(&format!("{NS}/workspaces/{wsn}"), rg);
    };
    let ws = &mut inner.workspaces[wi];
    let Some(ii) = ws.find(name) else {
        return not_found_resource(
            &format!("{NS}/workspaces/{}/computes/{name}", ws.spec.name),
            &ws.spec.resource_group,
        );
    };
    let id = format!(
        "{}/computes/{}/providers/Microsoft.Resources/tags/default",
        ws.id(),
        ws.instances[ii].name
    );
    let inst = &mut ws.instances[ii];
    let after = apply(&inst.tags, op, &given);
    if after.len() > MAX_TAGS {
        return arm_error_target(
            StatusCode::BAD_REQUEST,
            "TooManyTags",
            format!(
                "The resource would have {} tags; at most {MAX_TAGS} are allowed.",
                after.len()
            ),
            "tags",
        );
    }
    inst.tags = after;
    json(
        StatusCode::OK,
        &json!({
            "id": id,
            "name": "default",
            "type": "Microsoft.Resources/tags",
            "properties": {"tags": inst.tags},
        }),
    )
}

/// The tags after `op`.
fn apply(
    current: &BTreeMap<String, String>,
    op: Op,
    given: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match op {
        Op::Replace => given.clone(),
        Op::Merge => {
            let mut out: BTreeMap<String, String> = current
                .iter()
                .filter(|(k, _)| !given.keys().any(|g| same(g, k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            out.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
            out
        }
        Op::Delete => current
            .iter()
            .filter(|(k, v)| {
                !given
                    .iter()
                    .any(|(gk, gv)| same(gk, k) && (gv.is_empty() || gv == *v))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per request"
)]
fn parse_patch(body: &Value) -> Result<(Op, BTreeMap<String, String>), Response> {
    let invalid = |message: String, target: &str| {
        arm_error_target(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            message,
            target,
        )
    };
    let op = match body.get("operation").and_then(Value::as_str) {
        Some(o) if o.eq_ignore_ascii_case("Merge") => Op::Merge,
        Some(o) if o.eq_ignore_ascii_case("Replace") => Op::Replace,
        Some(o) if o.eq_ignore_ascii_case("Delete") => Op::Delete,
        Some(o) => {
            return Err(invalid(
                format!("The operation '{o}' is invalid; use 'Merge', 'Replace' or 'Delete'."),
                "operation",
            ));
        }
        None => {
            return Err(invalid(
                "The property 'operation' is required and must be 'Merge', 'Replace' or 'Delete'."
                    .to_owned(),
                "operation",
            ));
        }
    };
    let Some(tags) = body
        .get("properties")
        .and_then(|p| p.get("tags"))
        .and_then(Value::as_object)
    else {
        return Err(invalid(
            "The property 'properties.tags' is required and must be an object.".to_owned(),
            "properties.tags",
        ));
    };
    let mut out = BTreeMap::new();
    for (k, val) in tags {
        let Some(s) = val.as_str() else {
            return Err(invalid(
                format!("The value of tag '{k}' must be a string."),
                "properties.tags",
            ));
        };
        if k.trim().is_empty()
            || k.chars()
                .any(|c| RESERVED_NAME_CHARS.contains(&c) || c.is_control())
        {
            return Err(arm_error_target(
                StatusCode::BAD_REQUEST,
                "InvalidTagNameCharacters",
                format!(
                    "The tag name '{k}' is empty or has reserved characters '<,>,%,&,\\,?,/' or control characters."
                ),
                "properties.tags",
            ));
        }
        if k.chars().count() > MAX_TAG_NAME_CHARS {
            return Err(arm_error_target(
                StatusCode::BAD_REQUEST,
                "InvalidTagNameLength",
                format!("A tag name is longer than {MAX_TAG_NAME_CHARS} characters."),
                "properties.tags",
            ));
        }
        if s.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(arm_error_target(
                StatusCode::BAD_REQUEST,
                "InvalidTagValueLength",
                format!("The value of tag '{k}' is longer than {MAX_TAG_VALUE_CHARS} characters."),
                "properties.tags",
            ));
        }
        out.insert(k.clone(), s.to_owned());
    }
    Ok((op, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn paths() {
        let ok = "subscriptions/s/resourcegroups/rg/providers/microsoft.machinelearningservices/workspaces/w/computes/c/providers/microsoft.resources/tags/default";
        let segs: Vec<&str> = ok.split('/').collect();
        assert!(is_tags_path(&segs));
        let other = ok.replace("/default", "/other");
        let segs: Vec<&str> = other.split('/').collect();
        assert!(!is_tags_path(&segs));
        let segs: Vec<&str> = ok.split('/').take(10).collect();
        assert!(!is_tags_path(&segs));
    }

    #[test]
    fn merge_replace_delete() {
        let cur = tags(&[("team", "vision"), ("Lightsout-Hold-Until", "old")]);
        let merged = apply(
            &cur,
            Op::Merge,
            &tags(&[("lightsout-hold-until", "new"), ("x", "1")]),
        );
        assert_eq!(
            merged,
            tags(&[
                ("team", "vision"),
                ("lightsout-hold-until", "new"),
                ("x", "1")
            ])
        );
        assert_eq!(apply(&cur, Op::Replace, &tags(&[])), tags(&[]));
        // Delete by name/value: a stale value leaves the tag; an empty value removes the name.
        let d = apply(
            &merged,
            Op::Delete,
            &tags(&[("lightsout-hold-until", "old")]),
        );
        assert_eq!(d, merged);
        let d = apply(
            &merged,
            Op::Delete,
            &tags(&[("LIGHTSOUT-HOLD-UNTIL", "new")]),
        );
        assert_eq!(d, tags(&[("team", "vision"), ("x", "1")]));
        let d = apply(&merged, Op::Delete, &tags(&[("x", ""), ("absent", "1")]));
        assert_eq!(
            d,
            tags(&[("team", "vision"), ("lightsout-hold-until", "new")])
        );
    }

    #[test]
    fn bodies_are_checked() {
        let ok = json!({"operation": "Merge", "properties": {"tags": {"a": "b"}}});
        assert_eq!(parse_patch(&ok).unwrap(), (Op::Merge, tags(&[("a", "b")])));
        let delete = json!({"operation": "delete", "properties": {"tags": {}}});
        assert_eq!(parse_patch(&delete).unwrap().0, Op::Delete);
        for bad in [
            json!({"properties": {"tags": {}}}),
            json!({"operation": "Append", "properties": {"tags": {}}}),
            json!({"operation": "Merge"}),
            json!({"operation": "Merge", "properties": {"tags": ["a"]}}),
            json!({"operation": "Merge", "properties": {"tags": {"a": 1}}}),
            json!({"operation": "Merge", "properties": {"tags": {"a/b": "1"}}}),
            json!({"operation": "Merge", "properties": {"tags": {"a": "x".repeat(257)}}}),
        ] {
            let r = parse_patch(&bad).unwrap_err();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
