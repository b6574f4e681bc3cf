// `sqlx::migrate!` embeds `migrations/` at compile time, and cargo does not
// know it reads that directory: without this, a new migration is left out
// of an incremental build (sqlx's documented build script).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
