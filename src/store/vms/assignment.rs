//! A VM's job and its secrets: the assignment `GET /api/vm/assignment`
//! answers, and a secret rotated at a pool VM's claim. The boot secret of
//! a rotated VM may still ask for the assignment (the VM learns its new
//! secret from that answer) until the VM first uses the new one; it never
//! posts a report.

use super::super::leases::begin_write;
use super::super::{Result, Store, on_pool};
use crate::cloud_init::Assignment;
use crate::domain::{VmId, VmState};
use crate::secret;
use chrono::Utc;

/// What `GET /api/vm/assignment` can tell a VM now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentLookup {
    /// Its job. `callback_secret` is the rotated secret until the VM has
    /// used it.
    Assigned(Assignment),
    /// Nobody has claimed it yet (a pool VM).
    Waiting,
    /// Failed, being deleted, deleted or unknown: no job will come.
    Gone,
}

/// The hashes of the secrets a VM may present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmSecrets {
    /// The secret that acts for the VM; `None` before its server was asked for.
    pub current: Option<Vec<u8>>,
    /// The boot secret of a rotated VM, until the VM used the new one:
    /// good for the assignment only.
    pub boot: Option<Vec<u8>>,
}

/// Set a VM's assignment on `$conn` (a connection or a transaction, e.g.
/// the claim's): `$assignment` is a `&cloud_init::Assignment`. Evaluates
/// to the query's `Result`, like `execute(...).await`.
macro_rules! assign_vm_on {
    ($conn:expr, $vm:expr, $assignment:expr) => {
        sqlx::query(
            "UPDATE vms SET assignment = $1, assigned_at = $2, updated_at = $2 WHERE id = $3",
        )
        .bind($crate::store::assignment_json($assignment))
        .bind(chrono::Utc::now())
        .bind($vm)
        .execute($conn)
        .await
    };
}
pub(crate) use assign_vm_on;

/// Rotate a VM's secret on `$conn` (a connection or a transaction, e.g.
/// the claim's) to `$new_secret` (a `&str`): its boot secret's hash is
/// kept (the first one, if rotated twice) until the VM uses the new
/// secret, which the assignment delivers to the boot secret meanwhile.
/// Evaluates to the query's `Result`; one row for a VM with a secret.
macro_rules! rotate_vm_secret_on {
    ($conn:expr, $vm:expr, $new_secret:expr) => {
        sqlx::query(
            "UPDATE vms SET boot_secret_hash = COALESCE(boot_secret_hash, secret_hash),
                            secret_hash = $1, delivered_secret = $2, updated_at = $3
             WHERE id = $4 AND secret_hash IS NOT NULL",
        )
        .bind($crate::secret::hash($new_secret))
        .bind($new_secret)
        .bind(chrono::Utc::now())
        .bind($vm)
        .execute($conn)
        .await
    };
}
pub(crate) use rotate_vm_secret_on;

/// An assignment as the `assignment` column holds it (without a secret:
/// a rotated one lives in `delivered_secret`, cleared once used).
pub(crate) fn assignment_json(assignment: &Assignment) -> String {
    let stored = Assignment {
        callback_secret: None,
        ..assignment.clone()
    };
    serde_json::to_string(&stored).expect("an assignment serializes")
}

#[derive(sqlx::FromRow)]
struct AssignmentRow {
    state: VmState,
    assignment: Option<String>,
    delivered_secret: Option<String>,
}

