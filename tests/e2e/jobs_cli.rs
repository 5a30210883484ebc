//! `backfill jobs`: the command-line client of a running server.

use crate::helpers::{backfill, stderr, ServeProcess};

#[test]
fn jobs_lists_shows_and_refuses_what_the_server_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(
        dir.path(),
        &[("BACKFILL_API_TOKEN", "cli-token")],
        &["--demo"],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let job_id = rt.block_on(async {
        let client = reqwest::Client::new();
        let created: serde_json::Value = client
            .post(server.url("/api/v1/backfill"))
            .bearer_auth("cli-token")
            .json(&serde_json::json!({
                "symbols": ["AAPL"], "timeframe": "1d", "from": "2024-01-02", "to": "2024-02-01",
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["job"]["id"].as_str().unwrap().to_owned()
    });
    let jobs = |args: &[&str]| {
        backfill(dir.path())
            .arg("jobs")
            .args(args)
            .env("BACKFILL_SERVER", &server.base_url)
            .env("BACKFILL_API_TOKEN", "cli-token")
            .output()
            .unwrap()
    };

    let out = jobs(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&job_id) && text.contains("AAPL"), "{text}");

    let out = jobs(&["status", &job_id, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["job"]["id"], job_id.as_str());

    // A job that cannot be cancelled any more, an unknown id, a bad id, a wrong token: each
    // answer names the server's error code.
    let finished = (0..200).find_map(|_| {
        let out = jobs(&["status", &job_id, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["job"]["status"] == "succeeded").then_some(())
    });
    assert!(finished.is_some(), "the demo job finishes");
    let out = jobs(&["cancel", &job_id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("conflict"), "{}", stderr(&out));
    let out = jobs(&["status", "0190a4c2-7d3e-7b41-9c55-5a8e3f1b2c4d"]);
    assert!(stderr(&out).contains("not_found"), "{}", stderr(&out));
    let out = jobs(&["retry", "not-a-uuid"]);
    assert!(stderr(&out).contains("invalid_job_id"), "{}", stderr(&out));
    let out = backfill(dir.path())
        .args(["jobs", "list", "--server", &server.base_url])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));
    server.terminate();
}

#[test]
fn jobs_names_the_server_it_cannot_reach() {
    let dir = tempfile::tempdir().unwrap();
    let out = backfill(dir.path())
        .args(["jobs", "list", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("http://127.0.0.1:9"),
        "{}",
        stderr(&out)
    );
}
