//! Azure Blob Storage, the few calls lightsout needs: Put Blob (a block blob with metadata),
//! List Blobs (`include=metadata`, up to 5,000 per call) and Create Container. Bearer tokens
//! for `https://storage.azure.com/.default`; https only; no redirects.
//!
//! One attempt per call: the error says whether retrying is worth it ([`BlobError::is_retriable`])
//! and how long the server asked to wait ([`BlobError::retry_after`]); callers retry on their
//! own schedule (a heartbeat every minute, a daemon pass). The one exception is a 401, which
//! gets one fresh token and one more try, as ARM calls do (`retry.rs`).
//!
//! Errors name the host, the operation, the status and `x-ms-error-code`; never a token.

mod xml;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

pub use xml::{ListPage, parse_list};

use super::auth::force_refresh_options;
use super::retry::{parse_retry_after, response_now, status_is_retriable};

/// The token scope of Azure Storage.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// The REST version every call pins (`x-ms-version`). Azurite 3.37.0 accepts it
/// (`ValidAPIVersions` in its `blob/utils/constants.js`); bearer tokens need 2017-11-09 or later.
pub const API_VERSION: &str = "2025-01-05";

/// Most blobs per List Blobs call (the service's own maximum).
pub const MAX_RESULTS: u32 = 5000;

/// Largest List Blobs answer read: 5,000 blobs with small metadata are about 5 MiB.
pub const MAX_LIST_BODY: usize = 16 * 1024 * 1024;

/// Longest `Retry-After` honoured: a heartbeat is not worth waiting longer for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Largest error body read (for `Code` / `Message`).
const MAX_ERROR_BODY: usize = 64 * 1024;

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

/// The call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOp {
    PutBlob,
    ListBlobs,
    CreateContainer,
}

impl fmt::Display for BlobOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlobOp::PutBlob => "Put Blob",
            BlobOp::ListBlobs => "List Blobs",
            BlobOp::CreateContainer => "Create Container",
        })
    }
}

/// Why a blob call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The account URL or container name cannot be used.
    #[error("blob storage account {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A blob name or metadata entry cannot be sent.
    #[error("blob storage {op} on {host}: {reason}")]
    InvalidRequest {
        host: String,
        op: BlobOp,
        reason: String,
    },
    /// No token for the storage scope.
    #[error("blob storage {op} on {host}: could not get a token for {STORAGE_SCOPE}")]
    Token {
        host: String,
        op: BlobOp,
        #[source]
        source: azure_core::Error,
    },
    /// Connection refused, reset, TLS failure, timeout.
    #[error("blob storage {op} on {host}: transport failure")]
    Transport {
        host: String,
        op: BlobOp,
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with an unexpected status.
    #[error(
        "blob storage {op} on {host}: HTTP {status}{}{}",
        code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    Status {
        host: String,
        op: BlobOp,
        status: u16,
        /// `x-ms-error-code` (or the body's `Code`).
        code: Option<String>,
        /// The body's `Message`, first line, shortened.
        message: Option<String>,
        /// `Retry-After`, capped at [`MAX_RETRY_AFTER`].
        retry_after: Option<Duration>,
    },
    /// The List Blobs answer is larger than [`MAX_LIST_BODY`].
    #[error("blob storage {op} on {host}: answer larger than {limit} bytes")]
    TooLarge {
        host: String,
        op: BlobOp,
        limit: usize,
    },
    /// The answer is not what the REST reference describes.
    #[error("blob storage {op} on {host}: unreadable answer: {reason}")]
    Parse {
        host: String,
        op: BlobOp,
        reason: String,
    },
}

impl BlobError {
    /// Worth retrying (a transport failure, 408, 429, 5xx except 501/505).
    pub fn is_retriable(&self) -> bool {
        match self {
            BlobError::Transport { .. } => true,
            BlobError::Status { status, .. } => status_is_retriable(*status),
            _ => false,
        }
    }

    /// How long the service asked to wait before the next try (capped).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BlobError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            BlobError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// `x-ms-error-code`, when the service sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            BlobError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// A client for one container of one storage account. Clone freely (clones share the request
/// counter).
#[derive(Clone)]
pub struct BlobClient {
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    /// `https://host[:port]/[account/]container`, no trailing slash.
    container_url: Url,
    host: String,
    requests: Arc<AtomicU64>,
}

impl fmt::Debug for BlobClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobClient")
            .field("container_url", &self.container_url.as_str())
            .finish_non_exhaustive()
    }
}

