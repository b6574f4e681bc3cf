//! The admin routes: `admin:*` tokens of admins only (see `AdminUser`).
//! The same use cases as `/admin` and the command line.

mod links;
mod storage;
mod users;
mod vms;

use crate::web::AppState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(vms::router())
        .merge(users::router())
        .merge(links::router())
        .merge(storage::router())
}
