"""What the dev cloud holds, created idempotently with openstacksdk.

    setup_cloud.py catalog    Keystone: service project and users, the
                              catalog, the stackbinder project and user
    setup_cloud.py cinder     volume type "fake"; waits until cinder-volume
                              can really create a volume
    setup_cloud.py resources  what a stackbinder deployment expects (flavors,
                              image, security groups, key pair, networks,
                              router, quotas) and clouds.yaml

Settings come from the environment set by openstack-dev.sh: DEV_HOST,
DEV_PASSWORD, DEV_STATE (state directory), DEV_SERVICES, DEV_IMAGE_FILE.
"""
import os
import sys
import time

import openstack

HOST = os.environ["DEV_HOST"]
PASSWORD = os.environ["DEV_PASSWORD"]
STATE = os.environ["DEV_STATE"]
REGION = "RegionOne"
AUTH_URL = f"http://{HOST}:5000/v3"

# Names a stackbinder configuration refers to (`openstack-dev.sh env`).
PROJECT = "stackbinder"
USER = "stackbinder"
IMAGE = "stackbinder-dev-snapshot"
FLAVORS = (("sb.small", 512, 1, 1), ("sb.medium", 1024, 2, 1))
KEY = "stackbinder-dev"
GROUPS = ("ssh-whitelist", "Open-top")
NETWORK = "stackbinder-net"
POOL = "public"
ROUTER = "stackbinder-router"

SERVICES = {  # name: (type, catalog URL)
    "glance": ("image", f"http://{HOST}:9292"),
    "placement": ("placement", f"http://{HOST}:8778"),
    "nova": ("compute", f"http://{HOST}:8774/v2.1"),
    "neutron": ("network", f"http://{HOST}:9696"),
    "cinder": ("block-storage", f"http://{HOST}:8776/v3"),
}


def connect(project="admin", user="admin"):
    return openstack.connect(
        auth_url=AUTH_URL, username=user, password=PASSWORD, project_name=project,
        user_domain_name="Default", project_domain_name="Default",
        region_name=REGION, identity_api_version="3")


def first(items):
    return next(iter(items), None)


def catalog():
    idc = connect().identity
    domain = idc.get_domain("default")
    roles = {r.name: r for r in idc.roles()}
    for name in ("member", "reader", "service"):
        if name not in roles:
            roles[name] = idc.create_role(name=name)

    def project(name):
        return first(idc.projects(name=name)) or idc.create_project(
            name=name, domain_id=domain.id)

    def user(name, default_project=None):
        u = first(idc.users(name=name))
        if u is None:
            u = idc.create_user(name=name, password=PASSWORD, domain_id=domain.id,
                                default_project_id=default_project)
        return u

    service = project("service")
    for name in os.environ.get("DEV_SERVICES", "").split():
        kind, url = SERVICES[name]
        u = user(name)
        for role in ("admin", "service"):
            idc.assign_project_role_to_user(service, u, roles[role])
        svc = first(idc.services(name=name)) or idc.create_service(
            name=name, type=kind, enabled=True)
        have = {e.interface for e in idc.endpoints(service_id=svc.id)}
        for interface in ("public", "internal", "admin"):
            if interface not in have:
                idc.create_endpoint(service_id=svc.id, interface=interface,
                                    url=url, region_id=REGION)
    # stackbinder's own project, and a user who is a member, not an admin
    sb = project(PROJECT)
    idc.assign_project_role_to_user(sb, user(USER, sb.id), roles["member"])
    # the admin may look at (and change quotas of) that project
    idc.assign_project_role_to_user(sb, first(idc.users(name="admin")), roles["admin"])
    print("keystone: catalog, service users, project and user", PROJECT, file=sys.stderr)