impl BlobClient {
    /// `account` is the blob service endpoint (`https://ACCOUNT.blob.core.windows.net`, or
    /// Azurite's `https://127.0.0.1:PORT/devstoreaccount1`); `http` the process-wide client
    /// (`azure::auth::build_http_client`: it never follows a redirect, so the token only ever
    /// goes to `account`'s host).
    pub fn new(
        http: reqwest::Client,
        account: Url,
        container: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<BlobClient, BlobError> {
        let invalid = |reason: &str| BlobError::InvalidUrl {
            url: account.as_str().to_owned(),
            reason: reason.to_owned(),
        };
        // A bearer token over plain http is readable by anyone on the path, loopback included
        // (Azurite refuses it too: "Authentication scheme Bearer is not allowed with HTTP").
        if account.scheme() != "https" {
            return Err(invalid(
                "must use https (bearer tokens are never sent over http)",
            ));
        }
        let host = match account.host_str() {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => return Err(invalid("has no host")),
        };
        if !account.username().is_empty() || account.password().is_some() {
            return Err(invalid("must not carry a user name or password"));
        }
        if account.query().is_some() || account.fragment().is_some() {
            return Err(invalid("must not carry a query (a SAS) or a fragment"));
        }
        // Container names: 3-63 of [a-z0-9-], starting and ending with a letter or digit
        // (REST reference "Naming and referencing containers, blobs, and metadata").
        let ok_name = (3..=63).contains(&container.len())
            && container
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !container.starts_with('-')
            && !container.ends_with('-')
            && !container.contains("--");
        if !ok_name {
            return Err(invalid(&format!(
                "container name {container:?} is not 3-63 lower-case letters, digits and single hyphens"
            )));
        }
        let mut container_url = account.clone();
        container_url
            .path_segments_mut()
            .map_err(|()| invalid("cannot be a base URL"))?
            .pop_if_empty()
            .push(container);
        let host = match account.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        Ok(BlobClient {
            http,
            credential,
            container_url,
            host,
            requests: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The container's URL.
    pub fn container_url(&self) -> &Url {
        &self.container_url
    }

    /// HTTP requests sent so far by this client and its clones (token requests not counted).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Put Blob: writes `name` as a block blob with `metadata` (names lower case).
    pub async fn put_block_blob(
        &self,
        name: &str,
        body: Vec<u8>,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<(), BlobError> {
        let op = BlobOp::PutBlob;
        let invalid = |reason: String| BlobError::InvalidRequest {
            host: self.host.clone(),
            op,
            reason,
        };
        if name.is_empty() || name.len() > 1024 {
            return Err(invalid(format!(
                "blob name must be 1 to 1024 characters, got {}",
                name.len()
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
        // Required by the REST reference; hyper leaves it out for an empty body and Azurite
        // then answers 400.
        headers.insert(
            reqwest::header::CONTENT_LENGTH,
            HeaderValue::from(body.len()),
        );
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_str(content_type)
                .map_err(|_| invalid(format!("content type {content_type:?} is not a header")))?,
        );
        for (k, v) in metadata {
            // Metadata names are C# identifiers; values travel as header values (ASCII).
            let ok_key = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let name =
                HeaderName::from_bytes(format!("x-ms-meta-{}", k.to_ascii_lowercase()).as_bytes());
            let value = HeaderValue::from_str(v);
            match (ok_key, name, value) {
                (true, Ok(n), Ok(val)) if v.is_ascii() => {
                    headers.insert(n, val);
                }
                _ => {
                    return Err(invalid(format!(
                        "metadata {k:?} is not a valid name/ASCII value"
                    )));
                }
            }
        }
        let mut url = self.container_url.clone();
        url.path_segments_mut()
            .map_err(|()| invalid("the container URL cannot take a path".to_owned()))?
            .extend(name.split('/'));
        let resp = self
            .send(op, |http| {
                http.put(url.clone())
                    .headers(headers.clone())
                    .body(body.clone())
            })
            .await?;
        if resp.status().as_u16() == 201 {
            return Ok(());
        }
        Err(self.status_error(op, resp).await)
    }

    /// List Blobs under `prefix` with metadata, following `NextMarker` to the end.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ListedBlob>, BlobError> {
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let (blobs, next) = self.list_page(prefix, marker.as_deref()).await?;
            all.extend(blobs);
            match next {
                Some(m) if Some(&m) != marker.as_ref() => marker = Some(m),
                // A marker that does not move would loop forever.
                Some(_) => {
                    return Err(BlobError::Parse {
                        host: self.host.clone(),
                        op: BlobOp::ListBlobs,
                        reason: "NextMarker repeats the marker sent".to_owned(),
                    });
                }
                None => return Ok(all),
            }
        }
    }

    /// One List Blobs call (up to [`MAX_RESULTS`] blobs): the blobs and the marker of the next
    /// page, if any.
    pub async fn list_page(
        &self,
        prefix: &str,
        marker: Option<&str>,
    ) -> Result<(Vec<ListedBlob>, Option<String>), BlobError> {
        let op = BlobOp::ListBlobs;
        let mut url = self.container_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("restype", "container")
                .append_pair("comp", "list")
                .append_pair("include", "metadata")
                .append_pair("maxresults", &MAX_RESULTS.to_string());
            if !prefix.is_empty() {
                q.append_pair("prefix", prefix);
            }
            if let Some(m) = marker {
                q.append_pair("marker", m);
            }
        }
        let resp = self.send(op, |http| http.get(url.clone())).await?;
        if resp.status().as_u16() != 200 {
            return Err(self.status_error(op, resp).await);
        }
        let body = self
            .read_capped(op, resp, MAX_LIST_BODY)
            .await?
            .ok_or(BlobError::TooLarge {
                host: self.host.clone(),
                op,
                limit: MAX_LIST_BODY,
            })?;
        let text = String::from_utf8(body).map_err(|_| BlobError::Parse {
            host: self.host.clone(),
            op,
            reason: "not UTF-8".to_owned(),
        })?;
        let page = parse_list(&text).map_err(|reason| BlobError::Parse {
            host: self.host.clone(),
            op,
            reason,
        })?;
        Ok((page.blobs, page.next_marker))
    }

    /// Create Container, when it does not exist yet (409 `ContainerAlreadyExists` is fine).
    pub async fn create_container_if_missing(&self) -> Result<(), BlobError> {
        let op = BlobOp::CreateContainer;
        let mut url = self.container_url.clone();
        url.query_pairs_mut().append_pair("restype", "container");
        let resp = self.send(op, |http| http.put(url.clone())).await?;
        if resp.status().as_u16() == 201 {
            return Ok(());
        }
        let err = self.status_error(op, resp).await;
        if err.status() == Some(409) && err.code() == Some("ContainerAlreadyExists") {
            return Ok(());
        }
        Err(err)
    }

    /// Sends one request with a bearer token; after a 401, once more with a fresh token.
    async fn send(
        &self,
        op: BlobOp,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, BlobError> {
        let mut refreshed = false;
        loop {
            let options = refreshed.then(force_refresh_options);
            let token = self
                .credential
                .get_token(&[STORAGE_SCOPE], options)
                .await
                .map_err(|source| BlobError::Token {
                    host: self.host.clone(),
                    op,
                    source,
                })?;
            let date = jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&crate::clock::now())
                .unwrap_or_default();
            let req = build(&self.http)
                .bearer_auth(token.token.secret())
                .header("x-ms-version", API_VERSION)
                .header("x-ms-date", date);
            self.requests.fetch_add(1, Ordering::Relaxed);
            let resp = req.send().await.map_err(|source| BlobError::Transport {
                host: self.host.clone(),
                op,
                source: source.without_url(),
            })?;
            if resp.status().as_u16() == 401 && !refreshed {
                refreshed = true;
                continue;
            }
            return Ok(resp);
        }
    }

    /// The error for an unexpected status: `x-ms-error-code` (else the body's `Code`), the
    /// body's `Message` and a capped `Retry-After`.
    async fn status_error(&self, op: BlobOp, resp: reqwest::Response) -> BlobError {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let retry_after = parse_retry_after(&headers, response_now(&headers, crate::clock::now()))
            .map(|d| d.min(MAX_RETRY_AFTER));
        let body = self
            .read_capped(op, resp, MAX_ERROR_BODY)
            .await
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let code = headers
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| element_text(&body, "Code"));
        let message = element_text(&body, "Message").map(|m| {
            let first = m.lines().next().unwrap_or_default();
            first.chars().take(200).collect()
        });
        BlobError::Status {
            host: self.host.clone(),
            op,
            status,
            code,
            message,
            retry_after,
        }
    }

    /// The body, or `None` when it is longer than `limit`.
    async fn read_capped(
        &self,
        op: BlobOp,
        mut resp: reqwest::Response,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Ok(None);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|source| BlobError::Transport {
            host: self.host.clone(),
            op,
            source: source.without_url(),
        })? {
            if body.len() + chunk.len() > limit {
                return Ok(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }
}

/// The text of the first `<tag>…</tag>` in an error body (`<Error><Code>…</Code>…`).
fn element_text(body: &str, tag: &str) -> Option<String> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].trim().to_owned()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct NoToken;

    #[async_trait::async_trait]
    impl TokenCredential for NoToken {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<azure_core::credentials::AccessToken> {
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "none",
            ))
        }
    }

    fn client(url: &str, container: &str) -> Result<BlobClient, BlobError> {
        BlobClient::new(
            reqwest::Client::new(),
            Url::parse(url).unwrap(),
            container,
            Arc::new(NoToken),
        )
    }

    #[test]
    fn urls_are_checked() {
        let c = client("https://127.0.0.1:10000/devstoreaccount1", "heartbeats").unwrap();
        assert_eq!(
            c.container_url().as_str(),
            "https://127.0.0.1:10000/devstoreaccount1/heartbeats"
        );
        let c = client("https://acct.blob.core.windows.net/", "hb-1").unwrap();
        assert_eq!(
            c.container_url().as_str(),
            "https://acct.blob.core.windows.net/hb-1"
        );
        let e = client("http://127.0.0.1:10000/devstoreaccount1", "heartbeats").unwrap_err();
        assert!(e.to_string().contains("must use https"), "{e}");
        for bad in ["ab", "Heart", "-hb", "hb-", "h--b", "h_b"] {
            assert!(
                client("https://a.blob.core.windows.net", bad).is_err(),
                "{bad}"
            );
        }
        assert!(client("https://a.blob.core.windows.net/?sv=x&sig=y", "hb1").is_err());
        assert!(client("https://u:p@a.blob.core.windows.net/", "hb1").is_err());
    }

    #[test]
    fn retriable_statuses() {
        let status = |s: u16| BlobError::Status {
            host: "h".into(),
            op: BlobOp::ListBlobs,
            status: s,
            code: None,
            message: None,
            retry_after: None,
        };
        for s in [408, 429, 500, 503] {
            assert!(status(s).is_retriable(), "{s}");
        }
        for s in [400, 403, 404, 409, 501] {
            assert!(!status(s).is_retriable(), "{s}");
        }
    }

    #[test]
    fn error_text_names_host_op_status_code() {
        let e = BlobError::Status {
            host: "acct.blob.core.windows.net".into(),
            op: BlobOp::PutBlob,
            status: 403,
            code: Some("AuthorizationPermissionMismatch".into()),
            message: Some("This request is not authorized".into()),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "blob storage Put Blob on acct.blob.core.windows.net: HTTP 403 AuthorizationPermissionMismatch: This request is not authorized"
        );
    }

    #[test]
    fn error_body_elements() {
        let body = "<?xml version=\"1.0\"?><Error><Code>ContainerNotFound</Code><Message>The specified container does not exist.\nRequestId:x</Message></Error>";
        assert_eq!(
            element_text(body, "Code").as_deref(),
            Some("ContainerNotFound")
        );
        assert!(
            element_text(body, "Message")
                .unwrap()
                .starts_with("The specified")
        );
        assert_eq!(element_text("nothing", "Code"), None);
    }

    #[tokio::test]
    async fn token_failure_names_the_host() {
        let c = client("https://127.0.0.1:9/devstoreaccount1", "heartbeats").unwrap();
        let e = c.list("x").await.unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
        assert!(!e.is_retriable());
        assert_eq!(c.requests(), 0);
    }
}
