//! Registration links: made with a fresh secret of which only the hash is
//! stored, so the link is shown once, when it is made.

use super::AccessError;
use crate::store::{NewLink, RegistrationLink, Store};
use chrono::Utc;
use url::Url;

/// What a link is for ("Course 101"): 1 to 100 bytes, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkLabel(String);

impl LinkLabel {
    /// None for a label that is empty or longer than 100 bytes once
    /// trimmed; each adapter says so in its own words.
    pub fn parse(raw: &str) -> Option<Self> {
        let label = raw.trim();
        (!label.is_empty() && label.len() <= 100).then(|| Self(label.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub struct LinkRequest {
    pub label: LinkLabel,
    /// The link stops working this many days after it was made.
    pub expires_in_days: Option<i64>,
    /// The link stops working after this many registrations.
    pub max_uses: Option<i64>,
}

/// A link just made, with the URL that holds its secret.
pub struct CreatedLink {
    pub link: RegistrationLink,
    pub url: Url,
}

/// The link a presented secret opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenedLink {
    /// `registration.secret` from the configuration: no expiry, no limit.
    Configured,
    Stored {
        id: i64,
        label: String,
    },
}

impl OpenedLink {
    pub fn label(&self) -> &str {
        match self {
            Self::Configured => "registration link",
            Self::Stored { label, .. } => label,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRevocation {
    Revoked,
    AlreadyRevoked,
    NoSuchLink,
}

pub(super) async fn create(
    store: &Store,
    public_url: &Url,
    request: LinkRequest,
    created_by: &str,
) -> Result<CreatedLink, AccessError> {
    let secret = crate::secret::generate();
    let link = store
        .create_link(NewLink {
            label: request.label.as_str(),
            secret_hash: &crate::secret::hash(&secret),
            created_by,
            expires_at: request
                .expires_in_days
                .map(|days| Utc::now() + chrono::Duration::days(days)),
            max_uses: request.max_uses,
        })
        .await?;
    let url = public_url.join(&format!("register/{secret}"))?;
    Ok(CreatedLink { link, url })
}

pub(super) async fn revoke(store: &Store, id: i64) -> Result<LinkRevocation, AccessError> {
    Ok(if store.revoke_link(id).await? {
        LinkRevocation::Revoked
    } else if store.link(id).await?.is_some() {
        LinkRevocation::AlreadyRevoked
    } else {
        LinkRevocation::NoSuchLink
    })
}

#[cfg(test)]
mod tests {
    use super::LinkLabel;

    #[test]
    fn a_label_has_1_to_100_bytes_once_trimmed() {
        let table: &[(&str, Option<&str>)] = &[
            ("Course 101", Some("Course 101")),
            ("  Course 101 \t", Some("Course 101")),
            ("x", Some("x")),
            ("", None),
            ("   ", None),
            (&"a".repeat(101), None),
        ];
        for (raw, expected) in table {
            assert_eq!(
                LinkLabel::parse(raw).as_ref().map(LinkLabel::as_str),
                *expected,
                "{raw:?}"
            );
        }
        let hundred = "a".repeat(100);
        assert_eq!(
            LinkLabel::parse(&format!(" {hundred} ")).map(|l| l.0),
            Some(hundred)
        );
    }
}
