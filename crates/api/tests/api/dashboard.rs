//! The dashboard page, its assets and `/api/v1/info`.

use axum::body::Body;
use axum::http::{header, Method, Request, Response, StatusCode};
use backfill_api::{openapi, ApiConfig, CONTENT_SECURITY_POLICY};
use backfill_storage::{MockCandleStore, MockJobRepository};
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::*;

const ASSETS: &[(&str, &str)] = &[
    ("/assets/app.js", "text/javascript; charset=utf-8"),
    ("/assets/style.css", "text/css; charset=utf-8"),
    ("/assets/favicon.svg", "image/svg+xml"),
];

fn with_token() -> ApiConfig {
    ApiConfig::default()
        .with_api_token(Some(SecretString::from("dash-token")))
        .unwrap()
}

fn header_of<'a>(response: &'a Response<Body>, name: &header::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// The security headers every dashboard answer carries.
fn assert_hardened(response: &Response<Body>, what: &str) {
    assert_eq!(
        header_of(response, &header::CONTENT_SECURITY_POLICY),
        CONTENT_SECURITY_POLICY,
        "{what}"
    );
    assert_eq!(
        header_of(response, &header::X_CONTENT_TYPE_OPTIONS),
        "nosniff",
        "{what}"
    );
    assert_eq!(
        header_of(response, &header::CACHE_CONTROL),
        "no-cache",
        "{what}"
    );
    assert!(
        header_of(response, &header::ETAG).starts_with('"'),
        "{what}"
    );
}

/// Every value of `name="..."` in the page.
fn attribute_values<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').expect("a closed attribute")]
        })
        .collect()
}

#[tokio::test]
async fn the_page_is_html_with_a_strict_content_security_policy() {
    let response = send(&idle_app(), get("/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, &header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_hardened(&response, "/");
    assert_eq!(header_of(&response, &header::X_FRAME_OPTIONS), "DENY");
    let policy: Vec<&str> = CONTENT_SECURITY_POLICY.split("; ").collect();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(&directive), "{directive} missing");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    let html = body_text(response).await;
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains("id=\"backfill-form\""));
}

