//! Keystone v3.

use super::*;

/// Keystone v3: POST /v3/auth/tokens (password or application credential)
/// and GET /v3/auth/tokens (introspection of X-Subject-Token).
pub(super) fn identity(
    w: &mut World,
    method: &Method,
    seg: &[&str],
    body: Option<Value>,
    headers: &HeaderMap,
) -> Response {
    if seg != ["v3", "auth", "tokens"] {
        return err(error(404, "error", "not found"));
    }
    if *method == Method::GET {
        let subject = headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !w.tokens.contains_key(subject) {
            return err(error(404, "error", "Could not find token."));
        }
        return ok(token_body(w, "password"));
    }
    let body = body.unwrap_or(Value::Null);
    let identity = &body["auth"]["identity"];
    let method_name = identity["methods"][0].as_str().unwrap_or("").to_owned();
    let good = match method_name.as_str() {
        "password" => {
            let user = &identity["password"]["user"];
            user["name"] == USERNAME
                && user["password"] == PASSWORD
                && body["auth"]["scope"]["project"]["name"] == PROJECT
        }
        "application_credential" => {
            let cred = &identity["application_credential"];
            cred["id"] == APP_CRED_ID && cred["secret"] == APP_CRED_SECRET
        }
        _ => false,
    };
    if !good {
        return err(error(
            401,
            "error",
            "The request you have made requires authentication.",
        ));
    }
    w.auths.push(method_name.clone());
    let token = format!("gAAAAAB{}", uuid::Uuid::new_v4().simple());
    w.tokens.insert(token.clone(), Instant::now() + w.token_ttl);
    w.token_credentials
        .insert(token.clone(), method_name.clone());
    reply(
        201,
        token_body(w, &method_name),
        None,
        &[("x-subject-token", token)],
    )
}

pub(super) fn token_body(w: &World, method: &str) -> Value {
    let expires = chrono::Utc::now() + chrono::Duration::from_std(w.token_ttl).unwrap();
    let endpoint = |kind: &str, name: &str, url: String| {
        json!({"type": kind, "name": name, "id": id(), "endpoints": [
            {"id": id(), "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": url},
            {"id": id(), "interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": url}
        ]})
    };
    let b = &w.base;
    json!({"token": {
        "methods": [method],
        "expires_at": expires.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "issued_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "user": {"id": "u1", "name": USERNAME, "domain": {"id": "default", "name": "Default"}},
        "project": {"id": w.project_id, "name": PROJECT, "domain": {"id": "default", "name": "Default"}},
        "roles": [{"id": "r1", "name": "member"}],
        "catalog": [
            endpoint("identity", "keystone", format!("{b}/identity")),
            endpoint("compute", "nova", format!("{b}/compute/v2.1")),
            endpoint("block-storage", "cinder", format!("{b}/volume/v3/{}", w.project_id)),
            endpoint("network", "neutron", format!("{b}/network")),
            endpoint("image", "glance", format!("{b}/image")),
        ]
    }})
}
