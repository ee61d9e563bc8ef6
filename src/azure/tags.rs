//! ARM's generic Tags API on a resource's scope (`Microsoft.Resources/tags/default`): the
//! request and response shapes of `Tags_UpdateAtScope` (api-version [`TAGS_API_VERSION`]),
//! and Azure's limits on tag names and values. Pure.
//!
//! `PATCH {resource id}/providers/Microsoft.Resources/tags/default` with
//! `{"operation": "Merge" | "Delete", "properties": {"tags": {…}}}` changes only the tags of the
//! resource, not the resource itself, and needs `Microsoft.Resources/tags/write` at its scope.
//! `Merge` adds or overwrites the given names; `Delete` removes the given names (or name/value
//! pairs). The answer is 200 with the resource's tags after the change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// API version of `Microsoft.Resources/tags` (the newest whose `Tags_UpdateAtScope` answers
/// 200 with the tags, rather than a long-running 202).
pub const TAGS_API_VERSION: &str = "2021-04-01";
/// The RBAC action the Tags API checks at the resource's scope.
pub const TAGS_WRITE_ACTION: &str = "Microsoft.Resources/tags/write";
/// Longest tag value Azure accepts, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// Longest tag name Azure accepts, in characters.
pub const MAX_TAG_NAME_CHARS: usize = 512;
/// Most tags one resource may carry.
pub const MAX_TAGS: usize = 50;

crate::engine::text_enum::text_enum! {
    what = "tags operation";
    /// What a tags `PATCH` does with the given tags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum TagsOperation {
        /// Add the given names, overwrite their values where they exist; keep every other tag.
        Merge = "Merge",
        /// Remove the given names (only where the value matches, when a value is given).
        Delete = "Delete",
    }
}

/// A set of tags, as `properties` of the Tags API carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tags {
    /// Name to value; `null` and absent both mean none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// Request body of `Tags_UpdateAtScope` (`TagsPatchResource`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagsPatch {
    /// What to do with `properties.tags`.
    pub operation: TagsOperation,
    /// The tags to merge or delete.
    pub properties: Tags,
}

impl TagsPatch {
    /// The body that applies `operation` to `tags`.
    pub fn new(operation: TagsOperation, tags: &BTreeMap<String, String>) -> TagsPatch {
        TagsPatch {
            operation,
            properties: Tags {
                tags: Some(tags.clone()),
            },
        }
    }
}

/// Response of the Tags API (`TagsResource`): the resource's tags after the change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagsResource {
    /// `{resource id}/providers/Microsoft.Resources/tags/default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Microsoft.Resources/tags`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// The tags.
    #[serde(default)]
    pub properties: Tags,
}

impl TagsResource {
    /// The tags, empty when there are none.
    pub fn into_tags(self) -> BTreeMap<String, String> {
        self.properties.tags.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn merge_body_is_what_arm_expects() {
        let body = TagsPatch::new(
            TagsOperation::Merge,
            &tags(&[
                ("lightsout-hold-until", "2026-03-27T21:00:00Z"),
                ("lightsout-hold-reason", "demo tonight"),
            ]),
        );
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({
                "operation": "Merge",
                "properties": {"tags": {
                    "lightsout-hold-until": "2026-03-27T21:00:00Z",
                    "lightsout-hold-reason": "demo tonight",
                }}
            })
        );
    }

    #[test]
    fn delete_body_names_the_pairs() {
        let body = TagsPatch::new(
            TagsOperation::Delete,
            &tags(&[("lightsout-hold-until", "2026-03-27T21:00:00Z")]),
        );
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({
                "operation": "Delete",
                "properties": {"tags": {"lightsout-hold-until": "2026-03-27T21:00:00Z"}}
            })
        );
        assert_eq!(TagsOperation::Delete.as_str(), "Delete");
    }

    #[test]
    fn response_parses_with_and_without_tags() {
        let r: TagsResource = serde_json::from_value(json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/computes/c/providers/Microsoft.Resources/tags/default",
            "name": "default",
            "type": "Microsoft.Resources/tags",
            "properties": {"tags": {"team": "vision"}}
        }))
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("default"));
        assert_eq!(r.into_tags(), tags(&[("team", "vision")]));
        let r: TagsResource = serde_json::from_value(json!({"properties": {}})).unwrap();
        assert!(r.into_tags().is_empty());
        let r: TagsResource =
            serde_json::from_value(json!({"properties": {"tags": null}})).unwrap();
        assert!(r.into_tags().is_empty());
    }
}
