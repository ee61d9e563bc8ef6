//! `lightsout hold` and `lightsout release` (the binary) against the emulator binary over HTTPS:
//! the tags go through ARM's Tags API, the daemon's next pass honours the hold and stops the
//! instance once it is released; permissions, bad input, and the emulated Tags API itself.

#![expect(clippy::unwrap_used, reason = "test helpers")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    ADMIN, EmulatorProcess, FAST, GENEROUS, READER, RG, SUB, TENANT, WS, fleet, run_lightsout,
    within,
};

const TAGS_WRITE: &str = "Microsoft.Resources/tags/write";
const COMPUTES_ALL: &str =
    r#"actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]"#;

/// The support fleet, with `Microsoft.Resources/tags/write` added to the full principal.
fn fleet_with_tags(instances: &[(&str, &str)]) -> String {
    let base = fleet(GENEROUS, FAST, instances);
    assert!(base.contains(COMPUTES_ALL), "support fleet changed");
    base.replacen(
        COMPUTES_ALL,
        &format!(
            r#"actions = ["Microsoft.MachineLearningServices/workspaces/computes/*", "{TAGS_WRITE}"]"#
        ),
        1,
    )
}

/// The emulator's config for the full principal, plus a state dir and a policy that stops every
/// running instance on every pass.
fn daemon_config(emu: &EmulatorProcess) -> PathBuf {
    let base = std::fs::read_to_string(emu.config(ADMIN.0)).unwrap();
    let state = emu.dir.path().join("lightsout-state");
    let text = format!(
        r#"[daemon]
state_dir = "{}"
poll_interval = "60s"

[http]
listen = "127.0.0.1:0"

{base}

[[policy]]
name = "closed"
enforcement = "always"
exceptions = [ {{ from = "2000-01-01T00:00", to = "2100-01-01T00:00", state = "down" }} ]
"#,
        state.display()
    );
    let path = emu.dir.path().join("daemon.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn stops(calls: &[Value], name: &str) -> usize {
    let suffix = format!("/computes/{name}/stop");
    calls
        .iter()
        .filter(|c| c["method"] == "POST" && c["path"].as_str().unwrap().ends_with(&suffix))
        .count()
}

fn tag_patches(calls: &[Value], name: &str) -> Vec<Value> {
    let suffix = format!("/computes/{name}/providers/microsoft.resources/tags/default");
    calls
        .iter()
        .filter(|c| {
            c["method"] == "PATCH"
                && c["path"]
                    .as_str()
                    .unwrap()
                    .to_ascii_lowercase()
                    .ends_with(&suffix)
        })
        .cloned()
        .collect()
}

async fn tags_of(emu: &EmulatorProcess, cfg: &Path, name: &str) -> Value {
    let v = emu
        .run(cfg, ADMIN.1, &["ci", "show", name, "-w", "lab", "--json"])
        .await
        .success()
        .json();
    v["tags"].clone()
}

#[tokio::test]
async fn a_hold_keeps_the_next_pass_from_stopping_and_release_lets_it() {
    within(180, async {
        let emu = EmulatorProcess::start(&fleet_with_tags(&[
            ("ci-a", "Running"),
            ("ci-b", "Running"),
        ]))
        .await;
        let cfg = emu.config(ADMIN.0);
        let daemon = daemon_config(&emu);

        let before = lightsout::clock::now();
        let v = emu
            .run(
                &cfg,
                ADMIN.1,
                &[
                    "hold",
                    "ci-a",
                    "--for",
                    "3h",
                    "--reason",
                    "demo tonight",
                    "-w",
                    "lab",
                    "--json",
                ],
            )
            .await
            .success()
            .json();
        let until: jiff::Timestamp = v["until"].as_str().unwrap().parse().unwrap();
        let expected = before + jiff::SignedDuration::from_hours(3);
        assert!(
            until >= expected && until <= expected + jiff::SignedDuration::from_mins(1),
            "{v}"
        );
        assert_eq!(v["instance"], "ci-a");
        assert_eq!(v["reason"], "demo tonight");
        assert_eq!(v["state"], "Running");
        assert_eq!(v["previous_until"], Value::Null);

        // The tags are on the compute, as the next list shows them.
        let tags = tags_of(&emu, &cfg, "ci-a").await;
        assert_eq!(tags["lightsout-hold-until"], v["until"]);
        assert_eq!(tags["lightsout-hold-reason"], "demo tonight");
        let calls = emu.calls().await;
        let patches = tag_patches(&calls, "ci-a");
        assert_eq!(patches.len(), 1, "{patches:#?}");
        assert_eq!(patches[0]["status"], 200);
        assert!(
            patches[0]["query"]
                .as_str()
                .unwrap()
                .contains("api-version=2021-04-01")
        );

        // The daemon stops the other instance, not the held one.
        emu.run(&daemon, ADMIN.1, &["run", "--once"])
            .await
            .success();
        let calls = emu.calls().await;
        assert_eq!(stops(&calls, "ci-b"), 1, "the policy does stop: {calls:#?}");
        assert_eq!(stops(&calls, "ci-a"), 0, "held: {calls:#?}");

        // Holding again without a reason: a new end, and the old reason goes.
        let r = emu
            .run(&cfg, ADMIN.1, &["hold", "ci-a", "--for", "2h", "-w", "lab"])
            .await;
        r.success();
        assert!(r.stdout.starts_with("ci-a held until 20"), "{r:#?}");
        assert!(r.stderr.contains("shortens the earlier hold"), "{r:#?}");
        let tags = tags_of(&emu, &cfg, "ci-a").await;
        assert!(tags["lightsout-hold-until"].is_string(), "{tags}");
        assert!(tags.get("lightsout-hold-reason").is_none(), "{tags}");

        let r = emu
            .run(&cfg, ADMIN.1, &["release", "ci-a", "-w", "lab"])
            .await;
        r.success();
        assert!(
            r.stdout.contains("ci-a released (was held until 20"),
            "{r:#?}"
        );
        let tags = tags_of(&emu, &cfg, "ci-a").await;
        assert!(tags.get("lightsout-hold-until").is_none(), "{tags}");
        let calls = emu.calls().await;
        let last = tag_patches(&calls, "ci-a").pop().unwrap();
        assert_eq!(last["status"], 200);

        // Nothing left to release: said so, no request.
        emu.clear_calls().await;
        let r = emu
            .run(&cfg, ADMIN.1, &["release", "ci-a", "-w", "lab", "--json"])
            .await;
        let v = r.success().json();
        assert_eq!(v["released"], false);
        let r = emu
            .run(&cfg, ADMIN.1, &["release", "ci-a", "-w", "lab"])
            .await;
        assert!(r.success().stdout.contains("ci-a was not held"), "{r:#?}");
        assert!(tag_patches(&emu.calls().await, "ci-a").is_empty());

        // Released: the next pass stops it.
        emu.run(&daemon, ADMIN.1, &["run", "--once"])
            .await
            .success();
        let calls = emu.calls().await;
        assert_eq!(stops(&calls, "ci-a"), 1, "{calls:#?}");
    })
    .await;
}

#[tokio::test]
async fn without_tags_write_the_hold_is_refused_naming_the_permission() {
    within(120, async {
        // The support fleet: the full principal has computes/* only, the reader computes/read.
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;
        for (who, secret) in [ADMIN, READER] {
            let cfg = emu.config(who);
            let r = emu
                .run(&cfg, secret, &["hold", "ci-a", "--for", "1h", "-w", "lab"])
                .await;
            r.code(1);
            assert!(r.stderr.contains("AuthorizationFailed"), "{r:#?}");
            assert!(
                r.stderr
                    .contains(&format!("(missing permission: {TAGS_WRITE})")),
                "{r:#?}"
            );
            assert!(!r.stderr.contains(secret), "no secret in errors");
        }
        let calls = emu.calls().await;
        let patches = tag_patches(&calls, "ci-a");
        assert_eq!(patches.len(), 2, "403 is not retried: {patches:#?}");
        assert!(patches.iter().all(|c| c["status"] == 403));
        let cfg = emu.config(ADMIN.0);
        let tags = tags_of(&emu, &cfg, "ci-a").await;
        assert!(tags.get("lightsout-hold-until").is_none(), "{tags}");

        // An unknown instance: the compute is not found (read first, no tags request).
        let r = emu
            .run(
                &cfg,
                ADMIN.1,
                &["hold", "ci-zz", "--for", "1h", "-w", "lab"],
            )
            .await;
        r.code(1);
        assert!(r.stderr.contains("'ci-zz' was not found"), "{r:#?}");
    })
    .await;
}

#[tokio::test]
async fn bad_arguments_are_usage_errors() {
    within(60, async {
        let long = "x".repeat(257);
        for args in [
            vec!["hold", "ci-a", "-w", "lab", "--for", "31days"],
            vec!["hold", "ci-a", "-w", "lab", "--for", "0s"],
            vec!["hold", "ci-a", "-w", "lab", "--for", "tonight"],
            vec!["hold", "ci-a", "-w", "lab"],
            vec!["hold", "ci-a", "--for", "1h"],
            vec![
                "hold", "ci-a", "-w", "lab", "--for", "1h", "--reason", &long,
            ],
            vec!["hold", "ci/../x", "-w", "lab", "--for", "1h"],
            vec!["release", "ci-a"],
        ] {
            let r = run_lightsout(&args, None, &[]).await;
            r.code(2);
            assert!(r.stdout.is_empty(), "{r:#?}");
        }
        let r = run_lightsout(&["hold", "ci-a", "-w", "lab", "--for", "45days"], None, &[]).await;
        assert!(r.stderr.contains("30 days"), "{r:#?}");
    })
    .await;
}

/// A client for the emulator's HTTPS with its CA, and a token for `who`.
async fn raw_client(emu: &EmulatorProcess, who: (&str, &str)) -> (reqwest::Client, String) {
    let pem = std::fs::read(&emu.ready.ca_file).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", who.0),
            ("client_secret", who.1),
            ("scope", "https://management.azure.com/.default"),
        ])
        .finish();
    let v: Value = http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", emu.ready.endpoint))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (http, v["access_token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_emulated_tags_api_checks_requests_and_answers_like_arm() {
    within(60, async {
        let emu = EmulatorProcess::start(&fleet_with_tags(&[("ci-a", "Running")])).await;
        let (http, tok) = raw_client(&emu, ADMIN).await;
        let compute = format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}/computes/ci-a"
        );
        let send = |method: reqwest::Method, path: String, query: &'static str, body: Option<Value>| {
            let http = http.clone();
            let tok = tok.clone();
            let url = format!("{}{path}{query}", emu.ready.endpoint);
            async move {
                let mut rb = http.request(method, url).bearer_auth(tok);
                rb = match body {
                    Some(b) => rb.json(&b),
                    None => rb.header("content-length", "0"),
                };
                let r = rb.send().await.unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
            }
        };
        let tags_path = format!("{compute}/providers/Microsoft.Resources/tags/default");
        let api = "?api-version=2021-04-01";
        let patch = |body: Value| send(reqwest::Method::PATCH, tags_path.clone(), api, Some(body));

        let (s, v) = patch(json!({"operation": "Merge", "properties": {"tags": {"a": "1", "b": "2"}}})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["name"], "default");
        assert_eq!(v["type"], "Microsoft.Resources/tags");
        assert_eq!(
            v["id"].as_str().unwrap().to_ascii_lowercase(),
            tags_path.to_ascii_lowercase()
        );
        assert_eq!(v["properties"]["tags"], json!({"a": "1", "b": "2"}));
        // Delete by name/value: a stale value is left alone.
        let (s, v) = patch(json!({"operation": "Delete", "properties": {"tags": {"a": "old", "b": "2"}}})).await;
        assert_eq!((s, v["properties"]["tags"].clone()), (200, json!({"a": "1"})));
        // The compute shows them.
        let (s, v) = send(reqwest::Method::GET, compute.clone(), "?api-version=2025-12-01", None).await;
        assert_eq!((s, v["tags"].clone()), (200, json!({"a": "1"})));

        for (body, code) in [
            (json!({"properties": {"tags": {}}}), "InvalidRequestContent"),
            (json!({"operation": "Append", "properties": {"tags": {}}}), "InvalidRequestContent"),
            (json!({"operation": "Merge", "properties": {}}), "InvalidRequestContent"),
            (json!({"operation": "Merge", "properties": {"tags": {"a": 1}}}), "InvalidRequestContent"),
            (json!({"operation": "Merge", "properties": {"tags": {"a?b": "1"}}}), "InvalidTagNameCharacters"),
            (json!({"operation": "Merge", "properties": {"tags": {"a": "x".repeat(257)}}}), "InvalidTagValueLength"),
        ] {
            let (s, v) = patch(body.clone()).await;
            assert_eq!((s, v["error"]["code"].as_str()), (400, Some(code)), "{body}");
        }
        let (s, v) = send(reqwest::Method::PATCH, tags_path.clone(), "", Some(json!({"operation": "Merge", "properties": {"tags": {}}}))).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("MissingApiVersionParameter")));
        let (s, _) = send(reqwest::Method::GET, tags_path.clone(), api, None).await;
        assert_eq!(s, 405);
        let missing = tags_path.replace("/ci-a/", "/ci-zz/");
        let (s, v) = send(reqwest::Method::PATCH, missing, api, Some(json!({"operation": "Merge", "properties": {"tags": {}}}))).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("ResourceNotFound")));

        // The reader may not.
        let (http_r, tok_r) = raw_client(&emu, READER).await;
        let r = http_r
            .patch(format!("{}{tags_path}{api}", emu.ready.endpoint))
            .bearer_auth(tok_r)
            .json(&json!({"operation": "Merge", "properties": {"tags": {"c": "3"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains(TAGS_WRITE), "{v}");
    })
    .await;
}

/// A `lightsout-hold-until` someone wrote wrong (a date alone, no offset, a leading space, a
/// year past what a timestamp holds) holds the instance instead of being ignored: `plan`
/// shows it held with the reason, a pass does not stop it and says why in its log.
#[tokio::test]
async fn an_unreadable_hold_holds_and_says_why() {
    within(180, async {
        let bad = [
            ("ci-date", "2099-01-01"),
            ("ci-nooffset", "2099-01-01T18:00"),
            ("ci-space", " 2099-01-01T18:00:00Z"),
            ("ci-far", "9999-12-31T23:59:59Z"),
        ];
        let mut text = fleet(
            GENEROUS,
            FAST,
            &[
                ("ci-date", "Running"),
                ("ci-nooffset", "Running"),
                ("ci-space", "Running"),
                ("ci-far", "Running"),
                ("ci-plain", "Running"),
            ],
        );
        for (name, value) in bad {
            let at = text.find(&format!("name = \"{name}\"")).unwrap();
            text.insert_str(
                at,
                &format!("tags = {{ lightsout-hold-until = {value:?} }}\n"),
            );
        }
        let emu = EmulatorProcess::start(&text).await;
        let daemon = daemon_config(&emu);

        let plan = emu.run(&daemon, ADMIN.1, &["plan", "--json"]).await;
        let rows = plan.success().json();
        let rows = rows.as_array().unwrap();
        for (name, value) in bad {
            let row = rows.iter().find(|r| r["instance"] == name).unwrap();
            assert_eq!(row["decision"], "skip", "{row:#}");
            assert_eq!(row["action"], "stop", "{row:#}");
            assert_eq!(row["skip"], "invalid_hold", "{row:#}");
            let why = row["invalid_hold"].as_str().unwrap();
            assert!(why.contains(&format!("{value:?}")), "{why}");
        }
        let plain = rows.iter().find(|r| r["instance"] == "ci-plain").unwrap();
        assert_eq!(plain["decision"], "act", "{plain:#}");
        assert!(plain.get("invalid_hold").is_none(), "{plain:#}");
        let table = emu.run(&daemon, ADMIN.1, &["plan"]).await;
        assert!(
            table.success().stdout.contains("UNREADABLE HOLDS"),
            "{table:#?}"
        );

        let run = emu.run(&daemon, ADMIN.1, &["run", "--once"]).await;
        run.success();
        let calls = emu.calls().await;
        assert_eq!(
            stops(&calls, "ci-plain"),
            1,
            "the policy does stop: {calls:#?}"
        );
        for (name, _) in bad {
            assert_eq!(stops(&calls, name), 0, "{name} is held: {calls:#?}");
        }
        assert_eq!(
            run.stderr.matches("unreadable hold tag").count(),
            bad.len(),
            "{run:#?}"
        );
    })
    .await;
}
