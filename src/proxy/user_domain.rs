//! Per-user origins (`server.user_domain`): each user's Jupyter at
//! `<login>.<user_domain>`, so one user's notebook JavaScript runs on an
//! origin that holds neither stackbinder's session cookie nor anyone
//! else's Jupyter cookies.
//!
//! The main origin hands a logged-in owner over with a redirect carrying a
//! ticket: random, good for one use within `TICKET_LIFETIME`, bound to the
//! user and the host. The user's host redeems it for its own cookie,
//! scoped to that host alone. Tickets and host sessions live in memory: a
//! restart only means one more silent hand-over.

use crate::domain::{GithubId, Login};
use crate::secret;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use url::Url;

/// Where a user's host redeems a ticket (outside `/user/`, so it never
/// clashes with a Jupyter path).
pub const TICKET_PATH: &str = "/stackbinder-ticket";
/// The cookie of a user's host (host-only: no `Domain` attribute).
pub const USER_COOKIE: &str = "stackbinder_user";
const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// The login of a user's host: `<login>.<domain>`, any port, any case.
pub fn host_login(host: &str, domain: &str) -> Option<Login> {
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let name = name.to_ascii_lowercase();
    let label = name.strip_suffix(domain)?.strip_suffix('.')?;
    let valid = !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| Login::parse(label).ok()).flatten()
}

/// `https://<login>.<domain>[:port]/`: the scheme and port of
/// `server.public_url` (one TLS front end serves both).
pub fn user_origin(public_url: &Url, domain: &str, login: &str) -> Url {
    let port = public_url
        .port()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    Url::parse(&format!(
        "{}://{}.{domain}{port}/",
        public_url.scheme(),
        login.to_ascii_lowercase()
    ))
    .expect("a login and a validated domain make a URL")
}

struct Ticket {
    user: GithubId,
    host: String,
    next: String,
    expires: Instant,
}

struct HostSession {
    user: GithubId,
    host: String,
    idle_until: Instant,
    ends: Instant,
}

/// How long a host session lasts: `server.session_idle_minutes` without a
/// request, `server.session_max_hours` at most.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: Duration,
    pub max: Duration,
}

#[derive(Default)]
pub struct UserDomains {
    /// By the SHA-256 of the ticket (a lookup reveals nothing by timing).
    tickets: Mutex<HashMap<Vec<u8>, Ticket>>,
    /// By the SHA-256 of the cookie value.
    sessions: Mutex<HashMap<Vec<u8>, HostSession>>,
}

impl UserDomains {
    /// A ticket for `user` to the host of `login`, landing on `next`.
    pub fn issue(&self, user: GithubId, login: &Login, next: &str) -> String {
        let ticket = secret::generate();
        let now = Instant::now();
        let mut tickets = self.tickets.lock().expect("ticket lock");
        tickets.retain(|_, t| t.expires > now);
        tickets.insert(
            secret::hash(&ticket),
            Ticket {
                user,
                host: login.as_str().to_ascii_lowercase(),
                next: next.to_owned(),
                expires: now + TICKET_LIFETIME,
            },
        );
        ticket
    }

    /// Redeem a ticket on the host of `login`, once: a new host session's
    /// cookie value and where to go. None for an unknown, used, expired or
    /// other host's ticket.
    pub fn redeem(
        &self,
        ticket: &str,
        login: &Login,
        lifetimes: Lifetimes,
    ) -> Option<(String, String)> {
        let now = Instant::now();
        let taken = self
            .tickets
            .lock()
            .expect("ticket lock")
            .remove(&secret::hash(ticket))?;
        if taken.expires <= now || !taken.host.eq_ignore_ascii_case(login.as_str()) {
            return None;
        }
        let cookie = secret::generate();
        let mut sessions = self.sessions.lock().expect("session lock");
        sessions.retain(|_, s| s.ends > now && s.idle_until > now);
        sessions.insert(
            secret::hash(&cookie),
            HostSession {
                user: taken.user,
                host: taken.host,
                idle_until: now + lifetimes.idle,
                ends: now + lifetimes.max,
            },
        );
        Some((cookie, taken.next))
    }

    /// The user of a host session on the host of `login`, pushing its idle
    /// expiry back.
    pub fn user_of(&self, cookie: &str, login: &Login, lifetimes: Lifetimes) -> Option<GithubId> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().expect("session lock");
        let key = secret::hash(cookie);
        let session = sessions.get_mut(&key)?;
        if session.ends <= now || session.idle_until <= now {
            sessions.remove(&key);
            return None;
        }
        if !session.host.eq_ignore_ascii_case(login.as_str()) {
            return None;
        }
        session.idle_until = now + lifetimes.idle;
        Some(session.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIMES: Lifetimes = Lifetimes {
        idle: Duration::from_secs(60),
        max: Duration::from_secs(3600),
    };

    fn login(s: &str) -> Login {
        Login::parse(s).unwrap()
    }

    #[test]
    fn a_users_host_names_the_login() {
        let domain = "nb.example.org";
        assert_eq!(
            host_login("alice.nb.example.org", domain),
            Some(login("alice"))
        );
        assert_eq!(
            host_login("Alice.NB.example.org:8443", domain),
            Some(login("alice"))
        );
        for other in [
            "nb.example.org",
            "binder.example.org",
            "a.b.nb.example.org",
            "alicenb.example.org",
            "alice.nb.example.org.evil",
            "_x.nb.example.org",
            "-x.nb.example.org",
        ] {
            assert_eq!(host_login(other, domain), None, "{other}");
        }
    }

    #[test]
    fn the_users_origin_follows_the_public_url() {
        let public = Url::parse("https://binder.example.org/").unwrap();
        assert_eq!(
            user_origin(&public, "nb.example.org", "Alice").as_str(),
            "https://alice.nb.example.org/"
        );
        let local = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            user_origin(&local, "nb.localhost", "bob").as_str(),
            "http://bob.nb.localhost:8080/"
        );
    }

    #[test]
    fn a_ticket_works_once_and_only_on_its_host() {
        let domains = UserDomains::default();
        let alice = GithubId(1);
        let ticket = domains.issue(alice, &login("Alice"), "/user/Alice/lab");
        assert!(domains.redeem(&ticket, &login("bob"), LIFETIMES).is_none());
        // Tried on the wrong host, it is gone for good.
        assert!(
            domains
                .redeem(&ticket, &login("alice"), LIFETIMES)
                .is_none()
        );

        let ticket = domains.issue(alice, &login("Alice"), "/user/Alice/lab");
        let (cookie, next) = domains.redeem(&ticket, &login("alice"), LIFETIMES).unwrap();
        assert_eq!(next, "/user/Alice/lab");
        assert!(
            domains
                .redeem(&ticket, &login("alice"), LIFETIMES)
                .is_none()
        );
        assert_eq!(
            domains.user_of(&cookie, &login("alice"), LIFETIMES),
            Some(alice)
        );
        assert_eq!(domains.user_of(&cookie, &login("bob"), LIFETIMES), None);
        assert_eq!(domains.user_of("forged", &login("alice"), LIFETIMES), None);
    }

    #[test]
    fn a_host_session_ends_when_idle() {
        let domains = UserDomains::default();
        let ticket = domains.issue(GithubId(1), &login("alice"), "/");
        let short = Lifetimes {
            idle: Duration::ZERO,
            max: Duration::from_secs(3600),
        };
        let (cookie, _) = domains.redeem(&ticket, &login("alice"), short).unwrap();
        assert_eq!(domains.user_of(&cookie, &login("alice"), short), None);
    }
}