#[tokio::test]
async fn the_page_references_only_local_assets_and_has_nothing_inline() {
    let app = idle_app();
    let html = body_text(send(&app, get("/")).await).await;
    let lower = html.to_ascii_lowercase();
    let mut local = Vec::new();
    for name in ["src", "href", "action"] {
        for value in attribute_values(&html, name) {
            assert!(
                value.starts_with('/') && !value.starts_with("//") || value.starts_with('#'),
                "{name}={value:?} is not a local path"
            );
            if value.starts_with("/assets/") {
                local.push(value.to_owned());
            }
        }
    }
    assert!(local.contains(&"/assets/app.js".to_owned()), "{local:?}");
    assert!(local.contains(&"/assets/style.css".to_owned()), "{local:?}");
    for path in local {
        let response = send(&app, get(&path)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    assert!(!lower.contains("http://") && !lower.contains("https://"));
    // The policy forbids inline code: the page must not need any.
    assert!(!lower.contains("<style"), "inline style sheet");
    assert!(!lower.contains(" style=\""), "inline style attribute");
    assert_eq!(
        lower.matches("<script").count(),
        lower
            .matches("<script src=\"/assets/app.js\" defer></script>")
            .count(),
        "inline script"
    );
    for handler in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onerror=",
        "javascript:",
    ] {
        assert!(!lower.contains(handler), "inline handler {handler}");
    }
}

#[tokio::test]
async fn assets_answer_with_their_content_types() {
    let app = idle_app();
    for (path, content_type) in ASSETS {
        let response = send(&app, get(path)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header_of(&response, &header::CONTENT_TYPE),
            *content_type,
            "{path}"
        );
        assert_hardened(&response, path);
        assert!(!body_text(response).await.is_empty(), "{path}");

        let head = Request::builder()
            .method(Method::HEAD)
            .uri(*path)
            .body(Body::empty())
            .unwrap();
        let response = send(&app, head).await;
        assert_eq!(response.status(), StatusCode::OK, "HEAD {path}");
        assert!(body_text(response).await.is_empty(), "HEAD {path}");
    }
}

#[tokio::test]
async fn a_current_etag_answers_304_and_a_stale_one_the_file() {
    let app = idle_app();
    for path in ["/", "/assets/app.js", "/assets/style.css"] {
        let etag = header_of(&send(&app, get(path)).await, &header::ETAG).to_owned();
        let revalidate = |tag: &str| {
            Request::get(path)
                .header(header::IF_NONE_MATCH, tag)
                .body(Body::empty())
                .unwrap()
        };
        let response = send(&app, revalidate(&etag)).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(header_of(&response, &header::ETAG), etag);
        assert!(body_text(response).await.is_empty());
        let response = send(&app, revalidate("\"0000000000000000\"")).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let a = header_of(&send(&app, get("/assets/app.js")).await, &header::ETAG).to_owned();
    let b = header_of(&send(&app, get("/assets/style.css")).await, &header::ETAG).to_owned();
    assert_ne!(a, b);
}

#[tokio::test]
async fn unknown_assets_and_other_methods_answer_in_the_error_shape() {
    let app = idle_app();
    for uri in [
        "/assets/nope.js",
        "/assets/",
        "/assets/../Cargo.toml",
        "/index.html",
    ] {
        expect_error(&app, get(uri), StatusCode::NOT_FOUND, "route_not_found").await;
    }
    for uri in ["/", "/assets/app.js"] {
        expect_error(
            &app,
            post(uri),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    }
}

#[tokio::test]
async fn the_page_and_its_assets_stay_open_when_a_token_is_set() {
    let app = app_with(
        MockJobRepository::new(),
        MockCandleStore::new(),
        with_token(),
    );
    for path in std::iter::once("/").chain(ASSETS.iter().map(|(p, _)| *p)) {
        let response = send(&app, get(path)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    expect_error(
        &app,
        get("/api/v1/info"),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let authorised = Request::get("/api/v1/info")
        .header(header::AUTHORIZATION, "Bearer dash-token")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, authorised).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn info_says_whether_the_data_is_simulated() {
    for (config, demo) in [
        (ApiConfig::default(), false),
        (ApiConfig::default().with_demo(false), false),
        (ApiConfig::default().with_demo(true), true),
    ] {
        let app = app_with(MockJobRepository::new(), MockCandleStore::new(), config);
        let response = send(&app, get("/api/v1/info")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header_of(&response, &header::CONTENT_TYPE),
            "application/json"
        );
        assert_eq!(
            body_json(response).await,
            json!({"name": "backfill", "version": env!("CARGO_PKG_VERSION"), "demo": demo})
        );
    }
    assert!(format!("{:?}", ApiConfig::default().with_demo(true)).contains("demo: true"));
}

#[test]
fn info_is_in_the_openapi_document_and_the_page_is_not() {
    let doc = serde_json::to_value(openapi()).unwrap();
    let info = &doc["paths"]["/api/v1/info"]["get"];
    assert_eq!(
        info["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/InfoBody"
    );
    assert_eq!(info["tags"], json!(["server"]));
    assert!(info["responses"]["401"].is_object());
    assert!(
        info["responses"].get("503").is_none(),
        "info reads no storage"
    );
    let required = doc["components"]["schemas"]["InfoBody"]["required"].clone();
    for field in ["name", "version", "demo"] {
        assert!(
            required.as_array().unwrap().contains(&json!(field)),
            "{field}"
        );
    }
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.keys().all(|p| p != "/" && !p.starts_with("/assets")));
}

#[tokio::test]
async fn the_script_never_writes_markup_and_sends_the_token_as_a_bearer() {
    let script = body_text(send(&idle_app(), get("/assets/app.js")).await).await;
    // The SVG namespace is a name, not a place the page loads anything from.
    let script = script.replace("'http://www.w3.org/2000/svg'", "SVG_NAMESPACE");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "EventSource",
        "http://",
        "https://",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    for needed in [
        "textContent",
        "createElement",
        "sessionStorage",
        "`Bearer ${",
        "/api/v1/backfill/recent",
        "/events`",
        "next_cursor",
        "/api/v1/info",
    ] {
        assert!(script.contains(needed), "app.js lacks {needed}");
    }
}
