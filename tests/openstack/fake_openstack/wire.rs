//! How a call is taken and answered: routed by service to the world as it
//! is, recorded, faults injected; the error bodies and paging the services
//! share.

use super::*;

pub(super) fn error(status: u16, wrapper: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({ wrapper: {"code": status, "message": message} }),
    )
}

pub(super) fn neutron_error(status: u16, kind: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"NeutronError": {"type": kind, "message": message, "detail": ""}}),
    )
}

pub(super) async fn handle(
    State(fake): State<FakeOpenStack>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = fake.world().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if method == Method::GET && uri.path().ends_with("/floatingips") {
        let held = {
            let mut slot = fake.fip_list_barrier.lock().unwrap();
            let held = slot.as_ref().map(|(b, _)| b.clone());
            if let Some((_, left)) = slot.as_mut() {
                *left -= 1;
                if *left == 0 {
                    *slot = None;
                }
            }
            held
        };
        if let Some(barrier) = held {
            let _ = tokio::time::timeout(FIP_HOLD, barrier.wait()).await;
        }
    }
    let body: Option<Value> = serde_json::from_slice(&body).ok();
    let snapshot = body
        .as_ref()
        .is_some_and(|b| b.get("createImage").is_some());
    let late = fake
        .world()
        .late_answers
        .iter()
        .find(|(m, suffix, _)| *m == method && uri.path().ends_with(suffix.as_str()))
        .map(|(_, _, delay)| *delay);
    let response = answer(&fake, method, uri, headers, body);
    let delay = match late {
        Some(delay) => delay,
        None if snapshot => fake.world().snapshot_reply_delay,
        None => Duration::ZERO,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// The answer to one call, from the world as it is.
pub(super) fn answer(
    fake: &FakeOpenStack,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Option<Value>,
) -> Response {
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let path = uri.path().trim_end_matches('/').trim_start_matches('/');
    let mut w = fake.world();
    let project = w.project_id.clone();
    let (service, rest): (&'static str, String) = if let Some(r) = path.strip_prefix("identity") {
        ("identity", r.trim_start_matches('/').to_owned())
    } else if let Some(r) = path.strip_prefix("compute/v2.1") {
        ("compute", r.trim_start_matches('/').to_owned())
    } else if let Some(r) = path.strip_prefix(&format!("volume/v3/{project}")) {
        ("volume", r.trim_start_matches('/').to_owned())
    } else if let Some(r) = path.strip_prefix("network") {
        ("network", r.trim_start_matches('/').to_owned())
    } else if let Some(r) = path.strip_prefix("image") {
        ("image", r.trim_start_matches('/').to_owned())
    } else {
        return (StatusCode::NOT_FOUND, "no such service").into_response();
    };
    let credential = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .and_then(|token| w.token_credentials.get(token).cloned());
    w.calls.push(Call {
        service,
        method: method.clone(),
        path: rest.clone(),
        query: query.clone(),
        body: body.clone(),
        headers: headers.clone(),
        at: Instant::now(),
        credential,
    });
    if !(service == "identity" && method == Method::POST) {
        let token = headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let alive = w.tokens.get(token).is_some_and(|exp| *exp > Instant::now());
        if !alive {
            w.rejected_tokens += 1;
            let (s, v) = error(
                401,
                "error",
                "The request you have made requires authentication.",
            );
            return reply(s, v, None, &[]);
        }
    }
    if let Some(i) = w
        .faults
        .iter()
        .position(|f| f.method == method && rest.contains(f.path) && f.times > 0)
    {
        let f = &mut w.faults[i];
        f.times -= 1;
        let (status, body, retry) = (f.status, f.body.clone(), f.retry_after);
        if f.times == 0 {
            w.faults.remove(i);
        }
        return reply(status, body, retry, &[]);
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match service {
        "identity" => identity(&mut w, &method, &segments, body, &headers),
        "compute" => compute(&mut w, &method, &segments, &query, body),
        "volume" => volume(&mut w, &method, &segments, &query, body),
        "network" => network(&mut w, &method, &segments, &query, body, &headers),
        _ => image(&mut w, &method, &segments, &query),
    }
}

pub(super) fn reply(
    status: u16,
    body: Value,
    retry_after: Option<u64>,
    headers: &[(&str, String)],
) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
    )
        .into_response();
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    for (k, v) in headers {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

pub(super) fn ok(body: Value) -> Response {
    reply(200, body, None, &[])
}

pub(super) fn err((status, body): (u16, Value)) -> Response {
    reply(status, body, None, &[])
}

/// One page of `items` (each with an `id`, in list order) as the query
/// asks for (`limit`, `marker`), capped at the world's page size; a full
/// page links to the next under `<key>_links`, as Nova, Cinder and Neutron
/// do. An unknown marker is a 400, as in Nova.
pub(super) fn page(
    w: &World,
    key: &str,
    path: &str,
    items: Vec<Value>,
    query: &HashMap<String, String>,
) -> Response {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(usize::MAX)
        .min(w.page_size);
    let start = match query.get("marker") {
        None => 0,
        Some(m) => match items.iter().position(|i| i["id"] == m.as_str()) {
            Some(i) => i + 1,
            None => return err(error(400, "badRequest", &format!("marker [{m}] not found"))),
        },
    };
    let batch: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let mut links = Vec::new();
    if batch.len() == limit
        && let Some(last) = batch.last()
    {
        let href = format!(
            "{}/{path}?limit={limit}&marker={}",
            w.base,
            last["id"].as_str().unwrap_or_default()
        );
        links.push(json!({"rel": "next", "href": href}));
    }
    ok(json!({ key: batch, format!("{key}_links"): links }))
}
