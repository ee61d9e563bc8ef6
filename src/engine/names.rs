//! Azure's naming rules for the names that go into ARM URL paths (pure).
//!
//! A name is refused before any request is built from it: `victim/start?x=` must not become a
//! request on another path, whatever the encoding does. Rules, from Microsoft's documentation
//! ("Naming rules and restrictions for Azure resources", and Azure ML's own error message
//! "A name for an Azure ML Compute Instance must be between 3 and 24 characters in length and
//! must use only numbers, letters and minus symbol (-), must start with letters"):
//!
//! - compute instance: 3–24 characters, ASCII letters, digits and hyphens, starts with a letter;
//! - workspace: 3–33 characters, ASCII letters, digits, hyphens and underscores, starts with a
//!   letter or digit;
//! - resource group: 1–90 characters, letters and digits (Unicode), `_`, `(`, `)`, `-`, `.`,
//!   not ending with `.`.
//!
//! [`check_url_token`] is the looser rule for names we never validate against Azure but
//! still place in a path (subscription ids are GUIDs and are checked in the config).

use std::fmt;

/// Which kind of name a [`NameError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A compute instance.
    Instance,
    /// An Azure ML workspace.
    Workspace,
    /// A resource group.
    ResourceGroup,
    /// A subscription id.
    Subscription,
}

impl NameKind {
    fn as_str(self) -> &'static str {
        match self {
            NameKind::Instance => "compute instance name",
            NameKind::Workspace => "workspace name",
            NameKind::ResourceGroup => "resource group name",
            NameKind::Subscription => "subscription id",
        }
    }

    fn rule(self) -> &'static str {
        match self {
            NameKind::Instance => {
                "3 to 24 characters: letters, digits and hyphens, starting with a letter"
            }
            NameKind::Workspace => {
                "3 to 33 characters: letters, digits, hyphens and underscores, starting with a letter or digit"
            }
            NameKind::ResourceGroup => {
                "1 to 90 characters: letters, digits, underscores, parentheses, hyphens and periods, not ending with a period"
            }
            NameKind::Subscription => "a GUID",
        }
    }
}

/// A name outside Azure's rules. `Display` quotes it escaped and bounded: it may come from a
/// terminal or from ARM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct NameError {
    /// What the name names.
    pub kind: NameKind,
    /// The refused name.
    pub name: String,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} {:?}: Azure allows {}",
            self.kind.as_str(),
            crate::engine::text::truncate_chars(&self.name, 64),
            self.kind.rule()
        )
    }
}

fn refuse(kind: NameKind, name: &str) -> NameError {
    NameError {
        kind,
        name: name.to_owned(),
    }
}

/// A compute instance name Azure would accept.
pub fn check_instance(name: &str) -> Result<(), NameError> {
    let ok = (3..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok.then_some(())
        .ok_or_else(|| refuse(NameKind::Instance, name))
}

/// A workspace name Azure would accept.
pub fn check_workspace(name: &str) -> Result<(), NameError> {
    let ok = (3..=33).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(())
        .ok_or_else(|| refuse(NameKind::Workspace, name))
}

/// A resource group name Azure would accept.
pub fn check_resource_group(name: &str) -> Result<(), NameError> {
    let ok = (1..=90).contains(&name.chars().count())
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '(' | ')' | '-' | '.'));
    ok.then_some(())
        .ok_or_else(|| refuse(NameKind::ResourceGroup, name))
}

/// A subscription id: a GUID (8-4-4-4-12 hex digits).
pub fn check_subscription(id: &str) -> Result<(), NameError> {
    let parts: Vec<&str> = id.split('-').collect();
    let ok = parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then_some(())
        .ok_or_else(|| refuse(NameKind::Subscription, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        for ok in ["ci-1", "abc", "Alice-GPU-01", "a23456789012345678901234"] {
            assert!(check_instance(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "1abc",
            "-abc",
            "victim/start?x=",
            "a..",
            "abc def",
            "ci_1",
            "a234567890123456789012345",
            "ci\u{1b}[31m",
            "..",
            "ci%2F",
        ] {
            let e = check_instance(bad).unwrap_err();
            assert!(e.to_string().contains("3 to 24 characters"), "{e}");
        }
        let e = check_instance("x\n\u{1b}[2J").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}') && !e.contains('\n'), "{e}");
    }

    #[test]
    fn workspace_and_group_names() {
        assert!(check_workspace("workspaces123").is_ok());
        assert!(check_workspace("my_ws-1").is_ok());
        assert!(check_workspace("ws/../x").is_err());
        assert!(check_workspace("-ws").is_err());
        assert!(check_resource_group("rg").is_ok());
        assert!(check_resource_group("My.Group(1)_x-é").is_ok());
        assert!(check_resource_group("rg.").is_err());
        assert!(check_resource_group(".").is_err());
        assert!(check_resource_group("rg/x").is_err());
        assert!(check_resource_group("rg?x").is_err());
        assert!(check_resource_group("").is_err());
        assert!(check_subscription("34adfa4f-cedf-4dc0-ba29-b6d1a69ab345").is_ok());
        assert!(check_subscription("sub").is_err());
    }
}
