//! The one integration-test binary: one module per area.

mod cli_ci; // `lightsout ci` (the binary) against the emulator binary
mod client; // the ARM client against a small local fake
mod emulator; // the emulator over real HTTPS
mod ship; // doctor, healthcheck, completions and man page (issue 7)
mod store; // the SQLite state under SIGKILL, and `lightsout audit`
mod support; // spawning the emulator and lightsout binaries
