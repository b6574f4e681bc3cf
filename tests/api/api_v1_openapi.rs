//! `GET /api/v1/openapi.json`: a valid OpenAPI 3 document, generated from
//! the handlers, that lists exactly the routes served under `/api/v1`.

use crate::api_v1_admin::ROUTES;
use crate::helpers::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

async fn document() -> (crate::helpers::TestApp, String) {
    let app = spawn_app().await;
    // No token needed, and none given.
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    (app, text)
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                found.push(r);
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_is_valid_openapi_3() {
    let (_app, text) = document().await;
    let spec = oas3::from_json(&text).expect("an OpenAPI 3.1 document");
    let version = spec
        .validate_version()
        .expect("a supported OpenAPI version");
    assert_eq!(version.major, 3);
    let raw: Value = serde_json::from_str(&text).unwrap();

    let schemes = spec.components.as_ref().map(|c| &c.security_schemes);
    assert!(
        schemes.is_some_and(|s| s.contains_key("token")),
        "the bearer scheme"
    );
    let mut operation_ids = BTreeSet::new();
    for (path, method, op) in spec.operations() {
        let what = format!("{method} {path}");
        let id = op
            .operation_id
            .clone()
            .unwrap_or_else(|| panic!("{what} has an operationId"));
        assert!(
            operation_ids.insert(id.clone()),
            "{what}: operationId {id} is not unique"
        );
        let responses = op.responses.as_ref().filter(|r| !r.is_empty());
        assert!(responses.is_some(), "{what} has responses");
        assert!(op.summary.is_some(), "{what} says what it does");
        // Each {parameter} of the path is declared as one.
        let declared: BTreeSet<String> =
            raw["paths"][&path][method.as_str().to_lowercase()]["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        assert_eq!(declared, in_path, "{what}: path parameters");
        // A route that needs a token names the scheme and its scope.
        for requirement in &op.security {
            for (scheme, scopes) in &requirement.0 {
                assert_eq!(scheme, "token", "{what}");
                assert_eq!(scopes.len(), 1, "{what}: one scope");
            }
        }
    }
    let mut found = Vec::new();
    refs(&raw, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is local"));
        assert!(raw.pointer(pointer).is_some(), "{r} resolves");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_served() {
    let (app, text) = document().await;
    let raw: Value = serde_json::from_str(&text).unwrap();
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut scopes = BTreeMap::new();
    for (path, item) in raw["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            documented
                .entry(path.clone())
                .or_default()
                .insert(method.clone());
            let scope = op["security"][0]["token"][0].as_str().map(str::to_owned);
            scopes.insert((method, path.clone()), scope);
        }
    }
    // The routes the tests call (each is served: see
    // `each_scope_allows_exactly_its_routes`), with the scope each needs.
    let tested: BTreeMap<(String, String), Option<String>> = ROUTES
        .iter()
        .map(|r| {
            (
                (r.method.to_owned(), r.template.to_owned()),
                r.scope.map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(scopes, tested, "the document against the routes tested");
    // And the router serves no other method on those paths: its 405 says
    // which it has (HEAD comes with GET).
    for (path, methods) in &documented {
        let concrete = ROUTES
            .iter()
            .find(|r| r.template == path.as_str())
            .unwrap()
            .path;
        let response = app
            .client
            .request(Method::PATCH, app.url(concrete))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "PATCH {path}"
        );
        let allowed: BTreeSet<String> = response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| m != "HEAD")
            .collect();
        assert_eq!(&allowed, methods, "{path}: served against documented");
    }
    // Anything else under /api/v1 is a JSON 404.
    let (status, body) = {
        let response = app.get("/api/v1/nothing/here").await;
        (response.status(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::NOT_FOUND, &Value::from("not_found"))
    );
}

/// The names of the properties of the component schema `name`.
fn properties(raw: &Value, name: &str) -> BTreeSet<String> {
    raw["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("the schema {name} has properties: {raw}"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_launch_body_and_the_vm_document_the_profile_and_the_interface() {
    let (_app, text) = document().await;
    let raw: Value = serde_json::from_str(&text).unwrap();
    let body =
        &raw["paths"]["/api/v1/vm"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["$ref"], "#/components/schemas/LaunchBody", "{body}");
    let launch = properties(&raw, "LaunchBody");
    for field in ["repo", "ref", "urlpath", "profile", "ide"] {
        assert!(launch.contains(field), "LaunchBody has {field}: {launch:?}");
    }
    for field in ["profile", "ide"] {
        let schema = &raw["components"]["schemas"]["LaunchBody"]["properties"][field];
        assert!(
            schema.to_string().contains("string"),
            "LaunchBody.{field} is a string: {schema}"
        );
        assert!(
            schema["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "LaunchBody.{field} says what it is: {schema}"
        );
    }
    let vm = properties(&raw, "VmView");
    for field in ["profile", "ide", "ide_missing"] {
        assert!(vm.contains(field), "VmView has {field}: {vm:?}");
    }
}
