//! The API endpoints stackbinder calls: the user, and organization and
//! team membership.

use super::*;

pub(super) fn api_json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

pub(super) fn not_found() -> Response {
    api_json(
        StatusCode::NOT_FOUND,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
    )
}

/// Who the API caller is: GitHub's checks of the User-Agent and the token.
pub(super) fn api_caller(
    inner: &Inner,
    headers: &HeaderMap,
) -> Result<(i64, String), Box<Response>> {
    if headers
        .get(header::USER_AGENT)
        .is_none_or(|v| v.as_bytes().is_empty())
    {
        return Err((
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
            "Request forbidden by administrative rules. Please make sure your request has a \
             User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
             Check https://developer.github.com for other possible causes.\n",
        )
            .into_response()
            .into());
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        });
    let Some(token) = token else {
        return Err(api_json(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        )
        .into());
    };
    match inner.tokens.get(token.trim()) {
        Some(t) => Ok((t.user_id, t.scope.clone())),
        None => Err(api_json(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        )
        .into()),
    }
}

pub(super) fn fault_status(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    api_json(
        status,
        json!({"message": status.canonical_reason().unwrap_or("error")}),
    )
}

/// `GET /user`
pub(super) async fn user(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let delay = lock(&shared).faults.user_delay;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let inner = lock(&shared);
    let (id, _) = match api_caller(&inner, &headers) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if let Some(status) = inner.faults.user_status {
        return fault_status(status);
    }
    let login = &inner.users[&id];
    api_json(
        StatusCode::OK,
        json!({
            "login": login,
            "id": id,
            "node_id": format!("U_kgDO{id}"),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
            "html_url": format!("https://github.com/{login}"),
            "type": "User",
            "site_admin": false,
            "name": null,
            "email": null,
            "created_at": "2020-01-01T00:00:00Z"
        }),
    )
}

pub(super) fn has_read_org(scope: &str) -> bool {
    scope
        .split(',')
        .any(|s| matches!(s.trim(), "read:org" | "write:org" | "admin:org"))
}

/// `GET /user/memberships/orgs/{org}`
pub(super) async fn org_membership(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Response {
    let gate = lock(&shared).faults.membership_gate.clone();
    if let Some(gate) = gate {
        gate.acquire().await.expect("never closed").forget();
    }
    let inner = lock(&shared);
    let (id, scope) = match api_caller(&inner, &headers) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if let Some(status) = inner.faults.membership_status {
        return fault_status(status);
    }
    // Without read:org GitHub does not show the membership.
    if !has_read_org(&scope) {
        return not_found();
    }
    let login = inner.users[&id].to_lowercase();
    match inner
        .orgs
        .get(&org.to_lowercase())
        .and_then(|m| m.get(&login))
    {
        Some(state) => api_json(
            StatusCode::OK,
            json!({
                "url": format!("https://api.github.com/orgs/{org}/memberships/{login}"),
                "state": state,
                "role": "member",
                "organization": {"login": org},
                "user": {"login": inner.users[&id], "id": id}
            }),
        ),
        None => not_found(),
    }
}

/// `GET /orgs/{org}/teams/{team}/memberships/{login}`
pub(super) async fn team_membership(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((org, team, login)): Path<(String, String, String)>,
) -> Response {
    let inner = lock(&shared);
    let (_, scope) = match api_caller(&inner, &headers) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if let Some(status) = inner.faults.membership_status {
        return fault_status(status);
    }
    if !has_read_org(&scope) {
        return not_found();
    }
    match inner
        .teams
        .get(&(org.to_lowercase(), team.to_lowercase()))
        .and_then(|m| m.get(&login.to_lowercase()))
    {
        Some(state) => api_json(
            StatusCode::OK,
            json!({
                "url": format!("https://api.github.com/teams/1/memberships/{login}"),
                "role": "member",
                "state": state
            }),
        ),
        None => not_found(),
    }
}
