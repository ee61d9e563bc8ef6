//! The agent's Azure ML setup script (`lightsout agent setup-script`): one bash script for
//! both the creation and the startup slot. It installs the binary and the unit, writes
//! `/etc/lightsout/agent.toml` from `CI_RESOURCE_GROUP`, `CI_WORKSPACE`, `CI_NAME` and
//! `CI_LOCAL_UBUNTU_USER` (only setup scripts see them: AGENT.md section 1.6), and
//! (re)starts the service. Idempotent: the startup script runs at every start.
//!
//! It never fails the instance's provisioning because of the agent: every problem is said
//! on stderr (the setup script log in the workspace's file share) and the script exits 0.
//! `LIGHTSOUT_PREFIX` installs under another root and skips systemctl (tests).

use url::Url;

use crate::engine::config::agent_file::{account_url, container_problem};
use crate::engine::config::auth::Cloud;
use crate::engine::config::validate::storage_account_endpoint;

/// The unit the script installs.
pub const UNIT: &str = include_str!("../../deploy/agent/lightsout-agent.service");

/// `--from`'s default: `lightsout` next to the script, in its working directory.
pub const DEFAULT_FROM: &str = "./lightsout";

/// What the script is made with; [`parse_from`], [`parse_account`] and [`parse_container`]
/// check the values first, with the agent's own rules.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// Where the binary comes from: an https URL (fetched with curl) or a path on the
    /// instance; `None`: [`DEFAULT_FROM`].
    pub from: Option<String>,
    /// The blob service endpoint.
    pub account: Url,
    /// The heartbeat container.
    pub container: String,
    /// The identity's client id (a user-assigned identity); `None`: the system-assigned one.
    pub client_id: Option<String>,
}

/// `--from`: an https URL or an absolute path on the instance (or [`DEFAULT_FROM`]). Plain
/// http is refused here, not only by the script on the instance, where nobody would see it.
pub fn parse_from(s: &str) -> Result<String, String> {
    // The script tells them apart by these literal prefixes (`case "$from" in https://*)`).
    let https = s
        .strip_prefix("https://")
        .is_some_and(|rest| !rest.starts_with('/'))
        && Url::parse(s).is_ok_and(|u| u.host().is_some());
    if s == DEFAULT_FROM || s.starts_with('/') || https {
        Ok(s.to_owned())
    } else if s
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
    {
        Err(format!(
            "plain http is refused (anyone on the way could swap the binary the agent runs as \
             root); use an https URL or an absolute path on the instance, got {s:?}"
        ))
    } else {
        Err(format!(
            "expected an https URL or an absolute path on the instance, got {s:?}"
        ))
    }
}

/// `--account`: the blob endpoint, checked as the agent's config checks `account`
/// ([`account_url`]), or a bare storage account name, which becomes its endpoint in the public
/// cloud as the daemon's `[agent] account` does ([`storage_account_endpoint`]).
pub fn parse_account(s: &str) -> Result<Url, String> {
    if let Some(url) = storage_account_endpoint(s, Cloud::Public) {
        return Ok(url);
    }
    account_url(s).map_err(|p| {
        format!(
            "expected a storage account name (3 to 24 lower-case letters and digits) or its blob \
             endpoint: {p}"
        )
    })
}

/// `--container`: Azure's container rules, as the agent's config checks `container`
/// ([`container_problem`]).
pub fn parse_container(s: &str) -> Result<String, String> {
    match container_problem(s) {
        Some(p) => Err(format!("{p}, got {s:?}")),
        None => Ok(s.to_owned()),
    }
}

/// Quotes `s` for bash: single quotes, each `'` written as `'\''`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Quotes `s` as a TOML basic string.
fn toml_quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The script.
pub fn script(options: &SetupOptions) -> String {
    let from = options.from.as_deref().unwrap_or(DEFAULT_FROM);
    let client_id = options
        .client_id
        .as_deref()
        .map(|id| format!("client_id = {}\n", toml_quote(id)))
        .unwrap_or_default();
    // The fixed part of the config, written into the script now; the CI_* part at run time.
    let fixed = format!(
        "account = {}\ncontainer = {}\n{client_id}",
        toml_quote(options.account.as_str()),
        toml_quote(&options.container)
    );
    without_comments(TEMPLATE)
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"))
        .replace("@FROM@", &sh_quote(from))
        .replace("@FIXED@", &fixed)
        .replace("@UNIT@", &without_comments(UNIT))
}

