//! The daemon run against the emulator, in one process: `lightsout demo` (clock running fast)
//! and `lightsout simulate` (virtual time), and the client that points at an emulator.

pub mod demo;
pub mod emulated;
pub mod simulate;
