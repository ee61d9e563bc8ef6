//! Integration tests (one binary).

mod emulator;
