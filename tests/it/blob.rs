//! Blob storage (issue 15): the real `BlobClient` against real Azurite (OAuth on, HTTPS), with
//! tokens from the real emulator binary's Entra ID and managed-identity endpoints.

#![expect(clippy::unwrap_used, reason = "test code")]

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use futures_util::StreamExt;
use lightsout::azure::blob::{BlobClient, STORAGE_SCOPE};
use lightsout::azure::msi::AmlMsiCredential;

use super::azurite_support::{Azurite, fixed};
use super::support::{ADMIN, EmulatorProcess, fleet, within};

const CONTAINER: &str = "heartbeats";
/// The instance's managed identity and its `MSI_SECRET`.
const MI: &str = "44444444-4444-4444-4444-444444444444";
const MSI_SECRET: &str = "msi-s3cret-never-printed";

/// A fleet with instance `ci-1` and its managed identity behind `/MSI/auth`.
fn msi_fleet() -> String {
    msi_fleet_with("")
}

/// [`msi_fleet`] with `extra` TOML tables.
fn msi_fleet_with(extra: &str) -> String {
    fleet(
        &format!(
            r#"
{extra}

[[principal]]
client_id = "{MI}"
managed_identity = true
actions = ["Microsoft.MachineLearningServices/workspaces/computes/read"]

[[instance_identity]]
instance = "ci-1"
client_id = "{MI}"
secret = "{MSI_SECRET}"
"#
        ),
        "",
        &[("ci-1", "Running")],
    )
}

/// The credential an agent on `ci-1` builds from its environment (the emulator's endpoint
/// is https, so the client trusts the emulator's CA).
fn msi_credential(emu: &EmulatorProcess, secret: &str) -> AmlMsiCredential {
    let http = lightsout::azure::build_http_client(
        Some(std::path::Path::new(&emu.ready.ca_file)),
        lightsout::azure::HttpTimeouts::default(),
    )
    .unwrap();
    let endpoint = format!("{}/MSI/auth", emu.ready.endpoint);
    let env = move |k: &str| match k {
        "MSI_ENDPOINT" => Some(endpoint.clone()),
        "MSI_SECRET" => Some(secret.to_owned()),
        "DEFAULT_IDENTITY_CLIENT_ID" => Some(MI.to_owned()),
        _ => None,
    };
    AmlMsiCredential::from_env(http, None, &env).unwrap()
}

/// The emulator's call log entries for `/MSI/auth`.
async fn msi_calls(emu: &EmulatorProcess) -> Vec<serde_json::Value> {
    emu.calls()
        .await
        .into_iter()
        .filter(|c| c["path"].as_str() == Some("/MSI/auth"))
        .collect()
}

