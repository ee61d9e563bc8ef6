#!/usr/bin/env bash
# Build the Debian package from an existing release build (`make release`):
# generate the man page and shell completions with the binary itself, then `cargo deb`.
# Prints the path of the .deb on the last line.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$target/release/lightsout"
[ -x "$bin" ] || { echo "no release binary at $bin: run 'make release' first" >&2; exit 1; }

assets="$target/release/assets"
rm -rf "$assets"
mkdir -p "$assets"
"$bin" manpage | gzip -9n > "$assets/lightsout.1.gz"
"$bin" completions bash > "$assets/lightsout.bash"
"$bin" completions zsh > "$assets/_lightsout"
"$bin" completions fish > "$assets/lightsout.fish"

# --no-build: package exactly the binary CI tested. cargo-deb maps target/release/ in the
# asset list onto $CARGO_TARGET_DIR.
cargo deb --no-build --locked --strip --output "$target/debian/" >&2
ls -t "$target"/debian/lightsout_*.deb | head -1