def cinder():
    conn = connect()
    if conn.block_storage.find_type("fake") is None:
        conn.block_storage.create_type(
            name="fake", extra_specs={"volume_backend_name": "fake"})
    # cinder-scheduler only places volumes once cinder-volume has sent its
    # capabilities; until then a boot from volume fails (NoValidBackend).
    deadline = time.time() + 180
    while True:
        v = conn.block_storage.create_volume(size=1, name="openstack-dev-probe")
        while v.status not in ("available", "error"):
            time.sleep(1)
            v = conn.block_storage.get_volume(v.id)
        conn.block_storage.delete_volume(v.id)
        if v.status == "available":
            break
        if time.time() > deadline:
            sys.exit("cinder never created a volume: see the cinder logs")
        time.sleep(3)
    print("cinder: a probe volume became available", file=sys.stderr)


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def resources():
    admin = connect()
    sb_project = admin.identity.find_project(PROJECT)
    have = {f.name for f in admin.compute.flavors()}
    for name, ram, vcpus, disk in FLAVORS:
        if name not in have:
            admin.compute.create_flavor(name=name, ram=ram, vcpus=vcpus, disk=disk,
                                        is_public=True)
    # quotas for 50+ VMs at once (the benchmark)
    admin.set_compute_quotas(sb_project.id, instances=100, cores=200, ram=102400)
    admin.set_volume_quotas(sb_project.id, volumes=100, gigabytes=1000, snapshots=20)
    admin.set_network_quotas(sb_project.id, floatingip=100, port=300)

    net = admin.network
    public = net.find_network(POOL) or net.create_network(
        name=POOL, is_router_external=True, provider_network_type="flat",
        provider_physical_network="public")
    if not list(net.subnets(network_id=public.id)):
        # TEST-NET-1: rows in neutron's database, no packet ever flows
        net.create_subnet(network_id=public.id, name=f"{POOL}-subnet", ip_version=4,
                          cidr="192.0.2.0/24", gateway_ip="192.0.2.1",
                          allocation_pools=[{"start": "192.0.2.10", "end": "192.0.2.250"}],
                          is_dhcp_enabled=False)

    # Everything else belongs to the stackbinder project, made by its user.
    sb = connect(PROJECT, USER)
    if sb.image.find_image(IMAGE) is None:
        image = sb.image.create_image(
            name=IMAGE, disk_format="qcow2", container_format="bare",
            filename=os.environ["DEV_IMAGE_FILE"], wait=True, validate_checksum=False)
        print("glance: image", image.id, file=sys.stderr)
    for name in GROUPS:
        if sb.network.find_security_group(name, project_id=sb_project.id) is None:
            g = sb.network.create_security_group(name=name, description="stackbinder dev")
            sb.network.create_security_group_rule(
                security_group_id=g.id, direction="ingress", protocol="tcp",
                port_range_min=22 if name == "ssh-whitelist" else 8888,
                port_range_max=22 if name == "ssh-whitelist" else 8888,
                remote_ip_prefix="0.0.0.0/0")
    key_file = os.path.join(STATE, "id_ed25519")
    if sb.compute.find_keypair(KEY) is None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
        key = ed25519.Ed25519PrivateKey.generate()
        write_private(key_file, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption()).decode())
        public_key = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        sb.compute.create_keypair(name=KEY, public_key=public_key + " stackbinder-dev")
    private = sb.network.find_network(NETWORK) or sb.network.create_network(name=NETWORK)
    subnet = first(sb.network.subnets(network_id=private.id)) or sb.network.create_subnet(
        network_id=private.id, name=f"{NETWORK}-subnet", ip_version=4,
        cidr="198.51.100.0/24", gateway_ip="198.51.100.1")
    if sb.network.find_router(ROUTER) is None:
        router = sb.network.create_router(
            name=ROUTER, external_gateway_info={"network_id": public.id})
        sb.network.add_interface_to_router(router, subnet_id=subnet.id)

    entry = """  {name}:
    auth:
      auth_url: {auth}
      username: {user}
      password: "{pw}"
      project_name: {project}
      user_domain_name: Default
      project_domain_name: Default
    region_name: {region}
    interface: public
    identity_api_version: 3
"""
    write_private(os.path.join(STATE, "clouds.yaml"), "clouds:\n" + "".join(
        entry.format(name=n, auth=AUTH_URL, user=u, pw=PASSWORD, project=p, region=REGION)
        for n, u, p in (("stackbinder-dev", USER, PROJECT),
                        ("stackbinder-dev-admin", "admin", PROJECT))))
    print("stackbinder resources and clouds.yaml ready", file=sys.stderr)


{"catalog": catalog, "cinder": cinder, "resources": resources}[sys.argv[1]]()
