//! The managed identity of an Azure ML compute instance: `MSI_ENDPOINT` + `MSI_SECRET`
//! (api-version 2017-09-01, header `secret`), which azure_identity refuses ("Azure ML managed
//! identity isn't supported"; AGENT.md section 2).
//!
//! STUB: the signatures are the contract between the agent and this module.

use std::fmt;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

/// A token credential for the compute instance's managed identity.
pub struct AmlMsiCredential {
    _endpoint: url::Url,
}

impl fmt::Debug for AmlMsiCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmlMsiCredential").finish_non_exhaustive()
    }
}

impl AmlMsiCredential {
    /// From `MSI_ENDPOINT`, `MSI_SECRET` and the client id (`client_id`, else
    /// `DEFAULT_IDENTITY_CLIENT_ID`) read through `env`; `None` when the pair is absent.
    pub fn from_env(
        _http: reqwest::Client,
        _client_id: Option<String>,
        _env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<AmlMsiCredential> {
        None
    }
}

#[async_trait]
impl TokenCredential for AmlMsiCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            "not built yet",
        ))
    }
}
