//! Glance v2.

use super::*;

/// Glance: version discovery at the root, then v2. A snapshot being made
/// moves on (queued → saving → active, or killed) as it is looked at.
pub(super) fn image(
    w: &mut World,
    method: &Method,
    seg: &[&str],
    query: &HashMap<String, String>,
) -> Response {
    if seg.is_empty() {
        return ok(json!({"versions": [{"id": "v2.16", "status": "CURRENT",
            "links": [{"href": format!("{}/image/v2/", w.base), "rel": "self"}]}]}));
    }
    match (method.as_str(), &seg[1..]) {
        ("GET", ["images"]) => {
            let images: Vec<&Value> = w
                .images
                .iter()
                .filter(|i| query.get("name").is_none_or(|n| i["name"] == n.as_str()))
                .collect();
            ok(json!({"images": images, "first": "/v2/images", "schema": "/v2/schemas/images"}))
        }
        ("GET", ["images", iid]) => {
            let Some(i) = w.images.iter().position(|i| i["id"] == *iid) else {
                return reply(404, Value::Null, None, &[]);
            };
            if let Some(left) = w.image_polls.get_mut(*iid) {
                let status = if *left == 0 {
                    w.image_polls.remove(*iid);
                    if w.snapshot_fails { "killed" } else { "active" }
                } else {
                    *left -= 1;
                    "saving"
                };
                w.images[i]["status"] = json!(status);
            }
            ok(w.images[i].clone())
        }
        ("DELETE", ["images", iid]) => match w.images.iter().position(|i| i["id"] == *iid) {
            Some(i) => {
                w.images.remove(i);
                w.image_polls.remove(*iid);
                reply(204, Value::Null, None, &[])
            }
            None => reply(404, Value::Null, None, &[]),
        },
        _ => reply(404, Value::Null, None, &[]),
    }
}
