//! `/VM_status` (the page), `/api/vm` (its data as JSON) and
//! `/api/vm/events` (the same data, pushed, with heartbeats).

use super::launch_outlook::{Eta, Outlook};
use super::layout::{Layout, render};
use super::session::{ApiUser, RegisteredUser};
use super::{AppState, WebError};
use crate::config::LaunchConfig;
use crate::domain::{GithubId, Ide, LaunchPath, Phase, Progress, VmState};
use crate::provision::Provisioner;
use crate::store::{EventKind, VmRecord};
use askama::Template;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/VM_status", get(page))
        .route("/api/vm", get(json))
        .route("/api/vm/events", get(events))
}

/// The steps of a launch, in order, as the progress bar shows them.
pub const STEPS: [(&str, &str); 7] = [
    ("requested", "Queued"),
    ("creating", "Server"),
    ("booting", "Boot"),
    ("cloning", "Clone"),
    ("building", "Build"),
    ("starting", "Start"),
    ("ready", "Ready"),
];

/// A VM as its owner sees it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct VmView {
    pub id: String,
    pub state: VmState,
    pub progress: Option<Progress>,
    /// Which of `STEPS` the VM is at.
    #[schema(value_type = String)]
    pub step: &'static str,
    pub percent: u8,
    pub headline: String,
    pub repo: String,
    pub git_ref: String,
    pub url_path: String,
    pub name: String,
    pub address: Option<String>,
    pub jupyter_url: Option<String>,
    /// The launch profile it is made of, by name.
    pub profile: Option<String>,
    /// The interface the launch asked for (`?ide=`), by name.
    pub ide: Option<&'static str>,
    /// Said when the environment does not provide that interface.
    pub ide_missing: Option<String>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub log: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// When the VM will be deleted unless extended.
    pub expires_at: Option<DateTime<Utc>>,
    pub extensions_left: i64,
    pub can_extend: bool,
    pub extension_hours: f64,
    /// Launches ahead of this one while it waits for a free slot.
    pub queue_ahead: Option<i64>,
    /// Said when idle culling is near.
    pub idle_warning: Option<String>,
    pub can_delete: bool,
    /// Nothing will change without the user doing something.
    pub settled: bool,
    /// `cold`: a server booted for this launch; `pool`: a booted VM of the
    /// warm pool, claimed for it.
    pub launch_path: LaunchPath,
    /// The path in words: "from the warm pool" or "booting a new VM".
    #[schema(value_type = String)]
    pub path: &'static str,
    /// The environment is built already: a repository and ref of `[pool]
    /// repos`, on a pool VM, which built it ahead.
    pub prebuilt: bool,
    /// While the launch goes on: "prebuilt: starting Jupyter", or "not
    /// prebuilt: building" (with the estimate: "..., ~3 min").
    pub environment: Option<String>,
    /// While the launch goes on, from the last launches of the repository
    /// on the same path; none without any.
    pub eta: Option<Eta>,
}

impl VmView {
    pub async fn load(
        provisioner: &Provisioner,
        launch: &LaunchConfig,
        vm: &VmRecord,
    ) -> Result<Self, WebError> {
        let store = provisioner.store();
        let log = store.log_tail(vm.id, 40).await?;
        let recent = store.recent_events(vm.id, 60).await?;
        let warnings = recent
            .iter()
            .filter(|e| e.kind == EventKind::Warning)
            .map(|e| e.message.clone())
            .rev()
            .take(3)
            .collect();
        let (step, percent) = step_of(vm);
        let queue_ahead = match vm.state {
            VmState::Requested => Some(store.queue_ahead_of(vm).await?),
            _ => None,
        };
        let extensions_left = (i64::from(launch.max_extensions) - vm.extensions).max(0);
        let Outlook {
            launch_path,
            path,
            prebuilt,
            environment,
            eta,
        } = Outlook::load(store, &provisioner.settings().pool.repos, vm).await?;
        Ok(Self {
            id: vm.id.to_string(),
            state: vm.state,
            progress: vm.progress,
            step,
            percent,
            headline: headline(vm).to_owned(),
            repo: vm.repo.to_string(),
            git_ref: vm.git_ref.to_string(),
            url_path: vm.url_path.to_string(),
            name: vm.name.clone(),
            address: vm.public_address().map(str::to_owned),
            jupyter_url: provisioner.jupyter_url(vm).map(String::from),
            profile: vm.profile.as_ref().map(ToString::to_string),
            ide: vm.ide.map(Ide::as_str),
            ide_missing: ide_missing(vm),
            error: (vm.state == VmState::Failed)
                .then(|| vm.last_error.clone())
                .flatten(),
            warnings,
            log: log.into_iter().map(|e| e.message).collect(),
            created_at: vm.created_at,
            expires_at: vm.expires_at.filter(|_| vm.state.can_delete()),
            extensions_left,
            can_extend: extensions_left > 0 && vm.state.can_delete(),
            extension_hours: launch.extension_hours,
            queue_ahead,
            idle_warning: idle_warning(vm, launch.idle_timeout_minutes),
            can_delete: vm.state.can_delete(),
            settled: matches!(
                vm.state,
                VmState::Ready | VmState::Failed | VmState::Deleted
            ),
            launch_path,
            path,
            prebuilt,
            environment,
            eta,
        })
    }

    /// Index of the current step, for the template's progress list.
    pub fn step_index(&self) -> usize {
        STEPS
            .iter()
            .position(|(key, _)| *key == self.step)
            .unwrap_or(0)
    }
}