impl Store {
    /// The hashes of the secrets `id` may present: `None` for an unknown
    /// VM. One lookup by primary key, as a VM is authenticated before
    /// anything else is done for it.
    pub async fn vm_secrets(&self, id: VmId) -> Result<Option<VmSecrets>> {
        type Hashes = (Option<Vec<u8>>, Option<Vec<u8>>);
        let row: Option<Hashes> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT secret_hash, boot_secret_hash FROM vms WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(current, boot)| VmSecrets { current, boot }))
    }

    /// Store the hash of a VM's boot secret and, for a VM booted for its
    /// owner, its assignment (and when it got it), in one write before the secret leaves for
    /// the cloud: whatever server results can authenticate and find its
    /// job at once.
    pub async fn set_boot_secret(
        &self,
        id: VmId,
        hash: &[u8],
        assignment: Option<&Assignment>,
    ) -> Result<()> {
        let json = assignment.map(assignment_json);
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            sqlx::query(
                "UPDATE vms SET secret_hash = $1, assignment = $2, boot_secret_hash = NULL,
                                delivered_secret = NULL, updated_at = $3,
                                assigned_at = CASE WHEN $2 IS NULL THEN NULL ELSE $3 END
                 WHERE id = $4",
            )
            .bind(hash)
            .bind(json)
            .bind(Utc::now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// What `id` can be told about its job now.
    pub async fn vm_assignment(&self, id: VmId) -> Result<AssignmentLookup> {
        let row = match self.assignment_row(id).await? {
            Some(row) => row,
            // A pool VM waits for a claim; anything else is unknown.
            None if self.pool_secret_hash(id).await?.is_some() => {
                return Ok(AssignmentLookup::Waiting);
            }
            // Or it was claimed between the two looks: the claim's commit
            // removed the pool row and made this one together.
            None => match self.assignment_row(id).await? {
                Some(row) => row,
                None => return Ok(AssignmentLookup::Gone),
            },
        };
        if matches!(
            row.state,
            VmState::Failed | VmState::Deleting | VmState::Deleted
        ) {
            return Ok(AssignmentLookup::Gone);
        }
        let Some(json) = row.assignment else {
            return Ok(AssignmentLookup::Waiting);
        };
        let mut assignment: Assignment = serde_json::from_str(&json).map_err(|e| {
            sqlx::Error::Decode(format!("the assignment of VM {id} does not decode: {e}").into())
        })?;
        assignment.callback_secret = row.delivered_secret;
        Ok(AssignmentLookup::Assigned(assignment))
    }

    async fn assignment_row(&self, id: VmId) -> Result<Option<AssignmentRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as("SELECT state, assignment, delivered_secret FROM vms WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Give `id` its job and, with `new_secret`, rotate its secret (see
    /// `rotate_vm_secret_on!`), in one transaction; false for an unknown
    /// VM. Wake the VM's held request afterwards
    /// (`Provisioner::assignment_ready`).
    pub async fn assign_vm(
        &self,
        id: VmId,
        assignment: &Assignment,
        new_secret: Option<&str>,
    ) -> Result<bool> {
        Ok(on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            let assigned = assign_vm_on!(&mut *tx, id, assignment)?.rows_affected() == 1;
            if let Some(new_secret) = new_secret {
                rotate_vm_secret_on!(&mut *tx, id, new_secret)?;
            }
            tx.commit().await?;
            assigned
        }))
    }

    /// Rotate `id`'s secret to `new_secret` on its own (see
    /// `rotate_vm_secret_on!`); false for a VM without a boot secret.
    pub async fn rotate_vm_secret(&self, id: VmId, new_secret: &str) -> Result<bool> {
        Ok(on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            let rotated = rotate_vm_secret_on!(&mut *tx, id, new_secret)?.rows_affected() == 1;
            tx.commit().await?;
            rotated
        }))
    }

    /// The VM used its new secret: its boot secret stops acting and the
    /// delivered copy of the new one is forgotten.
    pub async fn rotated_secret_taken_up(&self, id: VmId) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            sqlx::query(
                "UPDATE vms SET boot_secret_hash = NULL, delivered_secret = NULL, updated_at = $1
                 WHERE id = $2 AND boot_secret_hash IS NOT NULL",
            )
            .bind(Utc::now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}

impl VmSecrets {
    /// Which of its secrets `presented` is, compared in constant time
    /// against both hashes whichever matches.
    pub fn check(&self, presented: &str) -> Option<SecretUse> {
        let against = |hash: &Option<Vec<u8>>| {
            hash.as_deref()
                .is_some_and(|h| secret::matches_hash(presented, h))
        };
        let (current, boot) = (against(&self.current), against(&self.boot));
        if current {
            Some(SecretUse::Current {
                rotation_pending: self.boot.is_some(),
            })
        } else if boot {
            Some(SecretUse::Boot)
        } else {
            None
        }
    }
}

/// Which secret a VM presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    /// The one that acts for it; `rotation_pending`: for the first time
    /// since a rotation.
    Current { rotation_pending: bool },
    /// The boot secret of a rotated VM: the assignment only.
    Boot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_vm_tells_its_boot_secret_from_its_new_one() {
        let secrets = VmSecrets {
            current: Some(secret::hash("new")),
            boot: Some(secret::hash("boot")),
        };
        assert_eq!(
            secrets.check("new"),
            Some(SecretUse::Current {
                rotation_pending: true
            })
        );
        assert_eq!(secrets.check("boot"), Some(SecretUse::Boot));
        assert_eq!(secrets.check("guess"), None);
        let settled = VmSecrets {
            boot: None,
            ..secrets
        };
        assert_eq!(settled.check("boot"), None);
        assert_eq!(
            settled.check("new"),
            Some(SecretUse::Current {
                rotation_pending: false
            })
        );
        assert_eq!(VmSecrets::default().check(""), None);
    }
}
