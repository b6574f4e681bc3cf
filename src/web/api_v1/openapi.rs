//! The OpenAPI document of `/api/v1`, generated from the handlers'
//! `#[utoipa::path]` annotations as they are routed (`utoipa_axum`), so a
//! route and its description cannot drift apart.

use super::error::ErrorBody;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::sync::Arc;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "stackbinder",
        description = "Launch, follow and delete Jupyter VMs; for admins, every VM, the users \
                       and the registration links. Authenticate with a personal access token \
                       from the Tokens page: `Authorization: Bearer sbt_…`."
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerToken),
    tags(
        (name = "vm", description = "The caller's own VM"),
        (name = "admin", description = "Every VM, the users and the links (`admin:*`)"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// The `token` security scheme the routes name with their scope.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// This document (no token needed).
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi_document", tag = "meta",
    responses((status = 200, description = "The OpenAPI document of /api/v1",
               content_type = "application/json", body = Object)))]
pub async fn document(Extension(doc): Extension<Arc<Document>>) -> Response {
    Json(doc.as_ref()).into_response()
}
