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

/// The unit the script installs.
pub const UNIT: &str = include_str!("../../deploy/agent/lightsout-agent.service");

/// What the script is made with.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// Where the binary comes from: an https URL (fetched with curl) or a path on the
    /// instance; `None`: `lightsout` next to the script, in its working directory.
    pub from: Option<String>,
    /// The blob service endpoint.
    pub account: Url,
    /// The heartbeat container.
    pub container: String,
    /// The identity's client id (a user-assigned identity); `None`: the system-assigned one.
    pub client_id: Option<String>,
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
    let from = options.from.as_deref().unwrap_or("./lightsout");
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
    TEMPLATE
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"))
        .replace("@FROM@", &sh_quote(from))
        .replace("@FIXED@", &fixed)
        .replace("@UNIT@", &unit_without_comments())
}

/// The unit without its comment lines: the script travels inline in the compute's ARM body,
/// where size is scarce (see `ci create --setup-script`); the commented unit is
/// `deploy/agent/lightsout-agent.service`.
fn unit_without_comments() -> String {
    UNIT.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The script's text. `@…@` are filled by [`script`]; the here-documents are quoted (`<<'EOF'`)
/// so nothing in them is expanded by bash.
const TEMPLATE: &str = r##"#!/bin/bash
# lightsout agent installer for Azure ML compute instances: use it as the creation AND the
# startup script (it is idempotent). Runs as root. Made by `lightsout agent setup-script`
# @VERSION@; docs/agent.md explains every step.
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
mkdir -p "$(dirname "$bin")" || give_up "cannot create $(dirname "$bin")"
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
mkdir -p "$(dirname "$unit")" || give_up "cannot create $(dirname "$unit")"
cat > "$unit.new" <<'LIGHTSOUT_UNIT_EOF'
@UNIT@LIGHTSOUT_UNIT_EOF
if cmp -s "$unit.new" "$unit"; then
    rm -f "$unit.new"
    say "unit unchanged: $unit"
else
    mv -f "$unit.new" "$unit" || give_up "cannot install $unit"
    say "installed $unit"
fi

# 3. The config, from what Azure ML tells setup scripts (and nothing else will).
mkdir -p "$(dirname "$conf")" || give_up "cannot create $(dirname "$conf")"
{
    echo "# Written by the lightsout setup script at every start; edit the script, not this file."
    echo "resource_group = \"$CI_RESOURCE_GROUP\""
    echo "workspace = \"$CI_WORKSPACE\""
    echo "instance = \"$CI_NAME\""
    echo "user = \"$user\""
    cat <<'LIGHTSOUT_CONF_EOF'
@FIXED@LIGHTSOUT_CONF_EOF
} > "$conf.new" || give_up "cannot write $conf"
if cmp -s "$conf.new" "$conf"; then
    rm -f "$conf.new"
    say "config unchanged: $conf"
else
    mv -f "$conf.new" "$conf" || give_up "cannot install $conf"
    say "wrote $conf"
fi

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
}