#[tokio::test]
async fn msi_token_from_the_emulator_works_on_azurite() {
    within(120, async {
        let azurite = Azurite::start().await;
        let emu = EmulatorProcess::start(&msi_fleet()).await;
        let cred = Arc::new(msi_credential(&emu, MSI_SECRET));
        let tok = cred.get_token(&[STORAGE_SCOPE], None).await.unwrap();
        assert!(tok.expires_on > azure_core::time::OffsetDateTime::now_utc());
        let calls = msi_calls(&emu).await;
        assert_eq!(calls.len(), 1, "{calls:?}");
        let q = calls[0]["query"].as_str().unwrap();
        assert!(q.contains("api-version=2017-09-01"), "{q}");
        assert!(
            q.contains("resource=https%3A%2F%2Fstorage.azure.com&"),
            "{q}"
        );
        assert!(q.contains(&format!("clientid={MI}")), "{q}");
        assert_eq!(calls[0]["status"], 200);
        assert_eq!(calls[0]["principal"], MI);

        let client =
            BlobClient::new(azurite.http.clone(), azurite.account_url(), CONTAINER, cred).unwrap();
        client.create_container_if_missing().await.unwrap();
        client
            .put_block_blob(
                "hb/ci-1",
                b"{}".to_vec(),
                "application/json",
                &[("verdict", "idle")],
            )
            .await
            .unwrap();
        let listed = client.list("hb/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].metadata["verdict"], "idle");
        // Three blob calls, one token: the credential caches it.
        assert_eq!(msi_calls(&emu).await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn msi_wrong_secret_is_refused_without_printing_it() {
    within(60, async {
        let emu = EmulatorProcess::start(&msi_fleet()).await;
        let wrong = "wrong-secret-also-never-printed";
        let cred = msi_credential(&emu, wrong);
        let e = cred.get_token(&[STORAGE_SCOPE], None).await.unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(text.contains("HTTP 401"), "{text}");
        assert!(
            text.contains("/MSI/auth") || text.contains("127.0.0.1"),
            "{text}"
        );
        assert!(!text.contains(wrong), "{text}");
        assert!(!format!("{cred:?}").contains(wrong));
        let calls = msi_calls(&emu).await;
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0]["status"], 401);
        assert!(calls[0]["principal"].is_null());
        // The right secret on the same endpoint works (the refusal was about the secret).
        let ok = msi_credential(&emu, MSI_SECRET);
        ok.get_token(&[STORAGE_SCOPE], None).await.unwrap();
    })
    .await;
}

/// Azurite, the emulator, and a client authenticated with the admin's storage token.
async fn setup() -> (Azurite, EmulatorProcess, BlobClient) {
    let azurite = Azurite::start().await;
    let emu = EmulatorProcess::start(&fleet("", "", &[])).await;
    let client = azurite.client_with(CONTAINER, emu.token_for(ADMIN, STORAGE_SCOPE).await);
    (azurite, emu, client)
}

#[tokio::test]
async fn put_then_list_with_metadata_and_size() {
    within(120, async {
        let (azurite, _emu, client) = setup().await;
        client.create_container_if_missing().await.unwrap();
        // A second create is not an error (409 ContainerAlreadyExists).
        client.create_container_if_missing().await.unwrap();
        client
            .put_block_blob(
                "hb/ws1/ci-1",
                b"{\"v\":1}".to_vec(),
                "application/json",
                &[("verdict", "busy"), ("Seen_At", "2026-12-07T10:00:00Z")],
            )
            .await
            .unwrap();
        client
            .put_block_blob("other/x", b"x".to_vec(), "text/plain", &[])
            .await
            .unwrap();
        let listed = client.list("hb/").await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}\n{}", azurite.log());
        let b = &listed[0];
        assert_eq!(b.name, "hb/ws1/ci-1");
        assert_eq!(b.size, 7);
        assert_eq!(b.metadata["verdict"], "busy");
        assert_eq!(b.metadata["seen_at"], "2026-12-07T10:00:00Z");
        let age = lightsout::clock::now().duration_since(b.last_modified.unwrap());
        assert!(age.as_secs().abs() < 120, "{age:?}");
        // Overwrite: Put Blob replaces the blob and its metadata.
        client
            .put_block_blob(
                "hb/ws1/ci-1",
                b"{}".to_vec(),
                "application/json",
                &[("verdict", "idle")],
            )
            .await
            .unwrap();
        let listed = client.list("hb/").await.unwrap();
        assert_eq!(listed[0].size, 2);
        assert_eq!(listed[0].metadata.len(), 1);
        assert_eq!(listed[0].metadata["verdict"], "idle");
    })
    .await;
}

#[tokio::test]
async fn wrong_audience_is_refused_by_azurite() {
    within(120, async {
        let (azurite, emu, _) = setup().await;
        // An ARM token: right issuer, lifetime and shape, wrong audience.
        let arm = emu
            .token_for(ADMIN, "https://management.azure.com/.default")
            .await;
        let client = azurite.client_with(CONTAINER, arm);
        let e = client.create_container_if_missing().await.unwrap_err();
        // Azurite answers 403 AuthenticationFailed ("Invalid token audience" in its log).
        assert_eq!(e.status(), Some(403), "{e}");
        assert_eq!(e.code(), Some("AuthenticationFailed"), "{e}");
        assert!(!e.is_retriable());
        let text = e.to_string();
        assert!(text.contains(&azurite.host()), "{text}");
        assert!(text.contains("Create Container"), "{text}");
        assert_eq!(client.requests(), 1);
    })
    .await;
}

#[tokio::test]
async fn http_account_url_is_refused() {
    let e = BlobClient::new(
        reqwest::Client::new(),
        url::Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap(),
        CONTAINER,
        fixed("t".to_owned()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("must use https"), "{e}");
}

#[tokio::test]
async fn stopped_azurite_is_a_retriable_error_naming_the_host() {
    within(120, async {
        let (mut azurite, _emu, client) = setup().await;
        client.create_container_if_missing().await.unwrap();
        client
            .put_block_blob("hb/a", b"1".to_vec(), "text/plain", &[])
            .await
            .unwrap();
        azurite.stop().await;
        let e = client.list("hb/").await.unwrap_err();
        assert!(e.is_retriable(), "{e}");
        assert!(e.to_string().contains(&azurite.host()), "{e}");
        // Restarted on the same port and directory: the blob is still there.
        azurite.restart().await;
        let listed = client.list("hb/").await.unwrap();
        assert_eq!(listed.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn ten_thousand_blobs_in_two_list_calls() {
    within(600, async {
        let (_azurite, _emu, client) = setup().await;
        client.create_container_if_missing().await.unwrap();
        let client = Arc::new(client);
        let results: Vec<_> = futures_util::stream::iter(0..10_000)
            .map(|i| {
                let c = client.clone();
                async move {
                    c.put_block_blob(
                        &format!("hb/ci-{i:05}"),
                        Vec::new(),
                        "application/json",
                        &[("n", &i.to_string())],
                    )
                    .await
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{} failed, first: {:?}",
            failed.len(),
            failed.first()
        );
        let before = client.requests();
        let listed = client.list("hb/").await.unwrap();
        assert_eq!(client.requests() - before, 2);
        assert_eq!(listed.len(), 10_000);
        assert_eq!(listed[9_999].name, "hb/ci-09999");
        assert_eq!(listed[4_321].metadata["n"], "4321");
    })
    .await;
}

#[tokio::test]
async fn daemon_client_secret_credential_works_on_azurite() {
    within(120, async {
        let azurite = Azurite::start().await;
        let emu = EmulatorProcess::start(&fleet("", "", &[])).await;
        // The daemon's way: one ca_file (both CAs), one client, the client-secret credential
        // against the emulator's Entra ID.
        let bundle = azurite.ca_bundle_with(std::path::Path::new(&emu.ready.ca_file));
        let http = lightsout::azure::build_http_client(
            Some(&bundle),
            lightsout::azure::HttpTimeouts::default(),
        )
        .unwrap();
        let settings = lightsout::engine::config::auth::AuthSettings {
            credential: lightsout::engine::config::auth::CredentialKind::ClientSecret,
            tenant_id: Some(emu.ready.tenant_id.clone()),
            client_id: Some(ADMIN.0.to_owned()),
            client_secret_file: None,
            authority_host: url::Url::parse(&emu.ready.endpoint).unwrap(),
            ca_file: Some(bundle.clone()),
        };
        let env = |k: &str| (k == "AZURE_CLIENT_SECRET").then(|| ADMIN.1.to_owned());
        let cred = lightsout::azure::build_credential(&settings, http.clone(), &env).unwrap();
        let client = BlobClient::new(http, azurite.account_url(), CONTAINER, cred).unwrap();
        client.create_container_if_missing().await.unwrap();
        client
            .put_block_blob("hb/x", b"1".to_vec(), "text/plain", &[("verdict", "busy")])
            .await
            .unwrap();
        assert_eq!(client.list("hb/").await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn msi_endpoint_refusals() {
    within(60, async {
        let emu = EmulatorProcess::start(&msi_fleet()).await;
        let pem = std::fs::read(&emu.ready.ca_file).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .build()
            .unwrap();
        let url = format!("{}/MSI/auth", emu.ready.endpoint);
        let get = |query: &'static str, secret: Option<&'static str>| {
            let mut r = http.get(format!("{url}?{query}"));
            if let Some(s) = secret {
                r = r.header("secret", s);
            }
            async move {
                let resp = r.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.text().await.unwrap())
            }
        };
        let good = "api-version=2017-09-01&resource=https://storage.azure.com";
        let (s, body) = get(good, None).await;
        assert_eq!(s, 401, "{body}");
        let (s, body) = get(good, Some("nope")).await;
        assert_eq!(s, 401, "{body}");
        assert!(!body.contains("nope"));
        let (s, _) = get("resource=https://storage.azure.com", Some(MSI_SECRET)).await;
        assert_eq!(s, 400);
        let (s, _) = get("api-version=2019-08-01&resource=x", Some(MSI_SECRET)).await;
        assert_eq!(s, 400);
        let (s, _) = get("api-version=2017-09-01", Some(MSI_SECRET)).await;
        assert_eq!(s, 400);
        let (s, body) = get(
            "api-version=2017-09-01&resource=https://storage.azure.com&clientid=someone-else",
            Some(MSI_SECRET),
        )
        .await;
        assert_eq!(s, 400, "{body}");
        assert!(body.contains("Identity not found"), "{body}");
        let (s, body) = get(good, Some(MSI_SECRET)).await;
        assert_eq!(s, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["resource"], "https://storage.azure.com");
        assert_eq!(v["token_type"], "Bearer");
        assert!(v["expires_on"].is_i64(), "{v}");
        assert!(!body.contains(MSI_SECRET));
        // The token is JWT-shaped with the claims Azurite checks.
        let claims = v["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap();
        use base64::Engine;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["aud"], "https://storage.azure.com");
        assert!(
            claims["iss"]
                .as_str()
                .unwrap()
                .starts_with("https://sts.windows.net/")
        );
        assert_eq!(claims["appid"], MI);
        for k in ["iat", "nbf", "exp"] {
            assert!(claims[k].is_i64(), "{k}");
        }
    })
    .await;
}

#[tokio::test]
async fn ready_line_names_the_msi_endpoint() {
    let fleet = azure_ml_emulator::Fleet::from_toml_str(&msi_fleet(), "fleet").unwrap();
    let running = azure_ml_emulator::Emulator::start(azure_ml_emulator::EmulatorOptions {
        fleet,
        ..Default::default()
    })
    .await
    .unwrap();
    let ready = running.ready();
    assert_eq!(
        ready.msi_endpoint.as_deref(),
        Some(format!("{}/MSI/auth", ready.endpoint).as_str())
    );
    let line = serde_json::to_string(&ready).unwrap();
    assert!(!line.contains(MSI_SECRET), "{line}");
    running.shutdown().await;
    // Without instance identities the key is absent.
    let plain = azure_ml_emulator::Emulator::start(Default::default())
        .await
        .unwrap();
    assert!(
        !serde_json::to_string(&plain.ready())
            .unwrap()
            .contains("msi_endpoint")
    );
    plain.shutdown().await;
}

#[tokio::test]
async fn msi_tokens_are_cached_until_five_minutes_before_expiry() {
    within(60, async {
        use lightsout::azure::auth::force_refresh_options;
        // An hour's token is cached: two calls, one request.
        let emu = EmulatorProcess::start(&msi_fleet()).await;
        let cred = msi_credential(&emu, MSI_SECRET);
        let a = cred.get_token(&[STORAGE_SCOPE], None).await.unwrap();
        let b = cred.get_token(&[STORAGE_SCOPE], None).await.unwrap();
        assert_eq!(a.token.secret(), b.token.secret());
        assert_eq!(msi_calls(&emu).await.len(), 1);
        // Another resource is another token; a forced refresh asks again.
        cred.get_token(&["https://management.azure.com/.default"], None)
            .await
            .unwrap();
        let c = cred
            .get_token(&[STORAGE_SCOPE], Some(force_refresh_options()))
            .await
            .unwrap();
        assert_ne!(a.token.secret(), c.token.secret());
        assert_eq!(msi_calls(&emu).await.len(), 3);
        // A 4-minute token is inside the 5-minute margin: every call asks again.
        let short =
            EmulatorProcess::start(&msi_fleet_with("[limits]\ntoken_lifetime = \"4m\"\n")).await;
        let cred = msi_credential(&short, MSI_SECRET);
        cred.get_token(&[STORAGE_SCOPE], None).await.unwrap();
        cred.get_token(&[STORAGE_SCOPE], None).await.unwrap();
        assert_eq!(msi_calls(&short).await.len(), 2);
    })
    .await;
}
