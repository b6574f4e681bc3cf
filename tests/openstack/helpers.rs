//! A fake OpenStack, an `OpenStackCloud` pointed at it through a real
//! clouds.yaml, and the server spec the provisioner would send.

use crate::fake_openstack::{FakeOpenStack, IMAGE, KEY, POOL};
use stackbinder::cloud::openstack::{Credentials, OpenStackCloud, Tuning};
use stackbinder::cloud::{
    InstallationId, META_INSTANCE, META_LOGIN, META_OWNER, META_REPO, META_VM, ServerSpec,
};
use stackbinder::cloud_init::{BootData, render_boot_data};
use stackbinder::config::CloudConfig;
use stackbinder::domain::VmId;
use std::collections::BTreeMap;
use std::time::Duration;
use tempfile::TempDir;

pub struct Env {
    pub fake: FakeOpenStack,
    pub cloud: OpenStackCloud,
    pub config: CloudConfig,
    pub clouds_yaml: std::path::PathBuf,
    _dir: TempDir,
}

/// Retries and the breaker at test speed.
pub fn quick_tuning() -> Tuning {
    Tuning {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
        retries: 3,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_millis(400),
    }
}

/// A deployment with floating IPs (`cloud.jupyter_access = "floating_ip"`),
/// as the floating IP tests want; `tests/openstack/proxy_mode.rs` sets
/// `proxy`.
pub fn cloud_config() -> CloudConfig {
    CloudConfig {
        backend: stackbinder::config::Backend::Openstack,
        jupyter_access: stackbinder::config::JupyterAccess::FloatingIp,
        cloud: "fake".into(),
        image: IMAGE.into(),
        key_name: Some(KEY.into()),
        floating_ip_pool: Some(POOL.into()),
        ..CloudConfig::default()
    }
}

pub async fn setup() -> Env {
    setup_with(|_| {}, false).await
}

pub async fn setup_with(configure: impl FnOnce(&mut CloudConfig), app_credential: bool) -> Env {
    let fake = FakeOpenStack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clouds_yaml = dir.path().join("clouds.yaml");
    let yaml = if app_credential {
        fake.clouds_yaml_app_credential()
    } else {
        fake.clouds_yaml_password()
    };
    std::fs::write(&clouds_yaml, yaml).unwrap();
    let mut config = cloud_config();
    configure(&mut config);
    let cloud = cloud_for(&config, &clouds_yaml);
    Env {
        fake,
        cloud,
        config,
        clouds_yaml,
        _dir: dir,
    }
}

pub fn cloud_for(config: &CloudConfig, clouds_yaml: &std::path::Path) -> OpenStackCloud {
    OpenStackCloud::new(
        config,
        Credentials::File {
            path: clouds_yaml.to_owned(),
            cloud: "fake".into(),
        },
        quick_tuning(),
    )
}

/// The installation the tests' servers belong to.
pub fn owner() -> InstallationId {
    InstallationId::from_stored("5b1f0c6e2d3a4e8f9a7b6c5d4e3f2a1b".into())
}

/// What the provisioner sends for a launch of `login`.
pub fn spec(config: &CloudConfig, login: &str) -> ServerSpec {
    let vm = VmId::new();
    let data = BootData {
        vm_id: vm,
        callback_url: url::Url::parse("http://127.0.0.1:1/api/vm/callback").unwrap(),
        assignment_url: url::Url::parse("http://127.0.0.1:1/api/vm/assignment").unwrap(),
        callback_secret: "callback-secret".into(),
        jupyter_port: 8888,
        prebuild: Vec::new(),
    };
    ServerSpec {
        name: format!("{}{login}", config.name_prefix),
        image: config.image.clone(),
        flavor: config.flavor.clone(),
        volume_size_gb: config.volume_size_gb.get(),
        delete_volume_on_termination: config.delete_volume_on_termination,
        key_name: config.key_name.clone(),
        security_groups: config.security_groups.clone(),
        network: config.network.clone(),
        user_data: render_boot_data(&data),
        metadata: BTreeMap::from([
            (META_OWNER.into(), "583231".into()),
            (META_LOGIN.into(), login.into()),
            (
                META_REPO.into(),
                "https://github.com/binder-examples/requirements".into(),
            ),
            (META_VM.into(), vm.to_string()),
            (META_INSTANCE.into(), owner().to_string()),
        ]),
        home_volume: None,
        availability_zone: None,
    }
}

/// The `<label>` of the profile `name` on the launch page.
pub fn offer<'a>(page: &'a str, name: &str) -> &'a str {
    let start = page
        .find(&format!("value=\"{name}\""))
        .unwrap_or_else(|| panic!("no profile {name} offered in {page}"));
    let end = page[start..].find("</label>").expect("the offer ends") + start;
    &page[start..end]
}

/// A Jupyter stand-in on 127.0.0.1 under `/user/<login>/`; counts the
/// probes of its `api`.
pub async fn jupyter_stand_in(
    login: &str,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let probes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = probes.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        &format!("/user/{login}/api"),
        axum::routing::get(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "{\"version\": \"2.14.0\"}" }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, probes)
}
