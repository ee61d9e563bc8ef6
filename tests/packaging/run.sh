#!/usr/bin/env bash
# Packaging checks (issue 7): the systemd unit, the Dockerfile (parsed: no engine in CI), the
# Kubernetes manifests (schemas, offline), and the Debian package: built with cargo-deb,
# installed with dpkg -i, its installed binary validating its installed config, then purged.
#
# Needs: the Rust toolchain, python3 with pip, and root with apt-get for missing Debian tools
# (systemd-analyze, dpkg-shlibdeps, adduser). Ends with "packaging: N passed, 0 failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
CARGO_DEB_VERSION=3.8.0

passed=0
started=$SECONDS
pass() {
    passed=$((passed + 1))
    echo "ok $passed - $1 ($((SECONDS - started))s so far)"
}
section() { echo; echo "== packaging: $1"; }

section "tools"
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v adduser >/dev/null 2>&1 || missing+=(adduser)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "missing ${missing[*]} and cannot apt-get install them (need root)" >&2
        exit 1
    fi
fi
python3 -m pip install --quiet --disable-pip-version-check -r tests/packaging/requirements.txt
if ! command -v cargo-deb >/dev/null 2>&1; then
    # Its own temporary target dir: never the project's (no lock contention, no pollution).
    (unset CARGO_TARGET_DIR; cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --quiet)
fi
cargo deb --version
pass "tools present"

section "systemd unit (security rating)"
tests/packaging/check-systemd.sh systemd/lightsout.service --no-verify
pass "systemd-analyze security rates systemd/lightsout.service at or below 2.0"

section "agent unit (security rating, verify)"
tests/packaging/check-agent-unit.sh
pass "systemd-analyze rates deploy/agent/lightsout-agent.service at or below 2.5 and verifies it"

section "Dockerfile (parsed)"
python3 tests/packaging/check_dockerfile.py
(cd tests/packaging && python3 -m pytest -q -p no:cacheprovider test_dockerfile.py)
pass "Dockerfile: pinned bases, non-root, healthcheck, CI's build command"

section "Kubernetes manifests"
kubernetes-validate --strict deploy/kubernetes/*.yaml
pass "deploy/kubernetes validates against the Kubernetes $(kubernetes-validate --version 2>/dev/null | awk '{print $NF}') schemas"
(cd tests/packaging && python3 -m pytest -q -p no:cacheprovider test_kubernetes.py)
pass "one replica; the NetworkPolicy lets only the scraper reach port 9464, egress DNS and HTTPS only"

section "release build (make release)"
make --no-print-directory release
bin="$CARGO_TARGET_DIR/release/lightsout"
"$bin" --version
# The ConfigMap's config is a valid lightsout config.
cm_config=$(mktemp)
python3 - "$cm_config" <<'PY'
import sys, yaml
doc = yaml.safe_load(open("deploy/kubernetes/configmap.yaml"))
open(sys.argv[1], "w").write(doc["data"]["lightsout.toml"])
PY
"$bin" validate --config "$cm_config"
rm -f "$cm_config"
pass "release build; the ConfigMap's lightsout.toml validates"

section "Debian package (cargo-deb)"
deb=$(tests/packaging/build-deb.sh | tail -1)
echo "built $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
echo "contents:"
dpkg -c "$deb"
pass "cargo deb built $(basename "$deb")"

section "install with dpkg -i"
if [ "$(id -u)" != 0 ]; then
    echo "not root: install checks skipped" >&2
else
    was_installed=no
    dpkg -s lightsout >/dev/null 2>&1 && was_installed=yes
    dpkg -i "$deb"
    /usr/bin/lightsout --version
    /usr/bin/lightsout validate --config /etc/lightsout/lightsout.toml
    getent passwd lightsout
    [ "$(stat -c '%a %U' /etc/lightsout/client-secret)" = "600 root" ]
    dpkg-query -W -f='${Conffiles}\n' lightsout | grep -q /etc/lightsout/lightsout.toml
    [ -s /usr/share/man/man1/lightsout.1.gz ]
    [ -s /usr/share/bash-completion/completions/lightsout ]
    unit=$(dpkg -L lightsout | grep "/systemd/system/lightsout.service$")
    tests/packaging/check-systemd.sh "$unit"
    pass "dpkg -i: installed binary validates the installed config; user, secret file, conffile, unit verified"
    if [ "$was_installed" = no ]; then
        dpkg --purge lightsout >/dev/null
        [ ! -e /usr/bin/lightsout ] && [ ! -e /etc/lightsout/client-secret ]
        pass "dpkg --purge removes the package, the secret file and the state"
    fi
fi

echo
echo "packaging took $((SECONDS - started))s"
echo "packaging: $passed passed, 0 failed"
