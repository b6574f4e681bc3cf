// `sqlx::migrate!` embeds `migrations/sqlite` and `migrations/postgres` at
// compile time, and cargo does not know it reads those directories: without
// this, a new migration is left out of an incremental build (sqlx's
// documented build script).
fn main() {
    println!("cargo:rerun-if-changed=migrations/sqlite");
    println!("cargo:rerun-if-changed=migrations/postgres");
}
