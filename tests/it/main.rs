//! The one integration-test binary: one module per area.

mod client; // the ARM client against a small local fake
mod emulator; // the emulator over real HTTPS
mod store; // the SQLite state under SIGKILL, and `lightsout audit`
