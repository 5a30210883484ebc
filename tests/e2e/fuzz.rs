//! Random and malformed requests against a running server, generated from its own OpenAPI
//! document: no answer is a 5xx, and every answer is documented for its route with a body that
//! matches the documented schema.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use crate::helpers::{assert_matches_openapi, ServeProcess};

/// One generated request.
#[derive(Debug, Clone)]
struct Case {
    path: String,
    method: String,
    template: String,
    query: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
}

/// Values that stress parsers: garbage, huge, empty, hostile, and some valid ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("AAPL".to_owned()),
        Just("X:BTCUSD".to_owned()),
        Just("1m".to_owned()),
        Just("2024-01-02".to_owned()),
        Just("0190a4c2-7d3e-7b41-9c55-5a8e3f1b2c4d".to_owned()),
        Just("<img src=x onerror=alert(1)>".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("%00".to_owned()),
        "[a-zA-Z0-9:._-]{1,12}",
        any::<String>().prop_map(|s| s.chars().take(40).collect()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid backfill request with one field broken or removed, or entirely random JSON.
fn body() -> impl Strategy<Value = (String, Vec<u8>)> {
    let valid = json!({
        "symbols": ["AAPL"], "timeframe": "1d", "from": "2024-01-02", "to": "2024-01-05",
        "adjusted": true, "mode": "missing"
    });
    let fields = [
        "symbols",
        "timeframe",
        "from",
        "to",
        "adjusted",
        "mode",
        "extra",
    ];
    let mutated = (
        proptest::sample::select(fields.to_vec()),
        proptest::option::of(json_value()),
    )
        .prop_map(move |(field, value)| {
            let mut v = valid.clone();
            match value {
                Some(x) => v[field] = x,
                None => {
                    if let Some(o) = v.as_object_mut() {
                        o.remove(field);
                    }
                }
            }
            serde_json::to_vec(&v).unwrap_or_default()
        });
    let content_type = prop_oneof![
        Just("application/json".to_owned()),
        Just("text/plain".to_owned()),
        Just("application/x-www-form-urlencoded".to_owned()),
    ];
    let payload = prop_oneof![
        mutated,
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        proptest::collection::vec(any::<u8>(), 0..64),
        Just(b"{\"symbols\": [".to_vec()),
    ];
    (content_type, payload)
}

fn cases(doc: &Value) -> impl Strategy<Value = Case> {
    let mut ops = Vec::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let params: Vec<(String, String)> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["name"].as_str().unwrap_or_default().to_owned(),
                                p["in"].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            ops.push((template.clone(), method.clone(), params));
        }
    }
    proptest::sample::select(ops).prop_flat_map(|(template, method, params)| {
        let n = params.len();
        (
            Just((template, method, params)),
            proptest::collection::vec(text(), n..=n),
            proptest::collection::vec(any::<bool>(), n..=n),
            proptest::option::of(body()),
        )
            .prop_map(|((template, method, params), values, present, body)| {
                let mut path = template.clone();
                let mut query = Vec::new();
                for (((name, location), value), present) in params.iter().zip(values).zip(present) {
                    match location.as_str() {
                        "path" => {
                            // Empty, `.` and `..` segments would change the route itself
                            // (URLs normalise them away), not test its parameter.
                            let value = if value.trim_matches('.').is_empty() {
                                "x".to_owned()
                            } else {
                                value
                            };
                            let encoded: String = url_encode(&value);
                            path = path.replace(&format!("{{{name}}}"), &encoded);
                        }
                        "query" if present => query.push((name.clone(), value)),
                        _ => {}
                    }
                }
                let body = if method == "post" { body } else { None };
                Case {
                    path,
                    method,
                    template,
                    query,
                    body,
                }
            })
    })
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn random_and_malformed_requests_get_documented_4xx_answers_never_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(dir.path(), &[], &["--demo"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let doc: Value = rt.block_on(async {
        client
            .get(server.url("/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    // Seeded, so that every CI run sends the same requests and a failure reproduces.
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 400,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::new());
    runner
        .run(&cases(&doc), |case| {
            let (status, body) = rt.block_on(async {
                let method = reqwest::Method::from_bytes(case.method.to_uppercase().as_bytes())
                    .expect("method");
                let mut req = client
                    .request(method, server.url(&case.path))
                    .query(&case.query);
                if let Some((content_type, bytes)) = &case.body {
                    req = req.header("content-type", content_type).body(bytes.clone());
                }
                let resp = req.send().await.expect("the server answers");
                let status = resp.status().as_u16();
                let is_json = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/json"));
                let bytes = resp.bytes().await.expect("a body");
                let body = if is_json {
                    serde_json::from_slice(&bytes).ok()
                } else {
                    None
                };
                (status, body)
            });
            *statuses.lock().unwrap().entry(status).or_insert(0u32) += 1;
            prop_assert!(status < 500, "{case:?} -> {status}: {body:?}");
            if let Some(body) = body {
                assert_matches_openapi(&doc, &case.template, &case.method, status, &body);
            }
            Ok(())
        })
        .unwrap();
    // The generator reached both the happy and the unhappy paths.
    let statuses = statuses.into_inner().unwrap();
    assert!(
        statuses.keys().any(|s| (200..300).contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.keys().any(|s| (400..500).contains(s)),
        "{statuses:?}"
    );
    server.terminate();
}
