//! Who may launch which profile, as a pure function of what is known about
//! the user: a profile with neither `links` nor `orgs` is open to everyone
//! who may launch; otherwise to admins, to whoever registered through one
//! of its links, and to members of one of its organizations or teams
//! (GitHub is asked by the caller, which passes the answer in).

use crate::config::{Profile, Profiles};
use crate::domain::ProfileName;
use crate::store::User;

/// `registered_via` of a user who registered through a link (see
/// `Access::register`): `link: <label>`.
const VIA_LINK: &str = "link: ";

/// What the rules of a profile read about the user.
#[derive(Debug, Clone, Copy)]
pub struct ProfileAsker<'a> {
    pub admin: bool,
    /// The label of the registration link they registered through.
    pub link: Option<&'a str>,
}

impl<'a> ProfileAsker<'a> {
    pub fn of(user: &'a User, admin: bool) -> Self {
        Self {
            admin,
            link: user
                .registered_via
                .as_deref()
                .and_then(|via| via.strip_prefix(VIA_LINK)),
        }
    }
}

/// May `asker` use `profile`? `member` is whether GitHub says they are in
/// one of its `orgs` (false when nobody asked).
pub fn may_use(profile: &Profile, asker: ProfileAsker<'_>, member: bool) -> bool {
    profile.is_open_to_all()
        || asker.admin
        || asker
            .link
            .is_some_and(|l| profile.links.iter().any(|p| p == l))
        || (member && !profile.orgs.is_empty())
}

/// The profile a launch asked for, or why it cannot have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileRefusal {
    NoSuchProfile(ProfileName),
    NotForYou(ProfileName),
    /// Profiles are configured, and none is open to this user.
    NoneForYou,
}

impl std::fmt::Display for ProfileRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSuchProfile(name) => write!(
                f,
                "there is no launch profile \"{name}\" on this server: check the launch link"
            ),
            Self::NotForYou(name) => write!(
                f,
                "the launch profile \"{name}\" is not open to you: ask the course staff, or launch with another profile"
            ),
            Self::NoneForYou => {
                f.write_str("no launch profile of this server is open to you: ask the course staff")
            }
        }
    }
}

/// Pick the profile `wanted` (else the first one open to the user) among
/// those `allowed`. `Ok(None)`: no profiles are configured.
pub fn choose<'p>(
    profiles: &'p Profiles,
    allowed: &[&'p Profile],
    wanted: Option<&ProfileName>,
) -> Result<Option<&'p Profile>, ProfileRefusal> {
    if profiles.is_empty() {
        return Ok(None);
    }
    match wanted {
        Some(name) => match profiles.get(name) {
            None => Err(ProfileRefusal::NoSuchProfile(name.clone())),
            Some(p) if allowed.iter().any(|a| a.name == p.name) => Ok(Some(p)),
            Some(_) => Err(ProfileRefusal::NotForYou(name.clone())),
        },
        None => allowed
            .first()
            .copied()
            .map(Some)
            .ok_or(ProfileRefusal::NoneForYou),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn profiles() -> Profiles {
        let toml = r#"
[[profiles]]
name = "standard"
description = "for all"
flavor = "m1.large"
volume_size_gb = 100
[[profiles]]
name = "gpu"
description = "a GPU"
flavor = "g1"
volume_size_gb = 100
image = "gpu"
gpu = true
links = ["GPU course"]
[[profiles]]
name = "big"
description = "for the org"
flavor = "m1.xlarge"
volume_size_gb = 300
orgs = ["my-org"]
"#;
        let config: Config = figment::Figment::new()
            .merge(<figment::providers::Toml as figment::providers::Format>::string(toml))
            .extract()
            .unwrap();
        config.profiles
    }

    fn name(n: &str) -> ProfileName {
        ProfileName::parse(n).unwrap()
    }

    #[test]
    fn each_rule_of_a_profile() {
        let p = profiles();
        let [standard, gpu, big] = [0, 1, 2].map(|i| p.iter().nth(i).unwrap());
        let nobody = ProfileAsker {
            admin: false,
            link: None,
        };
        let course = ProfileAsker {
            admin: false,
            link: Some("GPU course"),
        };
        let other = ProfileAsker {
            admin: false,
            link: Some("Course 101"),
        };
        let admin = ProfileAsker {
            admin: true,
            link: None,
        };
        let table = [
            (standard, nobody, false, true),
            (gpu, nobody, false, false),
            (gpu, course, false, true),
            (gpu, other, false, false),
            (gpu, nobody, true, false),
            (gpu, admin, false, true),
            (big, nobody, false, false),
            (big, nobody, true, true),
            (big, course, false, false),
            (big, admin, false, true),
        ];
        for (profile, asker, member, expected) in table {
            assert_eq!(
                may_use(profile, asker, member),
                expected,
                "{} {asker:?} member={member}",
                profile.name
            );
        }
    }

    #[test]
    fn choosing_a_profile() {
        let p = profiles();
        let standard = p.iter().next().unwrap();
        let allowed = [standard];
        assert_eq!(
            choose(&p, &allowed, None).unwrap().unwrap().name,
            name("standard")
        );
        let chosen = |profiles, allowed: &[&Profile], wanted: Option<&str>| {
            choose(profiles, allowed, wanted.map(name).as_ref()).map(|p| p.map(|p| p.name.clone()))
        };
        assert_eq!(
            chosen(&p, &allowed, Some("gpu")),
            Err(ProfileRefusal::NotForYou(name("gpu")))
        );
        assert_eq!(
            chosen(&p, &allowed, Some("huge")),
            Err(ProfileRefusal::NoSuchProfile(name("huge")))
        );
        assert_eq!(chosen(&p, &[], None), Err(ProfileRefusal::NoneForYou));
        assert_eq!(chosen(&Profiles::default(), &[], None), Ok(None));
        assert!(
            ProfileRefusal::NotForYou(name("gpu"))
                .to_string()
                .contains("not open to you")
        );
    }

    #[test]
    fn the_link_label_comes_from_how_the_user_registered() {
        let mut user = crate::store::User {
            github_id: crate::domain::GithubId(1),
            login: crate::domain::Login::parse("ada").unwrap(),
            created_at: chrono::Utc::now(),
            last_login_at: chrono::Utc::now(),
            registered_at: Some(chrono::Utc::now()),
            registered_via: Some("link: GPU course".into()),
            revoked_at: None,
            revoked_by: None,
        };
        assert_eq!(ProfileAsker::of(&user, false).link, Some("GPU course"));
        user.registered_via = Some("invitation".into());
        assert_eq!(ProfileAsker::of(&user, false).link, None);
    }
}
