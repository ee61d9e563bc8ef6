//! Azure Resource Manager client for Azure ML compute.
//!
//! # Layout
//!
//! - [`wire`]: the JSON shapes ARM sends and accepts (lenient, pure).
//! - [`error`]: ARM error bodies and [`AzureError`], the one error type of this module.
//! - [`retry`]: retry classification, backoff and `Retry-After` parsing (pure).
//! - [`lro`]: long-running operations: `Azure-AsyncOperation` / `Location`, poll-URL safety (pure).
//! - [`convert`]: wire shapes into the engine's model (pure).
//! - [`tags`]: ARM's generic Tags API on a resource's scope (request and response shapes).
//! - [`update`]: the PUT body that changes an instance's idle shutdown or schedules (pure).
//! - [`budget`]: per-subscription read and write budgets under ARM's throttling limits.
//! - [`client`]: [`ArmClient`], the HTTP calls (list/get/create/delete/start/stop/...).
//! - [`auth`]: the shared `reqwest::Client` and the Entra ID credential chain.
//!
//! Data enters as `WorkspaceRef`s and names, leaves as wire types or [`Accepted`] handles; the
//! mapping into domain types lives elsewhere.

pub mod auth;
pub mod blob;
pub mod budget;
pub mod client;
pub mod convert;
pub mod create;
pub mod error;
pub mod jupyter;
pub mod lro;
pub mod msi;
pub mod retry;
pub mod tags;
pub mod update;
pub mod wire;

pub use auth::{AuthError, ChainCredential, HttpTimeouts, build_credential, build_http_client};
pub use client::{
    API_VERSION, ArmClient, ArmClientConfig, ArmEndpoint, PERMISSIONS_API_VERSION,
    RateLimitSnapshot, RequestEvent, RequestHook,
};
pub use error::{AzureError, TransportKind};
pub use lro::{Accepted, PollOutcome, PollVia};
pub use retry::RetryPolicy;
pub use tags::{TAGS_API_VERSION, TagsOperation};
pub use update::{NativeSetting, UPDATE_API_VERSION};
pub use wire::ArmError;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod replay_tests;
