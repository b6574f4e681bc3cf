//! Which user's server a request is for, read from the raw request target
//! before anything decodes it. Pure: no I/O.

use crate::domain::Login;

/// Every user's Jupyter lives under this path (JupyterHub's scheme); the
/// VM runs Jupyter with `--ServerApp.base_url=/user/<login>/`, so paths are
/// forwarded as they are.
pub const PREFIX: &str = "/user/";

/// Why a request target is refused before any VM is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadTarget {
    /// Not `/user/<a valid login>…`: the same 404 as an unknown user.
    NotFound,
    /// A path that could mean something else after decoding (dot
    /// segments, encoded or back slashes): 400, never forwarded.
    Ambiguous,
}

/// `/user/<login>/rest` → the login in the path.
pub fn login_of(path: &str) -> Result<Login, BadTarget> {
    let rest = path.strip_prefix(PREFIX).ok_or(BadTarget::NotFound)?;
    let segment = rest.split('/').next().unwrap_or_default();
    // Only the raw characters of a login: `%41lice`, `alice%2F..` and
    // friends are not logins (and `Login::parse` would trim spaces).
    let raw_login = !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !raw_login {
        return Err(BadTarget::NotFound);
    }
    if is_ambiguous(rest) {
        return Err(BadTarget::Ambiguous);
    }
    Login::parse(segment).map_err(|_| BadTarget::NotFound)
}

/// A path whose meaning could change on the way: a `.` or `..` segment
/// (also percent-encoded), an encoded slash or back slash, a back slash.
/// Jupyter never makes such paths (file names are encoded segment by
/// segment and cannot hold a slash), so refusing them costs nothing.
fn is_ambiguous(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains('\\') {
        return true;
    }
    lower
        .split('/')
        .any(|segment| matches!(segment.replace("%2e", ".").as_str(), "." | ".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_path_names_the_login() {
        for path in [
            "/user/alice/",
            "/user/alice",
            "/user/alice/lab/tree/a%20b.ipynb",
        ] {
            assert_eq!(login_of(path).unwrap().as_str(), "alice", "{path}");
        }
    }

    #[test]
    fn anything_else_is_not_found() {
        for path in [
            "/user/",
            "/user//x",
            "/user/%61lice/",
            "/user/alice%2F..%2Fbob/",
            "/user/-alice/",
            "/user/a_b/",
            "/users/alice/",
            "/user/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/",
        ] {
            assert_eq!(login_of(path), Err(BadTarget::NotFound), "{path}");
        }
    }

    #[test]
    fn paths_that_could_change_meaning_are_refused() {
        for path in [
            "/user/alice/../bob/api",
            "/user/alice/./api",
            "/user/alice/%2e%2e/bob/",
            "/user/alice/.%2E/bob/",
            "/user/alice/files/a%2Fb",
            "/user/alice/files/a%5cb",
            "/user/alice/files/a\\b",
            "/user/alice/..",
        ] {
            assert_eq!(login_of(path), Err(BadTarget::Ambiguous), "{path}");
        }
    }
}
