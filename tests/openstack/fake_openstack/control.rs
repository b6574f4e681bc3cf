//! What a test does with the fake: start it, shape its world, inject
//! faults, and read the calls it received.

use super::*;

impl FakeOpenStack {
    /// Start on a random port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let project_id = uuid::Uuid::new_v4().simple().to_string();
        let (private_id, public_id) = (id(), id());
        // The VMs' network is this host's loopback network, as their
        // addresses in the tests are (so `check` finds it reachable).
        let private_subnet = json!({"id": id(), "name": "private-subnet", "network_id": private_id,
            "ip_version": 4, "cidr": "127.0.0.0/8", "project_id": project_id});
        let public_subnet = json!({"id": id(), "name": "public-subnet", "network_id": public_id,
            "ip_version": 4, "cidr": "192.0.2.0/24", "project_id": "admin"});
        let private = json!({"id": private_id, "name": NETWORK, "router:external": false, "shared": false,
            "status": "ACTIVE", "admin_state_up": true, "subnets": [private_subnet["id"]], "project_id": project_id});
        let public = json!({"id": public_id, "name": POOL, "router:external": true, "shared": false,
            "status": "ACTIVE", "admin_state_up": true, "subnets": [public_subnet["id"]], "project_id": "admin"});
        let sg = |name: &str, project: &str| {
            json!({"id": id(), "name": name, "description": "", "project_id": project,
                "tenant_id": project, "security_group_rules": [], "stateful": true})
        };
        let world = World {
            project_id: project_id.clone(),
            token_ttl: Duration::from_secs(3600),
            latency: Duration::ZERO,
            limits: Limits {
                instances: 20,
                cores: 80,
                ram: 256_000,
                volumes: 20,
                gigabytes: 4000,
                floatingips: 20,
            },
            extra_instances: 0,
            pool_free: (10..30).map(|i| format!("192.0.2.{i}")).collect(),
            server_address: String::new(),
            boot_polls: 1,
            boot_fault: None,
            builder_console: Vec::new(),
            builder_powers_off: true,
            snapshot_polls: 2,
            snapshot_fails: false,
            snapshot_reply_delay: Duration::ZERO,
            late_answers: Vec::new(),
            image_polls: HashMap::new(),
            page_size: 1000,
            omit_from_lists: HashMap::new(),
            down_cell: Default::default(),
            hide_next_created: 0,
            lose_create_answers: 0,
            lose_builder_answers: 0,
            lose_volume_answers: 0,
            detach_polls: 0,
            hold_attachments: false,
            hold_creating: false,
            next_seq: 0,
            networks: vec![private, public],
            subnets: vec![private_subnet, public_subnet],
            images: vec![
                json!({"id": id(), "name": IMAGE, "status": "active",
                "visibility": "private", "disk_format": "qcow2", "container_format": "bare",
                "min_disk": 20, "min_ram": 0, "size": 3_221_225_472u64, "owner": project_id}),
                json!({"id": id(), "name": BASE_IMAGE, "status": "active",
                "visibility": "public", "disk_format": "qcow2", "container_format": "bare",
                "min_disk": 0, "min_ram": 0, "size": 600_000_000u64, "owner": "admin"}),
            ],
            servers: BTreeMap::new(),
            volumes: BTreeMap::new(),
            fips: BTreeMap::new(),
            calls: Vec::new(),
            auths: Vec::new(),
            rejected_tokens: 0,
            faults: Vec::new(),
            tokens: HashMap::new(),
            token_credentials: HashMap::new(),
            sgs: vec![
                sg("default", &project_id),
                sg("ssh-whitelist", &project_id),
                sg("Open-top", &project_id),
                // Another project's default group, as an admin would see it.
                sg("default", "someone-else"),
            ],
            base: base.clone(),
        };
        let fake = Self {
            base,
            world: Arc::new(Mutex::new(world)),
            fip_list_barrier: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the fake serves");
        });
        fake
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("fake lock")
    }

    pub fn auth_url(&self) -> String {
        format!("{}/identity", self.base)
    }

    /// The clouds.yaml a real operator would write, with password auth.
    pub fn clouds_yaml_password(&self) -> String {
        format!(
            "clouds:\n  fake:\n    auth_type: password\n    auth:\n      auth_url: {}\n      username: {USERNAME}\n      password: {PASSWORD}\n      project_name: {PROJECT}\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    interface: public\n",
            self.auth_url()
        )
    }

    /// The same with an application credential.
    pub fn clouds_yaml_app_credential(&self) -> String {
        format!(
            "clouds:\n  fake:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {}\n      application_credential_id: {APP_CRED_ID}\n      application_credential_secret: {APP_CRED_SECRET}\n    region_name: RegionOne\n",
            self.auth_url()
        )
    }

    /// The next `n` floating IP lists wait for each other and answer
    /// together (concurrent attaches racing for one free address).
    pub fn hold_fip_lists_together(&self, n: usize) {
        *self.fip_list_barrier.lock().unwrap() = Some((Arc::new(tokio::sync::Barrier::new(n)), n));
    }

    /// A server Nova has that stackbinder did not create here (another
    /// installation's, or the operator's): ACTIVE, with `metadata`, and a
    /// boot volume with `volume_metadata`. Its id and its volume's.
    pub fn add_server(
        &self,
        name: &str,
        metadata: BTreeMap<String, String>,
        volume_metadata: BTreeMap<String, String>,
    ) -> (String, String) {
        let mut w = self.world();
        let (server_id, volume_id) = (id(), id());
        let seq = w.next_seq;
        w.next_seq += 1;
        let address = format!("10.0.1.{}", seq % 250 + 1);
        w.volumes.insert(
            volume_id.clone(),
            FakeVolume::attached(&volume_id, 20, &server_id, volume_metadata),
        );
        w.servers.insert(
            server_id.clone(),
            FakeServer {
                id: server_id.clone(),
                name: name.into(),
                status: "ACTIVE".into(),
                task_state: None,
                fault: None,
                metadata,
                volume_id: Some(volume_id.clone()),
                delete_on_termination: true,
                console: Vec::new(),
                script: VecDeque::new(),
                powers_off: false,
                address,
                port_id: id(),
                polls_until_active: 0,
                polls_until_gone: None,
                seq,
                created: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            },
        );
        (server_id, volume_id)
    }

    /// Someone deletes a server outside stackbinder: it is gone at once,
    /// with what Nova does on a delete (boot volume, port, floating IP).
    pub fn remove_server(&self, id: &str) {
        let mut w = self.world();
        let s = w.servers.remove(id).expect("the server exists");
        finish_delete(&mut w, &s);
    }

    /// An operator attaches a volume of their own to `server_id` by hand:
    /// its id.
    pub fn attach_operator_volume(&self, server_id: &str) -> String {
        let volume_id = id();
        self.world().volumes.insert(
            volume_id.clone(),
            FakeVolume::attached(
                &volume_id,
                100,
                server_id,
                BTreeMap::from([("owner".into(), "the operator".into())]),
            ),
        );
        volume_id
    }

    /// A floating IP allocated outside stackbinder, described
    /// `description`, attached to nothing: its id.
    pub fn add_fip(&self, description: &str) -> String {
        let mut w = self.world();
        let address = w.pool_free.pop().expect("a free address in the pool");
        let f = FakeFip {
            id: id(),
            address,
            port_id: None,
            description: description.into(),
            revision: 1,
        };
        w.fips.insert(f.id.clone(), f.clone());
        f.id
    }

    pub fn inject(&self, fault: Fault) {
        self.world().faults.push(fault);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.world().calls.clone()
    }

    /// Calls per service since `from` (an index into `calls()`).
    pub fn count_by_service(&self, from: usize) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for c in &self.world().calls[from..] {
            *counts.entry(c.service).or_default() += 1;
        }
        counts
    }

    pub fn find_calls(&self, method: Method, path_contains: &str) -> Vec<Call> {
        self.world()
            .calls
            .iter()
            .filter(|c| c.method == method && c.path.contains(path_contains))
            .cloned()
            .collect()
    }

    /// The bodies of `POST /volumes` Cinder received, in order.
    pub fn volume_creates(&self) -> Vec<Value> {
        self.find_calls(Method::POST, "volumes")
            .into_iter()
            .filter(|c| c.path == "volumes")
            .map(|c| c.body.expect("a body")["volume"].clone())
            .collect()
    }

    pub fn server_count(&self) -> usize {
        self.world().servers.len()
    }

    pub fn volume_count(&self) -> usize {
        self.world().volumes.len()
    }

    /// The images Glance holds now, as it shows them.
    pub fn images(&self) -> Vec<Value> {
        self.world().images.clone()
    }

    pub fn fips(&self) -> Vec<FakeFip> {
        self.world().fips.values().cloned().collect()
    }

    /// Add an active image of the project (a launch profile's); its id.
    pub fn add_image(&self, name: &str) -> String {
        let mut w = self.world();
        let (image_id, project) = (id(), w.project_id.clone());
        w.images
            .push(json!({"id": image_id, "name": name, "status": "active",
            "visibility": "private", "disk_format": "qcow2", "container_format": "bare",
            "min_disk": 20, "min_ram": 0, "size": 9_221_225_472u64, "owner": project}));
        image_id
    }

    /// Add another project network (so the cloud cannot choose).
    pub fn add_network(&self, name: &str) {
        let mut w = self.world();
        let project = w.project_id.clone();
        w.networks
            .push(json!({"id": id(), "name": name, "router:external": false,
            "shared": false, "status": "ACTIVE", "subnets": [id()], "project_id": project}));
    }

    /// The user data of the `index`th server created, decoded.
    pub fn user_data(&self, index: usize) -> String {
        let creates = self.find_calls(Method::POST, "servers");
        let creates: Vec<&Call> = creates.iter().filter(|c| c.path == "servers").collect();
        let b64 = creates[index].body.as_ref().unwrap()["server"]["user_data"]
            .as_str()
            .expect("user_data is a string")
            .to_owned();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("user_data is base64");
        String::from_utf8(bytes).expect("user_data is UTF-8")
    }
}