/// `text` without its comment and blank lines, except the shebang and the line naming the
/// version: the script travels inline in the compute's ARM body, where size is scarce (see
/// `ci create --setup-script`). The commented texts are [`TEMPLATE`] and
/// `deploy/agent/lightsout-agent.service`. Only whole lines go: neither text has a comment
/// line inside a here-document or a string.
fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            l.starts_with("#!") || l.contains("@VERSION@") || !(t.is_empty() || t.starts_with('#'))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The script's text. `@…@` are filled by [`script`]; the here-documents are quoted (`<<'EOF'`)
/// so nothing in them is expanded by bash. Comment lines are for this source only (see
/// [`without_comments`]).
const TEMPLATE: &str = r##"#!/bin/bash
# lightsout agent setup script, made by `lightsout agent setup-script` @VERSION@ (docs/agent.md)
# Use it as the creation AND the startup script of an Azure ML compute instance (it is
# idempotent). Runs as root.
#
# It never fails the instance's provisioning: a problem is reported here (the setup script
# log in the workspace's file share) and the instance starts without the agent.
# LIGHTSOUT_PREFIX=/some/dir installs under that directory and skips systemctl (tests).
set -uo pipefail
umask 022

prefix="${LIGHTSOUT_PREFIX:-}"
from=@FROM@
bin="$prefix/usr/local/bin/lightsout"
unit="$prefix/etc/systemd/system/lightsout-agent.service"
conf="$prefix/etc/lightsout/agent.toml"

say() { echo "lightsout-agent setup: $*" >&2; }
give_up() { say "$*; the instance runs without the agent"; exit 0; }
# Makes the directory of the file $1.
mkdir_for() { mkdir -p "${1%/*}" || give_up "cannot create ${1%/*}"; }
# Moves $1.new over $1 unless they are the same; $2 names the file.
put() {
    if cmp -s "$1.new" "$1"; then
        rm -f "$1.new"
        say "$2 unchanged: $1"
    else
        mv -f "$1.new" "$1" || give_up "cannot install $1"
        say "installed $1"
    fi
}

# A value from Azure ML goes into a TOML string: no quotes, backslashes or control characters.
plain() {
    case "$1" in
        '' | *[\"\\]* | *[[:cntrl:]]*) return 1 ;;
    esac
}

if [ -z "$prefix" ] && [ "$(id -u)" != 0 ]; then
    give_up "must run as root (Azure ML runs setup scripts as root)"
fi
for v in CI_RESOURCE_GROUP CI_WORKSPACE CI_NAME; do
    plain "${!v:-}" || give_up "\$$v is missing or unusable (is this an Azure ML setup script?)"
done
user="${CI_LOCAL_UBUNTU_USER:-azureuser}"
plain "$user" || user=azureuser

# 1. The binary: fetched or copied to a temporary file, checked, then moved into place.
mkdir_for "$bin"
tmp="$(mktemp "$bin.XXXXXX")" || give_up "cannot write next to $bin"
trap 'rm -f "$tmp"' EXIT
case "$from" in
    https://*)
        curl -fsSL --retry 3 --max-time 300 -o "$tmp" "$from" || give_up "cannot download $from"
        ;;
    http://*)
        give_up "refusing to download the binary over plain http: $from"
        ;;
    *)
        cp "$from" "$tmp" || give_up "cannot copy $from"
        ;;
esac
chmod 0755 "$tmp"
"$tmp" --version >/dev/null 2>&1 || give_up "$from is not a working lightsout binary for this machine"
if cmp -s "$tmp" "$bin"; then
    say "binary unchanged: $bin"
else
    mv -f "$tmp" "$bin" || give_up "cannot install $bin"
    say "installed $bin ($("$bin" --version))"
fi

# 2. The unit.
mkdir_for "$unit"
cat > "$unit.new" <<'LIGHTSOUT_UNIT_EOF'
@UNIT@LIGHTSOUT_UNIT_EOF
put "$unit" unit

# 3. The config, from what Azure ML tells setup scripts (and nothing else will).
mkdir_for "$conf"
{
    echo "# Written by the lightsout setup script at every start; edit the script, not this file."
    echo "resource_group = \"$CI_RESOURCE_GROUP\""
    echo "workspace = \"$CI_WORKSPACE\""
    echo "instance = \"$CI_NAME\""
    echo "user = \"$user\""
    cat <<'LIGHTSOUT_CONF_EOF'
@FIXED@LIGHTSOUT_CONF_EOF
} > "$conf.new" || give_up "cannot write $conf"
put "$conf" config

# 4. The service: enabled, and restarted so an updated binary or config takes effect.
if [ -n "$prefix" ]; then
    say "LIGHTSOUT_PREFIX is set: systemctl skipped"
elif ! command -v systemctl >/dev/null 2>&1; then
    say "no systemctl here: the service was not started"
else
    systemctl daemon-reload || say "systemctl daemon-reload failed"
    systemctl enable lightsout-agent.service || say "cannot enable lightsout-agent.service"
    systemctl restart lightsout-agent.service || say "cannot start lightsout-agent.service (see journalctl -u lightsout-agent)"
