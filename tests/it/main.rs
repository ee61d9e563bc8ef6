//! The one integration-test binary: one module per area.
#![expect(clippy::unwrap_used, reason = "test helpers may panic on bad fixtures")]

mod agent_daemon; // issue 15: the daemon decides on agents' heartbeats in real Azurite
mod architecture; // issue 14: no import circle among the modules of src/
mod azurite_support; // spawning Azurite (blob storage emulator) with HTTPS and OAuth
mod blob; // issue 15: the blob client against real Azurite, tokens from the emulator
mod cli_ci; // `lightsout ci` (the binary) against the emulator binary
mod client; // the ARM client against a small local fake
mod conformance; // the emulator binary against the recorded real Azure answers
mod daemon; // `lightsout run` against the emulator binary: acts, records, signals, boundaries
mod demo; // `lightsout demo` end to end
mod emulator; // the emulator over real HTTPS
mod hold; // `lightsout hold` / `release` (the binary): tags, the next pass honours them
mod http_server; // the daemon's HTTP server under idle floods and slow clients
mod metrics; // `lightsout run`: /metrics, health, status, costs across a restart, `report`
mod native; // [policy.native]: drift, enforcement, mirrored schedules vs preview, daemon down
mod probe; // the Jupyter probe: where its token goes, slow and huge answers
mod recorded_shapes; // run and ci through a proxy that gives answers the shapes real Azure recorded
mod replay; // real Azure's recorded answers served to the real client over HTTP
mod ship; // doctor, healthcheck, completions and man page (issue 7)
mod simulate; // the daemon against the in-process emulator in virtual time
mod store; // the SQLite state under SIGKILL, and `lightsout audit`
mod support; // spawning the emulator and lightsout binaries
mod transport; // issue 13: redirects, http endpoints, secret file mode, clamped durations, names, ARM text
mod visibility; // a daemon that cannot see or cannot write says so: readyz, healthz, metrics, logs
