//! The dev cloud of `scripts/openstack-dev.sh`: where its clouds.yaml is,
//! the names it creates, a stackbinder configured for it, and a plain REST
//! client (its own token, its own catalog lookup) to see what the real
//! services hold — deliberately not stackbinder's OpenStack code, which is
//! what is under test.

use serde_json::{Value, json};
use stackbinder::cloud::openstack::{Credentials, OpenStackCloud, Tuning};
use stackbinder::config::{Backend, CloudConfig, Config, JupyterAccess};
use std::num::NonZero;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// Set by `scripts/openstack-dev.sh env`. (Not `STACKBINDER_*`: those are
/// configuration keys, and stackbinder refuses unknown ones.)
pub const CLOUDS_VAR: &str = "OPENSTACK_DEV_CLOUDS_YAML";
/// The non-admin entry stackbinder uses, and the admin one the tests use
/// to look and to change quotas (both scoped to the stackbinder project).
pub const CLOUD: &str = "stackbinder-dev";
pub const ADMIN_CLOUD: &str = "stackbinder-dev-admin";
/// What `scripts/openstack-dev/setup_cloud.py` creates.
pub const IMAGE: &str = "stackbinder-dev-snapshot";
pub const FLAVOR: &str = "sb.small";
pub const KEY: &str = "stackbinder-dev";
pub const NETWORK: &str = "stackbinder-net";
pub const POOL: &str = "public";
/// Nova microversion of the tests' own calls: 2.47 shows the flavor's
/// name, 2.3 the user data and delete_on_termination.
const NOVA_VERSION: &str = "compute 2.79";
/// Marks the tests' own requests in the services' request logs.
pub const USER_AGENT: &str = "stackbinder-conformance";

/// The clouds.yaml of the running dev cloud; a loud failure without it.
pub fn clouds_yaml() -> PathBuf {
    match std::env::var_os(CLOUDS_VAR) {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{CLOUDS_VAR}={} does not exist: is the dev cloud up? (scripts/openstack-dev.sh up)",
                path.display()
            );
            path
        }
        _ => panic!(
            "the conformance tests need a real OpenStack: run `scripts/openstack-dev.sh up`, then \
             `eval \"$(scripts/openstack-dev.sh env)\"` (it sets {CLOUDS_VAR})"
        ),
    }
}

/// One test at a time: they share the project and its quotas.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The `[cloud]` section for the dev cloud.
pub fn cloud_config() -> CloudConfig {
    CloudConfig {
        backend: Backend::Openstack,
        cloud: CLOUD.into(),
        image: IMAGE.into(),
        flavor: FLAVOR.into(),
        volume_size_gb: NonZero::<u32>::MIN,
        key_name: Some(KEY.into()),
        network: Some(NETWORK.into()),
        floating_ip_pool: Some(POOL.into()),
        // The floating-IP deployment; tests/conformance/proxy_mode.rs sets
        // the proxy.
        jupyter_access: JupyterAccess::FloatingIp,
        name_prefix: "sbconf-".into(),
        ..CloudConfig::default()
    }
}

/// The environment that gives the `stackbinder` binary the same settings.
pub fn cloud_env() -> Vec<(String, String)> {
    let c = cloud_config();
    vec![
        (
            "OS_CLIENT_CONFIG_FILE".into(),
            clouds_yaml().display().to_string(),
        ),
        ("STACKBINDER_CLOUD__BACKEND".into(), "openstack".into()),
        ("STACKBINDER_CLOUD__CLOUD".into(), c.cloud),
        ("STACKBINDER_CLOUD__IMAGE".into(), c.image),
        ("STACKBINDER_CLOUD__FLAVOR".into(), c.flavor),
        ("STACKBINDER_CLOUD__VOLUME_SIZE_GB".into(), "1".into()),
        ("STACKBINDER_CLOUD__KEY_NAME".into(), KEY.into()),
        ("STACKBINDER_CLOUD__NETWORK".into(), NETWORK.into()),
        ("STACKBINDER_CLOUD__FLOATING_IP_POOL".into(), POOL.into()),
        (
            "STACKBINDER_CLOUD__JUPYTER_ACCESS".into(),
            "floating_ip".into(),
        ),
        ("STACKBINDER_CLOUD__NAME_PREFIX".into(), c.name_prefix),
    ]
}

/// A full configuration (fresh database in `dir`) on the dev cloud.
pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::defaults();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.database.url = format!("sqlite://{}", dir.join("stackbinder.db").display());
    config.provision.poll_interval_ms = NonZero::new(500).unwrap();
    config.cloud = cloud_config();
    config
}

/// stackbinder's OpenStack backend on the dev cloud's non-admin entry.
pub fn backend(config: &CloudConfig) -> OpenStackCloud {
    OpenStackCloud::new(
        config,
        Credentials::File {
            path: clouds_yaml(),
            cloud: CLOUD.into(),
        },
        Tuning::default(),
    )
}

/// A REST client for one entry of the clouds.yaml.
#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    token: String,
    pub project_id: String,
    catalog: Value,
}