/// Warn once the VM has been idle for three quarters of the limit.
/// What to say when the VM's Jupyter lacks the interface asked for.
fn ide_missing(vm: &VmRecord) -> Option<String> {
    let ide = vm.ide.filter(|_| vm.ide_missing_at.is_some())?;
    Some(format!(
        "This environment does not provide {label}: its Jupyter has no /{path}, \
         so the link opens Jupyter's default interface instead. To use {label}, \
         add it to the repository's environment (its jupyter-server-proxy entry).",
        label = ide.label(),
        path = ide.path(),
    ))
}

fn idle_warning(vm: &VmRecord, limit_minutes: u32) -> Option<String> {
    if limit_minutes == 0 || vm.state != VmState::Ready {
        return None;
    }
    let last = vm.last_used()?;
    let idle = (Utc::now() - last).num_minutes();
    if idle * 4 < i64::from(limit_minutes) * 3 {
        return None;
    }
    let deadline = last + chrono::Duration::minutes(i64::from(limit_minutes));
    Some(format!(
        "Your Jupyter has not been used since {}: the VM will be deleted at about {} unless you use it.",
        last.format("%H:%M UTC"),
        deadline.format("%H:%M UTC")
    ))
}

fn step_of(vm: &VmRecord) -> (&'static str, u8) {
    match (vm.state, vm.progress) {
        (VmState::Requested, _) => ("requested", 5),
        (VmState::Creating, _) => ("creating", 12),
        (VmState::Booting, _) => ("booting", 25),
        (VmState::Building, _) => {
            let phase = vm.script_phase();
            let percent = match phase {
                Phase::Cloning => 40,
                Phase::Building => 60,
                Phase::Starting => 85,
            };
            (phase.as_str(), percent)
        }
        (VmState::Ready, _) => ("ready", 100),
        (VmState::Failed, p) => (
            match p {
                Some(_) => vm.script_phase().as_str(),
                // Running, but the launch script never reported.
                None if vm.address.is_some() => "cloning",
                None if vm.server_id.is_some() => "booting",
                None => "creating",
            },
            100,
        ),
        (VmState::Deleting, _) => ("requested", 50),
        (VmState::Deleted, _) => ("requested", 100),
    }
}

fn headline(vm: &VmRecord) -> &'static str {
    match (vm.state, vm.progress) {
        (VmState::Requested, _) => "Your launch is queued",
        (VmState::Creating, _) => "Asking the cloud for a server",
        (VmState::Booting, _) => "The server is booting",
        (VmState::Building, None) => "The server is up; the launch script is starting",
        (VmState::Building, Some(Progress::Cloning)) => "Cloning the repository",
        (VmState::Building, Some(Progress::Building)) => {
            "Building the environment with repo2docker (this can take a while)"
        }
        (VmState::Building, Some(Progress::Starting)) => "Starting Jupyter",
        (VmState::Building, Some(_)) => "Checking that Jupyter answers",
        (VmState::Ready, _) => "Your Jupyter server is ready",
        (VmState::Failed, _) => "The launch failed",
        (VmState::Deleting, _) => "Deleting the server, its volume and its address",
        (VmState::Deleted, _) => "Your VM has been deleted",
    }
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    layout: Layout,
    vm: VmView,
    /// The owner's home volume, if they have one.
    storage: Option<super::storage_view::StorageView>,
    steps: &'static [(&'static str, &'static str)],
}

async fn page(State(state): State<AppState>, user: RegisteredUser) -> Result<Response, WebError> {
    let Some(vm) = state.provisioner.current_vm(user.user.github_id).await? else {
        return Ok(axum::response::Redirect::to("/").into_response());
    };
    let vm = VmView::load(&state.provisioner, &state.config.launch, &vm).await?;
    Ok(render(StatusPage {
        layout: user.visitor.layout(&state, "Your VM"),
        vm,
        storage: super::storage_view::load(&state, user.user.github_id).await?,
        steps: &STEPS,
    })?
    .into_response())
}

async fn json(State(state): State<AppState>, ApiUser(user): ApiUser) -> Response {
    match state.provisioner.current_vm(user.user.github_id).await {
        Ok(Some(vm)) => match VmView::load(&state.provisioner, &state.config.launch, &vm).await {
            Ok(view) => Json(view).into_response(),
            Err(e) => e.into_json(),
        },
        Ok(None) => WebError::NotFound.into_json(),
        Err(e) => WebError::from(e).into_json(),
    }
}

/// How often the event stream looks for changes, and for how long it runs
/// before the browser reconnects (EventSource does so on its own).
const EVENTS_POLL: Duration = Duration::from_millis(700);
const EVENTS_MAX: Duration = Duration::from_secs(30 * 60);
const HEARTBEAT: Duration = Duration::from_secs(15);

async fn events(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let owner = user.user.github_id;
    let provisioner = state.provisioner.clone();
    let launch = state.config.launch.clone();
    let stream =
        changes(provisioner, launch, owner).take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}

/// Send the VM's view whenever it changes.
pub(super) fn changes(
    provisioner: Provisioner,
    launch: LaunchConfig,
    owner: GithubId,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let started = tokio::time::Instant::now();
    futures_util::stream::unfold(None::<VmView>, move |last| {
        let provisioner = provisioner.clone();
        let launch = launch.clone();
        async move {
            loop {
                if started.elapsed() > EVENTS_MAX {
                    return None;
                }
                let view = match provisioner.current_vm(owner).await {
                    Ok(Some(vm)) => VmView::load(&provisioner, &launch, &vm).await.ok(),
                    _ => None,
                };
                if let Some(view) = view
                    && last.as_ref() != Some(&view)
                {
                    let event = Event::default()
                        .event("status")
                        .json_data(&view)
                        .unwrap_or_else(|_| Event::default().comment("unserializable"));
                    return Some((Ok(event), Some(view)));
                }
                tokio::time::sleep(EVENTS_POLL).await;
            }
        }
    })
}
