//! The rules of who may do what, as one pure function of what is known
//! about the asker: no store, no session, no GitHub. `Access::decide`
//! gathers those facts and asks here.

use std::fmt;

/// What someone asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Log in (before the login is recorded).
    LogIn,
    /// Open a registration link, or register through it.
    Register,
    /// Use this server: launch, see and delete their VM. `org_access` is
    /// the session's word that membership of `registration.allowed_orgs`
    /// let them in at login.
    Use { org_access: bool },
    /// Use `/admin`; whoever may not use the server may not administer it.
    Administer { org_access: bool },
    /// Reach their own VM's Jupyter through the proxy.
    ReachJupyter,
}

/// What is known about the asker when they ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    /// On `registration.blocked_users`.
    pub blocked: bool,
    /// On `registration.admins`.
    pub admin: bool,
    /// Registered through a link, `users add` or `/admin`.
    pub registered: bool,
    /// Their access was revoked, which only an admin undoes.
    pub withdrawn: bool,
}

/// The parts of the configuration the rules read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// `registration.allowed_orgs` names at least one organization or team.
    pub orgs_allowed: bool,
}

/// Why someone is let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowedBy {
    Registration,
    Admin,
    /// Membership of an allowed organization or team, checked at login
    /// and again before each launch.
    Organization,
    /// Nothing more is asked than not being blocked or withdrawn (logging
    /// in, opening a registration link, reaching one's own Jupyter).
    GoodStanding,
}

/// Why someone is turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Blocked,
    /// Revoked: neither a registration link nor organization membership
    /// lets them in again.
    Withdrawn,
    NotRegistered,
    NotAdmin,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Blocked => "blocked",
            Self::Withdrawn => "access withdrawn",
            Self::NotRegistered => "not registered",
            Self::NotAdmin => "not an admin",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed(AllowedBy),
    Refused(Refusal),
}

impl Decision {
    pub fn allowed(self) -> Result<AllowedBy, Refusal> {
        match self {
            Self::Allowed(by) => Ok(by),
            Self::Refused(why) => Err(why),
        }
    }
}

/// May someone of `standing` do `action` under `policy`? Being blocked
/// wins over everything, an admin needs no registration, and a revoked
/// user stays out until an admin allows them again.
pub fn decide(standing: Standing, policy: Policy, action: Action) -> Decision {
    use Decision::{Allowed, Refused};
    if standing.blocked {
        return Refused(Refusal::Blocked);
    }
    match action {
        Action::LogIn => Allowed(AllowedBy::GoodStanding),
        // A link does not undo a revocation, not even an admin's.
        Action::Register if standing.withdrawn => Refused(Refusal::Withdrawn),
        // An admin's own VM stays theirs to reach.
        Action::ReachJupyter if standing.withdrawn && !standing.admin => {
            Refused(Refusal::Withdrawn)
        }
        Action::Register | Action::ReachJupyter => Allowed(AllowedBy::GoodStanding),
        Action::Use { org_access } => {
            if standing.registered {
                Allowed(AllowedBy::Registration)
            } else if standing.admin {
                Allowed(AllowedBy::Admin)
            } else if standing.withdrawn {
                Refused(Refusal::Withdrawn)
            } else if policy.orgs_allowed && org_access {
                Allowed(AllowedBy::Organization)
            } else {
                Refused(Refusal::NotRegistered)
            }
        }
        Action::Administer { org_access } => {
            match decide(standing, policy, Action::Use { org_access }) {
                Allowed(_) if standing.admin => Allowed(AllowedBy::Admin),
                Allowed(_) => Refused(Refusal::NotAdmin),
                refused => refused,
            }
        }
    }
}

