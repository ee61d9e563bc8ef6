//! Azure Blob Storage, the few calls lightsout needs: Put Blob (a block blob with metadata),
//! List Blobs (`include=metadata`, up to 5,000 per call) and Create Container. Bearer tokens
//! for `https://storage.azure.com/.default`; https only; no redirects.
//!
//! STUB: the signatures are the contract between the agent, the daemon and this module.

use std::collections::BTreeMap;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use url::Url;

/// The token scope of Azure Storage.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// One blob as List Blobs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBlob {
    pub name: String,
    /// `Content-Length`.
    pub size: u64,
    pub last_modified: Option<jiff::Timestamp>,
    /// Metadata names in lower case.
    pub metadata: BTreeMap<String, String>,
}

/// Why a blob call failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob storage: not built yet")]
    NotBuilt,
}

impl BlobError {
    /// Worth retrying (a transport failure, 408, 429, 5xx).
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// A client for one container of one storage account. Clone freely.
#[derive(Clone)]
pub struct BlobClient {
    _credential: Arc<dyn TokenCredential>,
}

impl BlobClient {
    /// `account` is the blob service endpoint (`https://ACCOUNT.blob.core.windows.net`, or
    /// Azurite's `https://127.0.0.1:PORT/devstoreaccount1`); `http` the process-wide client.
    pub fn new(
        _http: reqwest::Client,
        _account: Url,
        _container: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<BlobClient, BlobError> {
        Ok(BlobClient {
            _credential: credential,
        })
    }

    /// Put Blob: writes `name` as a block blob with `metadata` (names lower case).
    pub async fn put_block_blob(
        &self,
        _name: &str,
        _body: Vec<u8>,
        _content_type: &str,
        _metadata: &[(&str, &str)],
    ) -> Result<(), BlobError> {
        Err(BlobError::NotBuilt)
    }

    /// List Blobs under `prefix` with metadata, following `NextMarker` to the end.
    pub async fn list(&self, _prefix: &str) -> Result<Vec<ListedBlob>, BlobError> {
        Err(BlobError::NotBuilt)
    }

    /// Create Container, when it does not exist yet.
    pub async fn create_container_if_missing(&self) -> Result<(), BlobError> {
        Err(BlobError::NotBuilt)
    }
}
