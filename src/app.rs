//! Wiring: the store, the cloud, the provisioner and the router, built the
//! same way for `serve`, `demo` and the tests.

use crate::access::Access;
use crate::cloud::Cloud;
use crate::cloud::openstack::OpenStackCloud;
use crate::cloud::simulated::{SimulatedCloud, Timings};
use crate::config::{Backend, Config, ConfigError};
use crate::github::Github;
use crate::lease;
use crate::provision::{self, Provisioner};
use crate::store::Store;
use crate::web::{self, AppState, GuessGuard, LoginMode, SessionRows, Tarpit};
use anyhow::Context;
use axum::serve::ListenerExt as _;
use secrecy::SecretString;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_sessions::ExpiredDeletion;
use url::Url;

/// Looks for the server behind a lost `POST /servers` answer before making
/// another: one look per driver step, after waits of 1, 2, 4 and 8 poll
/// intervals.
const CREATE_LOOKUPS: u32 = 4;

/// How many floating IPs the simulated cloud's pool holds.
const SIMULATED_FLOATING_IPS: usize = 64;

pub struct Options {
    /// Who logs people in: the demo's form that takes any name (`demo`,
    /// tests), else GitHub (`serve`). The running server's `LoginMode`
    /// holds GitHub's client, which needs the public URL known only here.
    pub demo_login: bool,
    /// Use this cloud instead of the one the configuration names (tests).
    pub cloud: Option<Arc<dyn Cloud>>,
    /// Run the provisioner's driver in the background while this replica
    /// holds the driver lease (tests may step it themselves).
    pub drive_in_background: bool,
    /// Derive `server.public_url` from the address actually bound (demo,
    /// tests: the port may be 0).
    pub public_url_from_bind: bool,
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    drive_in_background: bool,
}

/// The cloud the configuration names.
pub fn cloud_from_config(config: &Config) -> Arc<dyn Cloud> {
    match config.cloud.backend {
        Backend::Simulated => Arc::new(
            SimulatedCloud::new(
                Timings::from_config(&config.simulator),
                SIMULATED_FLOATING_IPS,
            )
            .with_jupyter_command(config.simulator.jupyter_command.clone()),
        ),
        Backend::Openstack => Arc::new(
            OpenStackCloud::from_config(&config.cloud)
                .with_jupyter_port(config.launch.jupyter_port.get()),
        ),
    }
}

/// The provisioner for `config`, for commands that need no web server.
pub async fn provisioner(config: &Config) -> anyhow::Result<Provisioner> {
    let store = Store::connect(&config.database.url).await?;
    let installation = store.installation_id().await?;
    Ok(Provisioner::new(
        store,
        cloud_from_config(config),
        settings(config),
        installation,
    ))
}

pub(crate) fn settings(config: &Config) -> provision::Settings {
    provision::Settings {
        public_url: config.server.public_url.clone(),
        callback_url: config.server.callback_base().clone(),
        cloud: config.cloud.clone(),
        launch: config.launch.clone(),
        profiles: config.profiles.clone(),
        storage: config.storage.clone(),
        pool: config.pool.clone(),
        poll_interval: config.provision.poll_interval(),
        concurrency: config.provision.concurrency.get(),
        reconcile_interval: config.provision.reconcile_interval(),
        orphan_grace: config.provision.orphan_grace(),
        idle_check_interval: config.provision.idle_check_interval(),
        delete_retry: config.provision.delete_retry(),
        delete_give_up: config.provision.delete_give_up(),
        build_timeout: config.image.build_timeout(),
        create_lookups: CREATE_LOOKUPS,
        assignment_hold: config.provision.assignment_hold(),
    }
}

