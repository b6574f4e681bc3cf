//! Which launch profiles a user may pick, for the launch page and the API:
//! the rules are `access::profiles`'; this asks GitHub about the
//! organizations of the profiles that name any, for a session that holds
//! a token able to say (one whose login went through membership of
//! `registration.allowed_orgs`).

use super::{AppState, LoginMode};
use crate::access::profiles::{self, ProfileAsker, ProfileRefusal};
use crate::config::Profile;
use crate::domain::ProfileName;
use crate::provision::Room;
use crate::store::User;
use secrecy::SecretString;

/// The profiles `user` may launch, in the order of the configuration.
/// `github_token` is the session's token with `read:org`, if it has one.
pub async fn allowed<'s>(
    state: &'s AppState,
    user: &User,
    github_token: Option<&SecretString>,
) -> Vec<&'s Profile> {
    let asker = ProfileAsker::of(user, state.access.is_admin(user.github_id));
    let mut allowed = Vec::new();
    for profile in state.config.profiles.iter() {
        if profiles::may_use(profile, asker, false) {
            allowed.push(profile);
            continue;
        }
        let member = match (&state.login_mode, github_token) {
            (LoginMode::Github(github), Some(token)) if !profile.orgs.is_empty() => github
                .is_member(token, &user.login, &profile.orgs)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(user = %user.login, profile = %profile.name, error = %e,
                        "cannot ask GitHub about a launch profile's organizations");
                    false
                }),
            _ => false,
        };
        if profiles::may_use(profile, asker, member) {
            allowed.push(profile);
        }
    }
    allowed
}

/// The profile `user` launches with when asking for `wanted`: `Ok(None)`
/// when no profiles are configured.
pub async fn choose<'s>(
    state: &'s AppState,
    user: &User,
    github_token: Option<&SecretString>,
    wanted: Option<&ProfileName>,
) -> Result<(Option<&'s Profile>, Vec<&'s Profile>), ProfileRefusal> {
    let allowed = allowed(state, user, github_token).await;
    let chosen = profiles::choose(&state.config.profiles, &allowed, wanted)?;
    Ok((chosen, allowed))
}

/// A profile as the launch page offers it.
pub struct Offer {
    pub name: String,
    pub description: String,
    pub flavor: String,
    pub volume_size_gb: u32,
    pub gpu: bool,
    /// "3 of this size still fit".
    pub room: String,
    pub selected: bool,
}

/// Every profile in `allowed`, with how many more of its size fit now
/// (after `user`'s storage, on their first launch).
pub async fn offers(
    state: &AppState,
    user: &User,
    allowed: &[&Profile],
    chosen: Option<&Profile>,
) -> Result<Vec<Offer>, super::WebError> {
    let mut offers = Vec::with_capacity(allowed.len());
    for profile in allowed {
        let room = state
            .provisioner
            .room_for(Some(profile), user.github_id)
            .await?;
        let shape = state.provisioner.shape(Some(profile));
        offers.push(Offer {
            name: profile.name.to_string(),
            description: profile.description.clone(),
            flavor: shape.flavor,
            volume_size_gb: shape.volume_size_gb,
            gpu: profile.gpu,
            room: Room::describe(room),
            selected: chosen.is_some_and(|c| c.name == profile.name),
        });
    }
    Ok(offers)
}
