//! Blob storage (issue 15): the real `BlobClient` against real Azurite (OAuth on, HTTPS), with
//! tokens from the real emulator binary's Entra ID and managed-identity endpoints.

#![expect(clippy::unwrap_used, reason = "test code")]

use std::sync::Arc;

use futures_util::StreamExt;
use lightsout::azure::blob::{BlobClient, STORAGE_SCOPE};

use super::azurite_support::{Azurite, fixed};
use super::support::{ADMIN, EmulatorProcess, fleet, within};

const CONTAINER: &str = "heartbeats";

/// Azurite, the emulator, and a client authenticated with the admin's storage token.
async fn setup() -> (Azurite, EmulatorProcess, BlobClient) {
    let azurite = Azurite::start().await;
    let emu = EmulatorProcess::start(&fleet("", "", &[])).await;
    let token = emu.token_for(ADMIN, STORAGE_SCOPE).await;
    let client = BlobClient::new(
        azurite.http.clone(),
        azurite.account_url(),
        CONTAINER,
        fixed(token),
    )
    .unwrap();
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
        let client = BlobClient::new(
            azurite.http.clone(),
            azurite.account_url(),
            CONTAINER,
            fixed(arm),
        )
        .unwrap();
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
