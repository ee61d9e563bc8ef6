#!/usr/bin/env bash
# Supply chain (issue 13, item 15): cargo-deny against deny.toml.
#   licenses: only the permissive licences deny.toml allows;
#   bans:     no OpenSSL / native-tls, no tokio-cron-scheduler, no wildcard versions;
#   sources:  crates.io only.
#   advisories: RustSec's database is a git repository on GitHub. Checked when GitHub answers;
#   otherwise reported as not run, never as passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO_DENY_VERSION=0.20.2

if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
    echo "installing cargo-deny $CARGO_DENY_VERSION from crates.io"
    # Its own temporary target dir: never the project's (no lock contention, no pollution).
    (unset CARGO_TARGET_DIR; cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION" --quiet)
fi
cargo deny --version

# Errors only: a crate in two versions is a warning (deny.toml), not worth a page of log.
cargo deny --locked --log-level error check licenses bans sources
echo "supply chain: licenses, bans, sources ok"

if timeout 10 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
    cargo deny --locked check advisories
    echo "supply chain: advisories ok (fetched from GitHub)"
else
    echo "supply chain: advisories NOT CHECKED: github.com/rustsec/advisory-db is unreachable from here" >&2
fi
