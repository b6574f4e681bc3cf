use super::events::{EventKind, append};
use super::{Result, Store, StoreError, is_unique_violation};
use crate::domain::{GithubId, LaunchRequest, LogLine, Progress, VmId, VmState};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VmRecord {
    pub id: VmId,
    pub owner_id: GithubId,
    pub owner_login: String,
    pub name: String,
    pub repo: String,
    pub git_ref: String,
    pub url_path: String,
    pub state: VmState,
    pub progress: Option<Progress>,
    /// The phase the VM was in when it reported `failed`.
    pub failed_during: Option<Progress>,
    pub server_id: Option<String>,
    pub address: Option<String>,
    pub floating_ip: Option<String>,
    pub floating_ip_id: Option<String>,
    pub volume_ids: Json<Vec<String>>,
    pub port: Option<u16>,
    #[serde(skip)]
    pub jupyter_token: String,
    #[serde(skip)]
    pub secret_hash: Option<Vec<u8>>,
    pub last_seq: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub phase_started_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub extensions: i64,
    /// What the VM's Jupyter last reported as its last activity.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// When a failed launch's cloud resources were torn down.
    pub released_at: Option<DateTime<Utc>>,
    /// When the proxy last saw it used (flushed now and then).
    pub proxied_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
impl VmRecord {
    /// A record for unit tests: user 1 (`ada`), launched now, in `state`,
    /// with nothing in the cloud yet. Tests change what they look at.
    pub fn example(state: VmState) -> Self {
        let now = Utc::now();
        Self {
            id: VmId::new(),
            owner_id: GithubId(1),
            owner_login: "ada".into(),
            name: "binder-ada".into(),
            repo: "https://github.com/a/b".into(),
            git_ref: "HEAD".into(),
            url_path: String::new(),
            state,
            progress: None,
            failed_during: None,
            server_id: None,
            address: None,
            floating_ip: None,
            floating_ip_id: None,
            volume_ids: Json(Vec::new()),
            port: None,
            jupyter_token: "t".into(),
            secret_hash: None,
            last_seq: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
            phase_started_at: now,
            ready_at: None,
            deleted_at: None,
            expires_at: None,
            extensions: 0,
            last_activity_at: None,
            released_at: None,
            proxied_at: None,
        }
    }
}

impl VmRecord {
    /// The phase of the launch script the VM is in, or was in when it
    /// reported a failure: `cloning`, `building` or `starting`.
    pub fn script_phase(&self) -> &'static str {
        let progress = match self.progress {
            Some(Progress::Failed) => self.failed_during,
            other => other,
        };
        match progress {
            None | Some(Progress::Cloning) => "cloning",
            Some(Progress::Building) | Some(Progress::Failed) => "building",
            Some(Progress::Starting) | Some(Progress::Ready) => "starting",
        }
    }

    /// The latest use known: through the proxy, or as Jupyter reported it.
    /// (`None` orders before any time, so `max` is the later one.)
    pub fn last_used(&self) -> Option<DateTime<Utc>> {
        self.last_activity_at.max(self.proxied_at)
    }

    /// The address users reach the VM at: its floating IP, else its own.
    pub fn public_address(&self) -> Option<&str> {
        self.floating_ip.as_deref().or(self.address.as_deref())
    }
}

pub struct NewVm<'a> {
    pub owner: GithubId,
    pub name: &'a str,
    pub request: &'a LaunchRequest,
    pub jupyter_token: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// What a progress report from a VM did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    Applied,
    /// An old or replayed report (sequence number not above the last one).
    Stale,
    /// The VM is not building any more (deleting, failed, ready...).
    Refused,
}

/// Log lines kept per VM (each at most `events::MAX_EVENT_LEN` bytes), so a
/// chatty or hostile VM cannot fill the database.
pub const MAX_LOG_LINES_PER_VM: i64 = 5000;

