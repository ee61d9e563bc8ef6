//! The daemon run against the emulator, in one process: `lightsout demo` (clock running fast)
//! and `lightsout simulate` (virtual time), the client that points at an emulator, and its
//! instances' agents reporting in process (no blob storage).

pub mod agents;
pub mod demo;
pub mod emulated;
pub mod simulate;