impl Rest {
    pub async fn connect(entry: &str) -> Self {
        let text = std::fs::read_to_string(clouds_yaml()).unwrap();
        let yaml: Value = serde_yaml_ng::from_str(&text).unwrap();
        let auth = &yaml["clouds"][entry]["auth"];
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": auth["username"], "password": auth["password"],
                "domain": {"name": auth["user_domain_name"]}}}},
            "scope": {"project": {"name": auth["project_name"],
                "domain": {"name": auth["project_domain_name"]}}}}});
        let url = format!(
            "{}/auth/tokens",
            auth["auth_url"].as_str().unwrap().trim_end_matches('/')
        );
        let r = http.post(url).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "keystone: {}", r.status());
        let token = r.headers()["x-subject-token"].to_str().unwrap().to_owned();
        let v: Value = r.json().await.unwrap();
        Self {
            http,
            token,
            project_id: v["token"]["project"]["id"].as_str().unwrap().to_owned(),
            catalog: v["token"]["catalog"].clone(),
        }
    }

    pub fn endpoint(&self, kind: &str) -> String {
        let service = self
            .catalog
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in the catalog"));
        let e = service["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["interface"] == "public")
            .unwrap();
        e["url"].as_str().unwrap().trim_end_matches('/').to_owned()
    }

    /// `kind` is a catalog type; `path` starts with '/'. Returns the
    /// status and the JSON body (Null when empty).
    pub async fn send(
        &self,
        method: reqwest::Method,
        kind: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.send_with(method, kind, path, body, &[]).await
    }

    /// `send` with more headers (Neutron's `If-Match`, say).
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        kind: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, String)],
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.endpoint(kind));
        let mut request = self
            .http
            .request(method, url)
            .header("X-Auth-Token", &self.token);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if kind == "compute" {
            // Cinder answers 400 to a header naming another service.
            request = request.header("OpenStack-API-Version", NOVA_VERSION);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, kind: &str, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, kind, path, None).await;
        assert_eq!(status, 200, "GET {kind} {path}: {body}");
        body
    }

    /// 404 once the thing is gone.
    pub async fn exists(&self, kind: &str, path: &str) -> bool {
        let (status, body) = self.send(reqwest::Method::GET, kind, path, None).await;
        match status {
            200 => true,
            404 => false,
            other => panic!("GET {kind} {path}: {other} {body}"),
        }
    }

    pub async fn server(&self, id: &str) -> Value {
        self.get("compute", &format!("/servers/{id}")).await["server"].clone()
    }

    /// The project's servers, volumes and floating IPs (ids).
    pub async fn inventory(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let ids = |v: &Value, key: &str| -> Vec<String> {
            v[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let servers = self.get("compute", "/servers").await;
        let volumes = self.get("block-storage", "/volumes").await;
        let fips = self
            .get(
                "network",
                &format!("/v2.0/floatingips?project_id={}", self.project_id),
            )
            .await;
        (
            ids(&servers, "servers"),
            ids(&volumes, "volumes"),
            ids(&fips, "floatingips"),
        )
    }

    /// Delete every server, volume and floating IP of the project (what an
    /// earlier failed run left), and wait until they are gone.
    pub async fn purge(&self) {
        use reqwest::Method;
        let (servers, _, fips) = self.inventory().await;
        for id in &servers {
            self.send(Method::DELETE, "compute", &format!("/servers/{id}"), None)
                .await;
        }
        for id in &fips {
            self.send(
                Method::DELETE,
                "network",
                &format!("/v2.0/floatingips/{id}"),
                None,
            )
            .await;
        }
        eventually("the servers to go", Duration::from_secs(120), || async {
            self.inventory().await.0.is_empty().then_some(())
        })
        .await;
        let (_, volumes, _) = self.inventory().await;
        for id in &volumes {
            self.send(
                Method::DELETE,
                "block-storage",
                &format!("/volumes/{id}"),
                None,
            )
            .await;
        }
        eventually("the volumes to go", Duration::from_secs(120), || async {
            self.inventory().await.1.is_empty().then_some(())
        })
        .await;
    }

    /// Revoke a token (`DELETE /v3/auth/tokens` with `X-Subject-Token`);
    /// returns Keystone's status (204 when revoked).
    pub async fn revoke_token(&self, token: &str) -> u16 {
        let url = format!("{}/auth/tokens", self.endpoint("identity"));
        let url = if url.contains("/v3/") {
            url
        } else {
            url.replace("/auth/tokens", "/v3/auth/tokens")
        };
        self.http
            .delete(url)
            .header("X-Auth-Token", &self.token)
            .header("X-Subject-Token", token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Set the project's Nova quota for instances.
    pub async fn set_instance_quota(&self, instances: i64) {
        let (status, body) = self
            .send(
                reqwest::Method::PUT,
                "compute",
                &format!("/os-quota-sets/{}", self.project_id),
                Some(json!({"quota_set": {"instances": instances}})),
            )
            .await;
        assert_eq!(status, 200, "quota update: {body}");
    }
}

/// Poll `check` until it returns Some, or panic after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