fi
say "done"
exit 0
"##;

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SetupOptions {
        SetupOptions {
            from: Some("https://example.com/it's/lightsout".into()),
            account: Url::parse("https://acct.blob.core.windows.net").expect("url"),
            container: "lightsout-heartbeats".into(),
            client_id: Some("0000-id".into()),
        }
    }

    #[test]
    fn the_script_carries_the_unit_the_source_and_the_fixed_config() {
        let s = script(&options());
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(
            s.contains(r#"from='https://example.com/it'\''s/lightsout'"#),
            "{s}"
        );
        assert!(s.contains("account = \"https://acct.blob.core.windows.net/\"\ncontainer = \"lightsout-heartbeats\"\nclient_id = \"0000-id\"\nLIGHTSOUT_CONF_EOF"));
        assert!(s.contains("\n[Service]\nType=simple\nEnvironmentFile=-/etc/environment.sso\n"));
        assert!(s.contains("WantedBy=multi-user.target\nLIGHTSOUT_UNIT_EOF"));
        assert!(!s.contains("@UNIT@") && !s.contains("@FIXED@") && !s.contains("@FROM@"));
        let plain = script(&SetupOptions {
            from: None,
            client_id: None,
            ..options()
        });
        assert!(plain.contains("from='./lightsout'"));
        assert!(!plain.contains("client_id"));
    }

    #[test]
    fn comments_stay_in_the_source_and_the_version_line_stays_in_the_script() {
        let s = script(&options());
        let mut lines = s.lines();
        assert_eq!(lines.next(), Some("#!/bin/bash"));
        assert!(
            lines
                .next()
                .is_some_and(|l| l.starts_with("# lightsout agent setup script")
                    && l.contains(env!("CARGO_PKG_VERSION"))),
            "{s}"
        );
        // Only the config's own first line, which the script echoes, starts with `#`.
        let comments: Vec<&str> = lines
            .filter(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
            .collect();
        assert!(comments.is_empty(), "{comments:?}");
        assert!(
            s.contains("echo \"# Written by the lightsout setup script"),
            "{s}"
        );
        // Inline scriptData is scarce (docs/agent.md): keep an eye on the size.
        assert!(s.len() < 4200, "{} bytes", s.len());
    }

    #[test]
    fn from_is_an_https_url_or_an_absolute_path() {
        for good in [
            DEFAULT_FROM,
            "/home/azureuser/cloudfiles/code/lightsout",
            "https://example.com/lightsout",
        ] {
            assert_eq!(parse_from(good).as_deref(), Ok(good));
        }
        for http in [
            "http://example.com/lightsout",
            "HTTP://example.com/lightsout",
        ] {
            let e = parse_from(http).unwrap_err();
            assert!(e.contains("plain http is refused"), "{e}");
        }
        for bad in [
            "lightsout",
            "bin/lightsout",
            "ftp://example.com/x",
            "https:///x",
            "HTTPS://example.com/x",
            "",
        ] {
            let e = parse_from(bad).unwrap_err();
            assert!(
                e.contains("expected an https URL or an absolute path"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn account_and_container_follow_the_agents_rules() {
        // A bare name becomes the public cloud's endpoint, as `[agent] account` does.
        assert_eq!(
            parse_account("mlwstorage123").map(String::from).as_deref(),
            Ok("https://mlwstorage123.blob.core.windows.net/")
        );
        assert_eq!(
            parse_account("https://acct.blob.core.chinacloudapi.cn")
                .map(String::from)
                .as_deref(),
            Ok("https://acct.blob.core.chinacloudapi.cn/")
        );
        for bad in [
            "http://acct.blob.core.windows.net",
            "https://acct.blob.core.windows.net/?sv=x",
            "Acct_1",
            "ab",
        ] {
            let e = parse_account(bad).unwrap_err();
            assert!(e.contains("expected a storage account name"), "{bad}: {e}");
            // What the agent would have said about the same value in its config.
            let toml = format!(
                "resource_group = \"rg\"\nworkspace = \"ws\"\ninstance = \"ci\"\naccount = {bad:?}\ncontainer = \"hb-1\"\n"
            );
            assert!(
                crate::engine::config::agent_file::parse(&toml, std::path::Path::new("agent.toml"))
                    .is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            parse_container("lightsout-heartbeats").as_deref(),
            Ok("lightsout-heartbeats")
        );
        for bad in ["Bad_Name", "ab", "a--b", "-ab"] {
            let e = parse_container(bad).unwrap_err();
            assert!(e.contains(&format!("got {bad:?}")), "{e}");
        }
    }

    #[test]
    fn every_script_made_from_accepted_values_gives_a_config_the_agent_accepts() {
        let s = script(&SetupOptions {
            from: Some(parse_from("https://example.com/lightsout").expect("from")),
            account: parse_account("acct123").expect("account"),
            container: parse_container("hb-1").expect("container"),
            client_id: None,
        });
        let fixed = s
            .split("<<'LIGHTSOUT_CONF_EOF'\n")
            .nth(1)
            .and_then(|rest| rest.split("LIGHTSOUT_CONF_EOF").next())
            .expect("the fixed config");
        let toml =
            format!("resource_group = \"rg\"\nworkspace = \"ws\"\ninstance = \"ci\"\n{fixed}");
        let f = crate::engine::config::agent_file::parse(&toml, std::path::Path::new("agent.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{toml}"));
        assert_eq!(f.account.as_str(), "https://acct123.blob.core.windows.net/");
        assert_eq!(f.container, "hb-1");
    }
}
