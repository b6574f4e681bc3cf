//! The OAuth endpoints: the authorize page a signed-in user approves
//! or denies, and the token endpoint with its form/JSON answers.

use super::*;

/// `GET /login/oauth/authorize`
pub(super) async fn authorize(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = lock(&inner);
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        // GitHub shows a 404 page for an unknown OAuth app.
        return html(StatusCode::NOT_FOUND, "Not Found");
    }
    let callback = inner.callback.clone();
    let redirect_uri = q.get("redirect_uri").cloned();
    let back_to = match (&redirect_uri, &callback) {
        (Some(uri), Some(registered)) if !uri.starts_with(registered.as_str()) => {
            return html(
                StatusCode::OK,
                "The redirect_uri MUST match the registered callback URL for this application.",
            );
        }
        (Some(uri), _) => uri.clone(),
        (None, Some(registered)) => registered.clone(),
        (None, None) => return html(StatusCode::OK, "This OAuth app has no callback URL."),
    };
    let mut back = match Url::parse(&back_to) {
        Ok(url) => url,
        Err(_) => return html(StatusCode::OK, "The redirect_uri is not a URL."),
    };
    let state = q.get("state").cloned();
    let mut answer = |pairs: &[(&str, &str)]| {
        {
            let mut query = back.query_pairs_mut();
            for (k, v) in pairs {
                query.append_pair(k, v);
            }
            if let Some(state) = &state {
                query.append_pair("state", state);
            }
        }
        redirect(back.clone())
    };
    let challenge = q.get("code_challenge").cloned();
    if challenge.is_some() && q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return answer(&[
            ("error", "invalid_request"),
            ("error_description", "code_challenge_method must be S256"),
        ]);
    }
    let Some(login) = headers.get(SIGNED_IN_AS).and_then(|v| v.to_str().ok()) else {
        return html(StatusCode::OK, "Sign in to GitHub to continue.");
    };
    let Some((&user_id, _)) = inner
        .users
        .iter()
        .find(|(_, l)| l.eq_ignore_ascii_case(login))
    else {
        return html(StatusCode::OK, "Incorrect username or password.");
    };
    if headers.get(DECISION).and_then(|v| v.to_str().ok()) == Some("deny") {
        return answer(&[
            ("error", "access_denied"),
            (
                "error_description",
                "The user has denied your application access.",
            ),
            (
                "error_uri",
                "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied",
            ),
        ]);
    }
    let code = random_hex(10);
    inner.codes.insert(
        code.clone(),
        Grant {
            user_id,
            client_id: CLIENT_ID.to_owned(),
            redirect_uri,
            challenge,
            scope: q
                .get("scope")
                .map(|s| {
                    s.split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
            issued: Instant::now(),
        },
    );
    answer(&[("code", &code)])
}

/// The client's id and secret, from HTTP Basic auth (RFC 6749: each part
/// form-urlencoded first) or from the body.
pub(super) fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = String::from_utf8(STANDARD.decode(basic.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Some((unescape(id), unescape(secret)));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

/// GitHub answers in JSON only when asked; else form-urlencoded, and HTTP
/// 200 even for errors.
pub(super) fn token_answer(headers: &HeaderMap, fields: &[(&str, &str)]) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let map: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            Value::Object(map).to_string(),
        )
            .into_response()
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            body,
        )
            .into_response()
    }
}

pub(super) fn bad_verification_code(headers: &HeaderMap) -> Response {
    token_answer(
        headers,
        &[
            ("error", "bad_verification_code"),
            (
                "error_description",
                "The code passed is incorrect or expired.",
            ),
            (
                "error_uri",
                "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
            ),
        ],
    )
}

/// `POST /login/oauth/access_token`
pub(super) async fn access_token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let delay = lock(&shared).faults.token_delay;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    match client_credentials(&headers, &form) {
        Some((id, secret)) if id == CLIENT_ID && secret == CLIENT_SECRET => {}
        _ => {
            return token_answer(
                &headers,
                &[
                    ("error", "incorrect_client_credentials"),
                    (
                        "error_description",
                        "The client_id and/or client_secret passed are incorrect.",
                    ),
                ],
            );
        }
    }
    if form
        .get("grant_type")
        .is_some_and(|g| g != "authorization_code")
    {
        return token_answer(&headers, &[("error", "unsupported_grant_type")]);
    }
    let mut inner = lock(&shared);
    // A code is used up by its first presentation, right or wrong.
    let Some(grant) = form.get("code").and_then(|c| inner.codes.remove(c)) else {
        return bad_verification_code(&headers);
    };
    let lifetime = inner.code_lifetime.unwrap_or(Duration::from_secs(600));
    let fresh = grant.issued.elapsed() < lifetime;
    let same_client = grant.client_id == CLIENT_ID;
    let same_redirect = match &grant.redirect_uri {
        Some(uri) => form.get("redirect_uri") == Some(uri),
        None => true,
    };
    let pkce_ok = match &grant.challenge {
        Some(challenge) => form.get("code_verifier").is_some_and(|verifier| {
            (43..=128).contains(&verifier.len())
                && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge
        }),
        None => true,
    };
    if !(fresh && same_client && same_redirect && pkce_ok) {
        return bad_verification_code(&headers);
    }
    let token = format!("gho_{}", random_hex(18));
    if !inner.faults.revoke_tokens {
        inner.tokens.insert(
            token.clone(),
            Token {
                user_id: grant.user_id,
                scope: grant.scope.clone(),
            },
        );
    }
    drop(inner);
    token_answer(
        &headers,
        &[
            ("access_token", &token),
            ("scope", &grant.scope),
            ("token_type", "bearer"),
        ],
    )
}
