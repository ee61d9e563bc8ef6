//! lightsout: stops idle and off-hours Azure Machine Learning compute instances.
//!
//! # Layout
//!
//! - [`model`]: domain vocabulary shared by every layer (pure).
//! - [`azure`]: the ARM client: wire types, errors, retries, long-running operations, auth.
//! - [`emulator`]: a local fake of the Azure endpoints (ARM, Entra ID, Jupyter, prices).

pub mod azure;
pub mod emulator;
pub mod model;