const SELECT_VM: &str = "SELECT vms.*, users.login AS owner_login FROM vms JOIN users ON users.github_id = vms.owner_id";

impl Store {
    /// Record a launch. The partial unique index makes a second live VM for
    /// the same owner impossible, however many requests race.
    pub async fn insert_vm(&self, new: NewVm<'_>) -> Result<VmRecord> {
        let id = VmId::new();
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO vms (id, owner_id, name, repo, git_ref, url_path, state, jupyter_token,
                              created_at, updated_at, phase_started_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'requested', ?7, ?8, ?8, ?8, ?9)",
        )
        .bind(id)
        .bind(new.owner)
        .bind(new.name)
        .bind(new.request.repo.as_str())
        .bind(new.request.git_ref.as_str())
        .bind(new.request.url_path.as_str())
        .bind(new.jupyter_token)
        .bind(now)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyHasVm),
            other => other?,
        };
        let message = format!(
            "launch requested: {} at {}{}",
            new.request.repo,
            new.request.git_ref,
            if new.request.url_path.as_str().is_empty() {
                String::new()
            } else {
                format!(", opening /{}", new.request.url_path)
            }
        );
        append(&mut *tx, id, EventKind::State, &message).await?;
        tx.commit().await?;
        Ok(self.vm(id).await?.expect("the VM was just inserted"))
    }

    pub async fn vm(&self, id: VmId) -> Result<Option<VmRecord>> {
        Ok(sqlx::query_as(&format!("{SELECT_VM} WHERE vms.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The hash of a VM's callback secret: `None` for an unknown VM, `Some(None)`
    /// before its server was asked for. One lookup by primary key, as a
    /// callback is authenticated before anything else is done for it.
    pub async fn vm_secret_hash(&self, id: VmId) -> Result<Option<Option<Vec<u8>>>> {
        Ok(
            sqlx::query_scalar("SELECT secret_hash FROM vms WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The owner's VM that is not deleted, if any.
    pub async fn live_vm_of(&self, owner: GithubId) -> Result<Option<VmRecord>> {
        Ok(sqlx::query_as(&format!(
            "{SELECT_VM} WHERE vms.owner_id = ? AND vms.state <> 'deleted'"
        ))
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// All VMs of an owner, newest first.
    pub async fn list_vms_of(&self, owner: GithubId) -> Result<Vec<VmRecord>> {
        Ok(sqlx::query_as(&format!(
            "{SELECT_VM} WHERE vms.owner_id = ? ORDER BY vms.created_at DESC"
        ))
        .bind(owner)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many VMs are in each state (deleted ones excluded).
    pub async fn vm_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT state, COUNT(*) FROM vms WHERE state <> 'deleted' GROUP BY state ORDER BY state",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every VM that is not deleted, oldest first: what the driver watches.
    pub async fn live_vms(&self) -> Result<Vec<VmRecord>> {
        Ok(sqlx::query_as(&format!(
            "{SELECT_VM} WHERE vms.state <> 'deleted' ORDER BY vms.created_at, vms.id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many launches wait before this one in the queue.
    pub async fn queue_ahead_of(&self, vm: &VmRecord) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM vms WHERE state = 'requested' AND (created_at < ?1 OR (created_at = ?1 AND id < ?2))",
        )
        .bind(vm.created_at)
        .bind(vm.id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Push the expiry back by `by`, if the VM has extensions left.
    /// Compare-and-set on the count, so two clicks extend once each at most.
    pub async fn extend(
        &self,
        vm: &VmRecord,
        max_extensions: u32,
        by: chrono::Duration,
    ) -> Result<bool> {
        if vm.extensions >= i64::from(max_extensions) || !vm.state.can_delete() {
            return Ok(false);
        }
        let now = Utc::now();
        let base = vm.expires_at.map_or(now, |t| t.max(now));
        let new_expiry = base + by;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE vms SET expires_at = ?1, extensions = extensions + 1, updated_at = ?2
             WHERE id = ?3 AND extensions = ?4 AND state NOT IN ('deleting', 'deleted')",
        )
        .bind(new_expiry)
        .bind(now)
        .bind(vm.id)
        .bind(vm.extensions)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            let message = format!(
                "expiry extended to {}",
                new_expiry.format("%Y-%m-%d %H:%M UTC")
            );
            append(&mut *tx, vm.id, EventKind::State, &message).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    pub async fn set_expiry(&self, id: VmId, expires_at: DateTime<Utc>) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET expires_at = ?1, updated_at = ?2 WHERE id = ?3",
            expires_at,
        )
        .await
    }

    pub async fn set_last_activity(&self, id: VmId, at: DateTime<Utc>) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET last_activity_at = ?1, updated_at = ?2 WHERE id = ?3",
            at,
        )
        .await
    }

    /// VMs the provisioner still has to move forward, oldest first.
    pub async fn vms_needing_work(&self) -> Result<Vec<VmRecord>> {
        Ok(sqlx::query_as(&format!(
            "{SELECT_VM} WHERE vms.state IN ('requested', 'creating', 'booting', 'building', 'deleting')
             ORDER BY vms.created_at"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn list_vms(&self, include_deleted: bool) -> Result<Vec<VmRecord>> {
        Ok(sqlx::query_as(&format!(
            "{SELECT_VM} WHERE ?1 OR vms.state <> 'deleted' ORDER BY vms.created_at DESC"
        ))
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Move a VM from `from` to `to` if nobody moved it meanwhile; records
    /// the event in the same transaction. Returns whether it moved.
    pub async fn transition(
        &self,
        id: VmId,
        from: VmState,
        to: VmState,
        message: &str,
    ) -> Result<bool> {
        let now = Utc::now();
        let error = (to == VmState::Failed).then_some(message);
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE vms SET state = ?1, updated_at = ?2, phase_started_at = ?2,
                    last_error = COALESCE(?3, last_error),
                    ready_at = CASE WHEN ?1 = 'ready' THEN ?2 ELSE ready_at END,
                    deleted_at = CASE WHEN ?1 = 'deleted' THEN ?2 ELSE deleted_at END
             WHERE id = ?4 AND state = ?5",
        )
        .bind(to)
        .bind(now)
        .bind(error)
        .bind(id)
        .bind(from)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if moved {
            let kind = if to == VmState::Failed {
                EventKind::Error
            } else {
                EventKind::State
            };
            append(&mut *tx, id, kind, &format!("{to}: {message}")).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Ask for deletion from any state but deleting/deleted.
    pub async fn request_delete(&self, id: VmId, why: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE vms SET state = 'deleting', updated_at = ?1, phase_started_at = ?1
             WHERE id = ?2 AND state NOT IN ('deleting', 'deleted')",
        )
        .bind(Utc::now())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if moved {
            append(&mut *tx, id, EventKind::State, &format!("deleting: {why}")).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Store the hash of the VM's callback secret before the secret leaves
    /// for the cloud, so a server found after a crash still authenticates.
    pub async fn set_secret_hash(&self, id: VmId, hash: &[u8]) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET secret_hash = ?1, updated_at = ?2 WHERE id = ?3",
            hash,
        )
        .await
    }

    pub async fn set_server_id(&self, id: VmId, server_id: &str) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET server_id = ?1, updated_at = ?2 WHERE id = ?3",
            server_id,
        )
        .await
    }

    pub async fn set_address(&self, id: VmId, address: &str) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET address = ?1, updated_at = ?2 WHERE id = ?3",
            address,
        )
        .await
    }

    pub async fn set_volume_ids(&self, id: VmId, volumes: &[String]) -> Result<()> {
        let json = Json(volumes);
        self.update(
            id,
            "UPDATE vms SET volume_ids = ?1, updated_at = ?2 WHERE id = ?3",
            json,
        )
        .await
    }

    /// A failed launch's server, boot volume and floating IP are gone.
    pub async fn set_released(&self, id: VmId) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET released_at = ?1, updated_at = ?2 WHERE id = ?3",
            Utc::now(),
        )
        .await
    }

    pub async fn set_floating_ip(&self, id: VmId, fip: Option<(&str, &str)>) -> Result<()> {
        sqlx::query(
            "UPDATE vms SET floating_ip = ?1, floating_ip_id = ?2, updated_at = ?3 WHERE id = ?4",
        )
        .bind(fip.map(|f| f.0))
        .bind(fip.map(|f| f.1))
        .bind(Utc::now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn update<'q, T>(&self, id: VmId, sql: &'q str, value: T) -> Result<()>
    where
        T: 'q + Send + sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        sqlx::query(sql)
            .bind(value)
            .bind(Utc::now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Apply a progress report from the VM: only while it is building, only
    /// forward, only if newer than the last one; log lines are appended.
    pub async fn apply_callback(
        &self,
        id: VmId,
        seq: i64,
        progress: Option<Progress>,
        port: Option<u16>,
        log: &[LogLine],
    ) -> Result<CallbackOutcome> {
        // IMMEDIATE: the transaction reads before it writes. A deferred one
        // would take the write lock only at its first write, and SQLite
        // answers that upgrade with "database is locked" at once, without
        // the busy timeout, whenever another connection writes meanwhile:
        // under a class start, reports failed by the dozen that way.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<(VmState, Option<Progress>, i64)> =
            sqlx::query_as("SELECT state, progress, last_seq FROM vms WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((state, current_progress, last_seq)) = current else {
            return Ok(CallbackOutcome::Refused);
        };
        // `creating` too: a server whose creation answer was lost (and not
        // yet adopted) is already running and reporting.
        if !matches!(
            state,
            VmState::Creating | VmState::Booting | VmState::Building
        ) {
            return Ok(CallbackOutcome::Refused);
        }
        if seq <= last_seq {
            return Ok(CallbackOutcome::Stale);
        }
        let now = Utc::now();
        sqlx::query("UPDATE vms SET last_seq = ?1, updated_at = ?2 WHERE id = ?3")
            .bind(seq)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let forward = match (current_progress, progress) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(Progress::Failed), Some(_)) => false,
            (Some(old), Some(new)) => new > old,
        };
        // The lines of a report that moves the phase forward are always
        // kept (there are at most five such reports): they say why a
        // launch failed. The others stop at the cap.
        let kept = if forward {
            log.len()
        } else {
            let stored: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM vm_events WHERE vm_id = ? AND kind = 'log'",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let room = usize::try_from(MAX_LOG_LINES_PER_VM - stored).unwrap_or(0);
            if log.len() > room && room > 0 {
                append(
                    &mut *tx,
                    id,
                    EventKind::Warning,
                    &format!(
                        "the VM sent more than {MAX_LOG_LINES_PER_VM} log lines; \
                         further lines are not kept, but its progress still is"
                    ),
                )
                .await?;
            }
            log.len().min(room)
        };
        for line in &log[..kept] {
            append(&mut *tx, id, EventKind::Log, line.as_str()).await?;
        }
        if let (true, Some(progress)) = (forward, progress) {
            let failed_during = (progress == Progress::Failed)
                .then_some(current_progress)
                .flatten();
            sqlx::query(
                "UPDATE vms SET progress = ?1, phase_started_at = ?2, port = COALESCE(?3, port),
                        failed_during = ?4
                 WHERE id = ?5",
            )
            .bind(progress)
            .bind(now)
            .bind(port)
            .bind(failed_during)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            append(
                &mut *tx,
                id,
                EventKind::State,
                &format!("the VM reports: {progress}"),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(CallbackOutcome::Applied)
    }
}
