//! What the cloud made for a VM, recorded as it appears: the server, its
//! addresses and its boot volume.

use super::super::leases::begin_write;
use super::super::{Result, Store, on_pool};
use crate::domain::VmId;
use chrono::Utc;
use sqlx::types::Json;

impl Store {
    /// The VM's Jupyter does not provide the interface its launch asked for.
    pub async fn set_ide_missing(&self, id: VmId) -> Result<()> {
        let now = Utc::now();
        self.update(
            id,
            "UPDATE vms SET ide_missing_at = $1, updated_at = $2 WHERE id = $3",
            now,
        )
        .await
    }

    pub async fn set_server_id(&self, id: VmId, server_id: &str) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET server_id = $1, updated_at = $2 WHERE id = $3",
            server_id,
        )
        .await
    }

    pub async fn set_address(&self, id: VmId, address: &str) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET address = $1, updated_at = $2 WHERE id = $3",
            address,
        )
        .await
    }

    pub async fn set_volume_ids(&self, id: VmId, volumes: &[String]) -> Result<()> {
        let json = Json(volumes);
        self.update(
            id,
            "UPDATE vms SET volume_ids = $1, updated_at = $2 WHERE id = $3",
            json,
        )
        .await
    }

    /// A claimed pool VM's steps in the cloud are done.
    pub async fn set_claim_settled(&self, id: VmId) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET claim_settled_at = $1, updated_at = $2 WHERE id = $3",
            Utc::now(),
        )
        .await
    }

    /// A failed launch's server, boot volume and floating IP are gone.
    pub async fn set_released(&self, id: VmId) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET released_at = $1, updated_at = $2 WHERE id = $3",
            Utc::now(),
        )
        .await
    }

    pub async fn set_floating_ip(&self, id: VmId, fip: Option<(&str, &str)>) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            sqlx::query(
                "UPDATE vms SET floating_ip = $1, floating_ip_id = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(fip.map(|f| f.0))
            .bind(fip.map(|f| f.1))
            .bind(Utc::now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub(super) async fn update<'q, T>(&self, id: VmId, sql: &'q str, value: T) -> Result<()>
    where
        T: 'q
            + Send
            + sqlx::Encode<'q, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + sqlx::Encode<'q, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            sqlx::query(sql)
                .bind(value)
                .bind(Utc::now())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
