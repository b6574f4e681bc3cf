//! Who may register, log in, launch and administer: the `Access` service.
//! It answers "may this user do this" in one place (`decide`, a pure
//! function of the user, the configuration and the facts, in `rules`),
//! and it is the one way to change who gets in: registration links made
//! and revoked, users allowed and revoked (a revoked user's VM goes with
//! them). The web pages and the command line are its adapters, as they
//! are the provisioner's for VMs.

mod links;
mod names;
pub mod profiles;
pub mod rules;
#[cfg(test)]
mod tests;

pub use links::{CreatedLink, LinkLabel, LinkRequest, LinkRevocation, OpenedLink};
pub use profiles::{ProfileAsker, ProfileRefusal};
pub use rules::{Action, AllowedBy, Decision, Policy, Refusal, Standing};

use crate::config::Config;
use crate::domain::{GithubId, Login};
use crate::provision::{DeleteReason, ProvisionError, Provisioner};
use crate::store::{
    AllowOutcome, Imported, LinkUse, Registration, Store, StoreError, User, VmRecord,
};
use names::ConfiguredAccounts;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The rules turn `login` away.
    #[error("{login}: {why}")]
    Refused { login: Login, why: Refusal },
    /// The link expired, was used up or revoked while it was being used.
    #[error("the registration link has just run out")]
    LinkRanOut,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Url(#[from] url::ParseError),
}

/// What revoking a login did.
#[derive(Debug)]
pub struct Revoked {
    /// The user, if the login ever logged in.
    pub user: Option<User>,
    /// A pending invitation was withdrawn.
    pub uninvited: bool,
    /// Their live VM, now being deleted.
    pub vm: Option<VmRecord>,
}

pub struct Access {
    accounts: ConfiguredAccounts,
    policy: Policy,
    provisioner: Provisioner,
    public_url: Url,
}

impl Access {
    /// The configured lists with every tie of a name to an account made so
    /// far (tying names that a known user has now).
    pub async fn load(config: &Config, provisioner: &Provisioner) -> Result<Self, StoreError> {
        Ok(Self {
            accounts: ConfiguredAccounts::load(&config.registration, provisioner.store()).await?,
            policy: Policy {
                orgs_allowed: !config.registration.allowed_orgs.is_empty(),
            },
            provisioner: provisioner.clone(),
            public_url: config.server.public_url.clone(),
        })
    }

    fn store(&self) -> &Store {
        self.provisioner.store()
    }

    /// What is known about an account, with or without its user record.
    fn standing(&self, id: GithubId, user: Option<&User>) -> Standing {
        Standing {
            blocked: self.accounts.is_blocked(id),
            admin: self.accounts.is_admin(id),
            registered: user.is_some_and(User::is_registered),
            withdrawn: user.is_some_and(User::is_withdrawn),
        }
    }

    /// May `user` do `action`?
    pub fn decide(&self, user: &User, action: Action) -> Decision {
        rules::decide(
            self.standing(user.github_id, Some(user)),
            self.policy,
            action,
        )
    }

    /// `decide`, with a refusal as an error that names the user.
    pub fn check(&self, user: &User, action: Action) -> Result<AllowedBy, AccessError> {
        self.decide(user, action)
            .allowed()
            .map_err(|why| AccessError::Refused {
                login: user.login.clone(),
                why,
            })
    }

    /// Whether to show `/admin` in the navigation.
    pub fn is_admin(&self, id: GithubId) -> bool {
        self.accounts.is_admin(id)
    }

    /// Whether GitHub must be asked at login whether `user` is a member
    /// of `registration.allowed_orgs`.
    pub fn asks_membership(&self, user: &User) -> bool {
        rules::asks_membership(self.standing(user.github_id, Some(user)), self.policy)
    }

    /// GitHub (or the demo form) says this is account `id` with `login`:
    /// tie the configured names it has, turn it away if blocked (before
    /// anything is recorded), and record the login.
    pub async fn log_in(&self, id: GithubId, login: &Login) -> Result<User, AccessError> {
        self.accounts.sight(id, login).await?;
        if let Decision::Refused(why) =
            rules::decide(self.standing(id, None), self.policy, Action::LogIn)
        {
            return Err(AccessError::Refused {
                login: login.clone(),
                why,
            });
        }
        Ok(self.store().record_login(id, login).await?)
    }

    /// Register `user` through `link`, if the rules let them register.
    /// False when they were registered already. A revocation that lands
    /// meanwhile still wins, and so does the link running out.
    pub async fn register(&self, user: &User, link: &OpenedLink) -> Result<bool, AccessError> {
        self.check(user, Action::Register)?;
        let withdrawn = || AccessError::Refused {
            login: user.login.clone(),
            why: Refusal::Withdrawn,
        };
        let via = format!("link: {}", link.label());
        let id = user.github_id;
        let newly = match link {
            OpenedLink::Configured => match self.store().register(id, &via).await? {
                Registration::Registered => true,
                Registration::AlreadyRegistered => false,
                Registration::Withdrawn => return Err(withdrawn()),
            },
            OpenedLink::Stored { id: link, .. } => {
                match self.store().register_with_link(*link, id, &via).await? {
                    LinkUse::Registered => true,
                    LinkUse::AlreadyRegistered => false,
                    LinkUse::Withdrawn => return Err(withdrawn()),
                    LinkUse::LinkNotActive => return Err(AccessError::LinkRanOut),
                }
            }
        };
        if newly {
            tracing::info!(user = %user.login, link = link.label(), "registered");
        }
        Ok(newly)
    }

    /// An admin allows a login (`users add`): registered if they logged in
    /// before (lifting a revocation), else invited.
    pub async fn allow_login(&self, login: &Login, by: &str) -> Result<AllowOutcome, AccessError> {
        Ok(self.store().allow_login(login, by).await?)
    }

    /// An admin allows a known user (again), lifting a revocation.
    /// False when they were registered already.
    pub async fn allow_user(&self, id: GithubId, by: &str) -> Result<bool, AccessError> {
        Ok(self.store().allow_user(id, by).await?)
    }

    /// A login of a course list: allowed unless it was revoked.
    pub async fn import_login(&self, login: &Login, by: &str) -> Result<Imported, AccessError> {
        Ok(self.store().import_login(login, by).await?)
    }

    /// Take `login` off the allowlist, for good until an admin allows it
    /// again, and delete its live VM. `by` is who revoked it, `why` goes
    /// to the VM's event log.
    pub async fn revoke(&self, login: &Login, by: &str, why: &str) -> Result<Revoked, AccessError> {
        let (user, uninvited) = self.store().revoke_login(login, by).await?;
        let mut vm = None;
        if let Some(user) = &user {
            vm = self.store().live_vm_of(user.github_id).await?;
            if let Some(vm) = &vm {
                self.provisioner
                    .delete(vm, DeleteReason::Revoked, why)
                    .await?;
            }
            tracing::info!(user = %user.login, by, "user revoked");
        }
        Ok(Revoked {
            user,
            uninvited,
            vm,
        })
    }

    /// Make a registration link; its URL holds the secret, which is shown
    /// this once (only its hash is stored).
    pub async fn create_link(
        &self,
        request: LinkRequest,
        created_by: &str,
    ) -> Result<CreatedLink, AccessError> {
        links::create(self.store(), &self.public_url, request, created_by).await
    }

    pub async fn revoke_link(&self, id: i64) -> Result<LinkRevocation, AccessError> {
        links::revoke(self.store(), id).await
    }
}