impl Application {
    pub async fn build(mut config: Config, options: Options) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.server.bind)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (server.bind): is another program using that port? \
                 Pick another port, or 0 for any free one",
                    config.server.bind
                )
            })?;
        let bound = listener.local_addr()?;
        if options.public_url_from_bind {
            config.server.public_url = Url::parse(&format!("http://{bound}/"))?;
        }
        let secrets = config.secrets()?;
        if let Some(warning) = web::forwarded_for_warning(&config.server) {
            tracing::warn!("{warning}");
        }
        let login_mode = if options.demo_login {
            LoginMode::Demo
        } else {
            if config.github.client_id.trim().is_empty() || secrets.github_client_secret.is_none() {
                return Err(ConfigError {
                        key: "github.client_id".into(),
                        problem: "GitHub login needs an OAuth app's client id and client secret".into(),
                        fix: format!(
                            "create an OAuth app on GitHub with the callback URL {}, then set \
                             github.client_id and STACKBINDER_GITHUB__CLIENT_SECRET (or github.client_secret_file)",
                            config.server.public_url.join("login/callback")?
                        ),
                    }
                    .into());
            }
            LoginMode::Github(Box::new(Github::new(
                &config.github,
                secrets.github_client_secret.as_ref(),
                &config.server.public_url,
                !config.registration.allowed_orgs.is_empty(),
            )))
        };
        let store = Store::connect(&config.database.url).await?;
        SessionRows::new(&store)
            .migrate()
            .await
            .context("cannot create the session table")?;
        let cloud = options.cloud.unwrap_or_else(|| cloud_from_config(&config));
        let installation = store.installation_id().await?;
        let provisioner = Provisioner::new(store.clone(), cloud, settings(&config), installation);
        let guesses = Arc::new(GuessGuard::new(
            config.registration.wrong_guesses.get(),
            config.registration.guess_window(),
        ));
        let access = Arc::new(
            Access::load(&config, &provisioner)
                .await
                .context("cannot read the admins and blocked users")?,
        );
        let api_limit = Arc::new(crate::web::ApiRateLimit::new(
            config.api.requests_per_minute,
        ));
        let tarpit = Arc::new(Tarpit::new(config.server.lockout_hold()));
        let state = AppState {
            access,
            config: Arc::new(config),
            store,
            provisioner,
            login_mode,
            registration_secret: secrets.registration_secret.map(Arc::new),
            guesses,
            tarpit,
            api_limit,
            shutdown: CancellationToken::new(),
            proxy: crate::proxy::Proxy::default(),
        };
        Ok(Self {
            listener,
            state,
            drive_in_background: options.drive_in_background,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn public_url(&self) -> &Url {
        &self.state.config.server.public_url
    }

    pub fn provisioner(&self) -> Provisioner {
        self.state.provisioner.clone()
    }

    pub fn registration_secret(&self) -> Option<Arc<SecretString>> {
        self.state.registration_secret.clone()
    }

    /// Serve until `shutdown` completes, then stop the driver after its
    /// current step and close the open event streams.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = self.state.shutdown.clone();
        // The lease outlives the work it gates: it is let go only once the
        // driver finished its last step.
        let lease_stop = CancellationToken::new();
        let provisioner = self.state.provisioner.clone();
        let leadership = provisioner.leadership().clone();
        let lease = tokio::spawn(lease::keep_leadership(
            self.state.store.clone(),
            leadership.clone(),
            self.state.config.server.lease(),
            provisioner.metrics().clone(),
            lease_stop.clone(),
        ));
        let drive = self.drive_in_background;
        let background = tokio::spawn(lease::while_leader(
            leadership,
            stop.clone(),
            move |_fence, cancel| provisioner.clone().lead(drive, cancel),
        ));
        let sessions = SessionRows::new(&self.state.store);
        let session_cleanup = tokio::spawn(
            sessions.continuously_delete_expired(tokio::time::Duration::from_secs(600)),
        );
        let activity = tokio::spawn(flush_activity(self.state.provisioner.clone(), stop.clone()));
        // Every replica holds VMs' requests for their jobs, leader or not.
        let assignments = tokio::spawn(
            self.state
                .provisioner
                .clone()
                .relay_assignments(stop.clone()),
        );
        let router = web::router(self.state);
        let on_signal = stop.clone();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        // Small writes go out at once: a WebSocket message or a response
        // head must not wait for the peer's delayed acknowledgement
        // (Nagle), which is what a proxy in the middle would add.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = shutdown => {}
                    _ = on_signal.cancelled() => {}
                }
                on_signal.cancel();
            })
            .await
            .context("the HTTP server failed")?;
        stop.cancel();
        session_cleanup.abort();
        let _ = activity.await;
        let _ = assignments.await;
        let _ = background.await;
        lease_stop.cancel();
        let _ = lease.await;
        Ok(())
    }
}

/// How often the proxy's record of activity is written to the store.
const ACTIVITY_FLUSH_INTERVAL: Duration = Duration::from_secs(30);

/// Write the proxy's activity to the store now and then, and once more at
/// shutdown, so culling after a restart (and `vm show`) sees it. Every
/// replica does, leader or not: each proxies its own share of the users.
async fn flush_activity(provisioner: Provisioner, stop: CancellationToken) {
    let mut every = tokio::time::interval(ACTIVITY_FLUSH_INTERVAL);
    loop {
        let stopping = tokio::select! {
            _ = every.tick() => false,
            () = stop.cancelled() => true,
        };
        if let Err(e) = provisioner.activity().flush(provisioner.store()).await {
            tracing::warn!(error = %e, "cannot record the VMs' activity");
        }
        if stopping {
            return;
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        _ = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