/// Whether GitHub must be asked at login about the organizations: only
/// for someone that membership alone could let in.
pub fn asks_membership(standing: Standing, policy: Policy) -> bool {
    policy.orgs_allowed
        && decide(standing, policy, Action::Use { org_access: false })
            == Decision::Refused(Refusal::NotRegistered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AllowedBy::{Admin, GoodStanding, Organization, Registration};
    use Refusal::{Blocked, NotAdmin, NotRegistered, Withdrawn};

    /// A standing from its letters: b(locked), a(dmin), r(egistered), w(ithdrawn).
    fn s(flags: &str) -> Standing {
        Standing {
            blocked: flags.contains('b'),
            admin: flags.contains('a'),
            registered: flags.contains('r'),
            withdrawn: flags.contains('w'),
        }
    }

    const ORGS: Policy = Policy { orgs_allowed: true };
    const NO_ORGS: Policy = Policy {
        orgs_allowed: false,
    };
    const USE: Action = Action::Use { org_access: false };
    const USE_ORG: Action = Action::Use { org_access: true };
    const ADMIN: Action = Action::Administer { org_access: false };
    const ADMIN_ORG: Action = Action::Administer { org_access: true };

    fn ok(by: AllowedBy) -> Decision {
        Decision::Allowed(by)
    }

    fn no(why: Refusal) -> Decision {
        Decision::Refused(why)
    }

    #[test]
    fn every_rule_of_every_action() {
        let table: &[(&str, Policy, Action, Decision)] = &[
            // Logging in: only a block keeps anyone out.
            ("", NO_ORGS, Action::LogIn, ok(GoodStanding)),
            ("w", NO_ORGS, Action::LogIn, ok(GoodStanding)),
            ("a", NO_ORGS, Action::LogIn, ok(GoodStanding)),
            ("b", NO_ORGS, Action::LogIn, no(Blocked)),
            ("ba", ORGS, Action::LogIn, no(Blocked)),
            // Registering: blocked and withdrawn stay out, admins included.
            ("", NO_ORGS, Action::Register, ok(GoodStanding)),
            ("r", NO_ORGS, Action::Register, ok(GoodStanding)),
            ("b", NO_ORGS, Action::Register, no(Blocked)),
            ("bw", NO_ORGS, Action::Register, no(Blocked)),
            ("w", NO_ORGS, Action::Register, no(Withdrawn)),
            ("aw", NO_ORGS, Action::Register, no(Withdrawn)),
            // Using the server.
            ("r", NO_ORGS, USE, ok(Registration)),
            ("ra", NO_ORGS, USE, ok(Registration)),
            ("a", NO_ORGS, USE, ok(Admin)),
            ("aw", NO_ORGS, USE, ok(Admin)),
            ("", NO_ORGS, USE, no(NotRegistered)),
            ("w", NO_ORGS, USE, no(Withdrawn)),
            ("br", NO_ORGS, USE, no(Blocked)),
            ("ba", NO_ORGS, USE, no(Blocked)),
            // ... by organization membership, only when orgs are allowed,
            // and never for a revoked user.
            ("", ORGS, USE_ORG, ok(Organization)),
            ("", ORGS, USE, no(NotRegistered)),
            ("", NO_ORGS, USE_ORG, no(NotRegistered)),
            ("w", ORGS, USE_ORG, no(Withdrawn)),
            ("b", ORGS, USE_ORG, no(Blocked)),
            ("r", ORGS, USE_ORG, ok(Registration)),
            // Administering: admins only, after the rules of use.
            ("a", NO_ORGS, ADMIN, ok(Admin)),
            ("ar", NO_ORGS, ADMIN, ok(Admin)),
            ("aw", NO_ORGS, ADMIN, ok(Admin)),
            ("r", NO_ORGS, ADMIN, no(NotAdmin)),
            ("", ORGS, ADMIN_ORG, no(NotAdmin)),
            ("", NO_ORGS, ADMIN, no(NotRegistered)),
            ("w", NO_ORGS, ADMIN, no(Withdrawn)),
            ("ba", NO_ORGS, ADMIN, no(Blocked)),
            // Reaching one's Jupyter: not blocked, not withdrawn unless admin.
            ("", NO_ORGS, Action::ReachJupyter, ok(GoodStanding)),
            ("r", NO_ORGS, Action::ReachJupyter, ok(GoodStanding)),
            ("w", NO_ORGS, Action::ReachJupyter, no(Withdrawn)),
            ("aw", NO_ORGS, Action::ReachJupyter, ok(GoodStanding)),
            ("b", NO_ORGS, Action::ReachJupyter, no(Blocked)),
            ("ba", NO_ORGS, Action::ReachJupyter, no(Blocked)),
        ];
        for (flags, policy, action, expected) in table {
            assert_eq!(
                decide(s(flags), *policy, *action),
                *expected,
                "{flags:?} {policy:?} {action:?}"
            );
        }
    }

    #[test]
    fn membership_is_asked_only_of_whom_it_could_let_in() {
        let table: &[(&str, Policy, bool)] = &[
            ("", ORGS, true),
            ("", NO_ORGS, false),
            ("r", ORGS, false),
            ("a", ORGS, false),
            ("w", ORGS, false),
            ("b", ORGS, false),
        ];
        for (flags, policy, expected) in table {
            assert_eq!(
                asks_membership(s(flags), *policy),
                *expected,
                "{flags:?} {policy:?}"
            );
        }
    }

    #[test]
    fn a_decision_is_a_result() {
        assert_eq!(ok(Admin).allowed(), Ok(Admin));
        assert_eq!(no(Blocked).allowed(), Err(Blocked));
    }
}
