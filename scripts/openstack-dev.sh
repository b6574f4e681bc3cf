#!/usr/bin/env bash
# A real OpenStack control plane on 127.0.0.1 for development, conformance
# tests and benchmarks: Keystone, Glance, Placement, Nova (its fake virt
# driver: servers go ACTIVE, nothing boots), Neutron (no agents: ports,
# routers and floating IPs are database rows) and Cinder (its fake driver,
# volumes in files), upstream code from PyPI, with MariaDB and RabbitMQ.
#
#   scripts/openstack-dev.sh up     install what is missing, start, create
#                                   what stackbinder expects (~2-4 min)
#   scripts/openstack-dev.sh env    the lines that point stackbinder at it
#   scripts/openstack-dev.sh down   stop exactly what `up` started
#
# Everything lives in $OPENSTACK_DEV_DIR (default .openstack-dev in the
# repository): venv/ (kept) and state/ (configs, databases, logs, pid list,
# clouds.yaml; made anew by every `up` after a `down`). `up` on a running
# stack only prints the environment. Needs root for apt-get when MariaDB,
# RabbitMQ or qemu-img are missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HELPERS=$ROOT/scripts/openstack-dev
DIR=${OPENSTACK_DEV_DIR:-$ROOT/.openstack-dev}
VENV=$DIR/venv
ST=$DIR/state
ETC=$ST/etc
DATA=$ST/data
LOG=$ST/logs
PIDS=$ST/pids
H=127.0.0.1
PW=secret
PY=$VENV/bin/python
# The releases the recipe was proven with (OpenStack 2025.2 era); one venv.
PACKAGES=(keystone==30.0.0 nova==34.0.0 cinder==29.0.0 glance==33.0.0
    neutron==29.0.0 openstack-placement==16.0.0 python-openstackclient==10.5.0
    uwsgi==2.0.31 PyMySQL==1.1.2)
SERVICES="glance placement nova neutron cinder"

say() { printf '[openstack-dev %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

running() {
    local name pid
    [[ -s $PIDS ]] || return 1
    while read -r name pid; do
        kill -0 "$pid" 2>/dev/null || return 1
    done <"$PIDS"
    [[ -s $ST/clouds.yaml ]]
}

# ------------------------------------------------------------------ install
apt_install() {
    say "apt-get install $*"
    apt-get update -qq || die "apt-get update failed (is the Debian mirror reachable?)"
    # RUNLEVEL=1: Debian's maintainer scripts do not start the distro services
    RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}

install() {
    local want=() stamp=$VENV/.installed
    [[ -x /usr/sbin/mariadbd ]] || want+=(mariadb-server)
    [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || want+=(rabbitmq-server)
    command -v qemu-img >/dev/null || want+=(qemu-utils)
    python3 -c 'import ensurepip, venv' 2>/dev/null || want+=(python3-venv)
    python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' ||
        want+=(python3-dev)
    command -v gcc >/dev/null || want+=(gcc)
    ((${#want[@]} == 0)) || apt_install "${want[@]}"
    if [[ -f $stamp && $(cat "$stamp") == "${PACKAGES[*]}" ]]; then
        return
    fi
    say "pip install ${PACKAGES[*]} (1-2 min)"
    local t0=$SECONDS
    [[ -x $PY ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip wheel setuptools ||
        die "pip could not upgrade itself (is PyPI reachable?)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PACKAGES[@]}" ||
        die "pip install of the OpenStack services failed (is PyPI reachable?)"
    echo "${PACKAGES[*]}" >"$stamp"
    say "pip install took $((SECONDS - t0)) s"
}

# ------------------------------------------------------------------ helpers
# start NAME CMD...: in its own session, so its pid is its process group
# and `down` stops it with all its workers.
start() {
    local name=$1
    shift
    setsid "$@" >"$LOG/$name.out" 2>&1 </dev/null &
    echo "$name $!" >>"$PIDS"
}

wait_for() { # WHAT SECONDS CMD...
    local what=$1 limit=$2 i
    shift 2
    for ((i = 0; i < limit * 4; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    die "$what did not come up in $limit s (logs: $LOG)"
}

port_open() { (exec 3<>"/dev/tcp/$H/$1") 2>/dev/null; }

# uwsgi NAME PORT MODULE [uwsgi args]: one WSGI API on loopback. Each
# answer closes its connection (uwsgi's http-socket drops idle ones without
# a word, and clients then reuse a dead connection); requests are logged to
# logs/NAME.requests with the user agent, for the benchmark.
uwsgi() {
    local name=$1 port=$2 module=$3
    shift 3
    start "$name" "$VENV/bin/uwsgi" --http-socket "$H:$port" --module "$module" \
        --master --processes 1 --threads 8 --die-on-term --need-app \
        --buffer-size 65535 --add-header "Connection: close" --virtualenv "$VENV" \
        --req-logger "file:$LOG/$name.requests" \
        --log-format '%(epoch) %(method) %(uri) %(status) %(msecs)ms "%(uagent)"' "$@"
    wait_for "$name" 120 port_open "$port"
}

authtoken() { # SERVICE-USER: how a service checks tokens
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://$H:5000
auth_url = http://$H:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $PW
region_name = RegionOne
service_token_roles_required = true
EOF
}

client_auth() { # SECTION USER: how a service calls another
    cat <<EOF
[$1]
auth_type = password
auth_url = http://$H:5000
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $PW
region_name = RegionOne
EOF
}

SOCK=$ST/mysqld.sock
db() { # NAME: create the database, print its URL
    mariadb --no-defaults --protocol=socket -S "$SOCK" -uroot "-p$PW" \
        -e "CREATE DATABASE IF NOT EXISTS \`$1\` CHARACTER SET utf8mb4"
    echo "mysql+pymysql://root:$PW@$H:3306/$1?charset=utf8mb4"
}
RABBIT="rabbit://guest:guest@$H:5672/"

# ------------------------------------------------------------------ services
start_mariadb() {
    mkdir -p "$DATA/mysql"
    mariadb-install-db --no-defaults --datadir="$DATA/mysql" --user=root \
        --auth-root-authentication-method=normal --skip-test-db >"$LOG/mariadb-install.out" 2>&1
    start mariadb /usr/sbin/mariadbd --no-defaults --user=root --datadir="$DATA/mysql" \
        --bind-address=$H --port=3306 --socket="$SOCK" --log-error="$LOG/mariadb.log" \
        --max-connections=1000 --innodb-buffer-pool-size=128M \
        --innodb-flush-log-at-trx-commit=0 --skip-log-bin --skip-name-resolve
    wait_for mariadb 60 port_open 3306
    mariadb --no-defaults --protocol=socket -S "$SOCK" -uroot -e \
        "ALTER USER 'root'@'localhost' IDENTIFIED BY '$PW';
         CREATE OR REPLACE USER 'root'@'$H' IDENTIFIED BY '$PW';
         GRANT ALL ON *.* TO 'root'@'$H' WITH GRANT OPTION; FLUSH PRIVILEGES;"
}

start_rabbitmq() {
    local epmd found=(/usr/lib/erlang/erts-*/bin/epmd)
    epmd=$(command -v epmd || echo "${found[0]}")
    mkdir -p "$DATA/rabbit"
    head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$DATA/rabbit/.erlang.cookie"
    chmod 400 "$DATA/rabbit/.erlang.cookie"
    export ERL_EPMD_ADDRESS=$H ERL_EPMD_PORT=4369
    start epmd "$epmd" -address $H -port 4369
    wait_for epmd 20 port_open 4369
    printf 'listeners.tcp.default = %s:5672\nloopback_users = none\ndistribution.listener.interface = %s\n' \
        "$H" "$H" >"$ETC/rabbitmq.conf"
    HOME=$DATA/rabbit RABBITMQ_CONFIG_FILE=$ETC/rabbitmq.conf \
        RABBITMQ_NODENAME=openstack-dev@localhost RABBITMQ_NODE_IP_ADDRESS=$H \
        RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=25672 \
        RABBITMQ_MNESIA_BASE=$DATA/rabbit/mnesia RABBITMQ_LOG_BASE=$LOG/rabbit \
        RABBITMQ_ENABLED_PLUGINS_FILE=$ETC/rabbit_plugins RABBITMQ_ENABLED_PLUGINS=none \
        RABBITMQ_PID_FILE=$ST/rabbit.pid \
        start rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
    wait_for rabbitmq 90 port_open 5672
}

start_keystone() {
    mkdir -p "$ETC/keystone" "$DATA/keystone/fernet" "$DATA/keystone/credential"
    cat >"$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $LOG/keystone.log
[database]
connection = $(db keystone)
[token]
provider = fernet
expiration = 86400
[fernet_tokens]
key_repository = $DATA/keystone/fernet
[fernet_receipts]
key_repository = $DATA/keystone/fernet
[credential]
key_repository = $DATA/keystone/credential
EOF
    local k=(keystone-manage --config-file "$ETC/keystone/keystone.conf")
    {
        "${k[@]}" db_sync
        "${k[@]}" fernet_setup --keystone-user root --keystone-group root
        "${k[@]}" credential_setup --keystone-user root --keystone-group root
        "${k[@]}" bootstrap --bootstrap-password "$PW" --bootstrap-region-id RegionOne \
            --bootstrap-admin-url "http://$H:5000/v3" --bootstrap-internal-url "http://$H:5000/v3" \
            --bootstrap-public-url "http://$H:5000/v3"
    } >"$LOG/keystone-manage.out" 2>&1 || die "keystone-manage (see $LOG/keystone-manage.out)"
    OS_KEYSTONE_CONFIG_DIR=$ETC/keystone uwsgi keystone 5000 keystone.wsgi.api:application
}

start_glance() {
    mkdir -p "$ETC/glance" "$DATA/glance"/{images,staging,tasks,lock}
    cp "$VENV/etc/glance/glance-api-paste.ini" "$ETC/glance/"
    cat >"$ETC/glance/glance-api.conf" <<EOF
[DEFAULT]
log_file = $LOG/glance-api.log
enabled_backends = fs:file
[database]
connection = $(db glance)
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $DATA/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $DATA/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $DATA/glance/tasks
[paste_deploy]
flavor = keystone
config_file = $ETC/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $DATA/glance/lock
$(authtoken glance)
EOF
    glance-manage --config-file "$ETC/glance/glance-api.conf" db_sync >"$LOG/glance-manage.out" 2>&1 ||
        die "glance-manage (see $LOG/glance-manage.out)"
    OS_GLANCE_CONFIG_DIR=$ETC/glance uwsgi glance 9292 glance.wsgi.api:application \
        --chunked-input-limit 10485760 --http-auto-chunked
}

start_placement() {
    mkdir -p "$ETC/placement"
    cat >"$ETC/placement/placement.conf" <<EOF
[DEFAULT]
log_file = $LOG/placement.log
[placement_database]
connection = $(db placement)
[api]
auth_strategy = keystone
$(authtoken placement)
EOF
    placement-manage --config-file "$ETC/placement/placement.conf" db sync >"$LOG/placement-manage.out" 2>&1 ||
        die "placement-manage (see $LOG/placement-manage.out)"
    OS_PLACEMENT_CONFIG_DIR=$ETC/placement uwsgi placement 8778 placement.wsgi.api:application
}

# Neutron: ML2 with the "test" mechanism driver from the neutron wheel, which
# binds a port without any agent when its host has one of its magic names
# (nova's host is set to one). PYTHONOPTIMIZE=1 drops that driver's
# unit-test asserts, which reject real traffic.
start_neutron() {
    mkdir -p "$ETC/neutron/plugins/ml2" "$DATA/neutron/lock"
    cp "$VENV/etc/neutron/api-paste.ini" "$ETC/neutron/"
    local url
    url=$(db neutron)
    cat >"$ETC/neutron/neutron.conf" <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
transport_url = $RABBIT
log_file = $LOG/neutron.log
state_path = $DATA/neutron
api_paste_config = $ETC/neutron/api-paste.ini
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
[database]
connection = $url
[oslo_concurrency]
lock_path = $DATA/neutron/lock
[oslo_messaging_notifications]
driver = noop
$(client_auth nova neutron)
$(authtoken neutron)
EOF
    cat >"$ETC/neutron/plugins/ml2/ml2_conf.ini" <<EOF
[ml2]
type_drivers = local,flat
tenant_network_types = local
mechanism_drivers = test
extension_drivers = port_security
[ml2_type_flat]
flat_networks = public
EOF
    {
        "$PY" "$HELPERS/neutron_schema.py" "$url"
        neutron-db-manage --config-file "$ETC/neutron/neutron.conf" \
            --config-file "$ETC/neutron/plugins/ml2/ml2_conf.ini" stamp heads
    } >"$LOG/neutron-db.out" 2>&1 || die "neutron schema (see $LOG/neutron-db.out)"
    PYTHONOPTIMIZE=1 OS_NEUTRON_CONFIG_DIR=$ETC/neutron uwsgi neutron 9696 neutron.wsgi.api:application
}

start_cinder() {
    mkdir -p "$ETC/cinder" "$DATA/cinder"/{lock,volumes,conversion}
    cp "$VENV/etc/cinder/api-paste.ini" "$ETC/cinder/"
    local conf=$ETC/cinder/cinder.conf
    cat >"$conf" <<EOF
[DEFAULT]
transport_url = $RABBIT
auth_strategy = keystone
my_ip = $H
host = openstack-dev
state_path = $DATA/cinder
image_conversion_dir = $DATA/cinder/conversion
api_paste_config = $ETC/cinder/api-paste.ini
log_dir = $LOG
enabled_backends = fake
default_volume_type = fake
glance_api_servers = http://$H:9292
osapi_volume_workers = 1
[database]
connection = $(db cinder)
# no sudo: privsep daemons are started from the venv (we are root)
[cinder_sys_admin]
helper_command = $VENV/bin/privsep-helper --config-file $conf
[privsep_osbrick]
helper_command = $VENV/bin/privsep-helper --config-file $conf
[fake]
volume_driver = cinder_file_driver.FileVolumeDriver
volume_backend_name = fake
volume_group = cinder-volumes
[oslo_concurrency]
lock_path = $DATA/cinder/lock
[oslo_messaging_notifications]
driver = noop
$(client_auth nova cinder)
$(client_auth service_user cinder)
send_service_user_token = true
$(authtoken cinder)
EOF
    cinder-manage --config-file "$conf" db sync >"$LOG/cinder-manage.out" 2>&1 ||
        die "cinder-manage (see $LOG/cinder-manage.out)"
    # cinder's WSGI app reads its config file from argv only
    uwsgi cinder-api 8776 cinder.wsgi.api:application --pyargv "--config-file $conf"
    start cinder-scheduler cinder-scheduler --config-file "$conf"
    OPENSTACK_DEV_VOLUMES=$DATA/cinder/volumes PYTHONPATH=$HELPERS \
        start cinder-volume cinder-volume --config-file "$conf"
}

NOVA_HOST=host-ovs-filter-active # a name neutron's test driver binds ports for
start_nova() {
    mkdir -p "$ETC/nova" "$DATA/nova"/{instances,lock}
    cp "$VENV/etc/nova/api-paste.ini" "$ETC/nova/"
    local conf=$ETC/nova/nova.conf
    cat >"$conf" <<EOF
[DEFAULT]
transport_url = $RABBIT
compute_driver = openstack_dev.UploadingFakeDriver
host = $NOVA_HOST
my_ip = $H
state_path = $DATA/nova
instances_path = $DATA/nova/instances
log_dir = $LOG
enabled_apis = osapi_compute
# a boot from volume waits this long for cinder (50 at once on 2 cores)
block_device_allocate_retries = 120
block_device_allocate_retries_interval = 2
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[api]
auth_strategy = keystone
[api_database]
connection = $(db nova_api)
[database]
connection = $(db nova_cell1)
[oslo_concurrency]
lock_path = $DATA/nova/lock
[scheduler]
discover_hosts_in_cells_interval = 5
workers = 1
[conductor]
workers = 1
[vnc]
enabled = false
[oslo_messaging_notifications]
driver = noop
[glance]
region_name = RegionOne
[cinder]
os_region_name = RegionOne
auth_type = password
auth_url = http://$H:5000
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = $PW
$(client_auth placement nova)
$(client_auth neutron nova)
$(client_auth service_user nova)
send_service_user_token = true
$(authtoken nova)
EOF
    local n=(nova-manage --config-file "$conf")
    {
        "${n[@]}" api_db sync
        "${n[@]}" cell_v2 map_cell0 --database_connection "$(db nova_cell0)"
        "${n[@]}" cell_v2 create_cell --name cell1 --verbose
        "${n[@]}" db sync
    } >"$LOG/nova-manage.out" 2>&1 || die "nova-manage (see $LOG/nova-manage.out)"
    printf '[DEFAULT]\nlog_file = %s\n' "$LOG/nova-api.log" >"$ETC/nova/nova-api.conf"
    OS_NOVA_CONFIG_DIR=$ETC/nova OS_NOVA_CONFIG_FILES="api-paste.ini;nova.conf;nova-api.conf" \
        uwsgi nova-api 8774 nova.wsgi.osapi_compute:application
    start nova-conductor nova-conductor --config-file "$conf"
    start nova-scheduler nova-scheduler --config-file "$conf"
    start nova-compute "$PY" "$HELPERS/nova_compute.py" --config-file "$conf"
    # the compute host must register and be mapped into cell1
    local i
    for ((i = 0; i < 120; i++)); do
        "${n[@]}" cell_v2 discover_hosts >/dev/null 2>&1 || true
        if "${n[@]}" cell_v2 list_hosts 2>/dev/null | grep -q "$NOVA_HOST"; then return 0; fi
        kill -0 "$(awk '$1 == "nova-compute" {print $2}' "$PIDS")" 2>/dev/null ||
            die "nova-compute died: $(grep -m3 ERROR "$LOG/nova-compute.log" || true)"
        sleep 1
    done
    die "nova-compute never registered (see $LOG/nova-compute.log)"
}

# ------------------------------------------------------------------ commands
print_env() {
    cat <<EOF
# stackbinder on the dev cloud (eval "\$(scripts/openstack-dev.sh env)")
export OS_CLIENT_CONFIG_FILE=$ST/clouds.yaml
export OPENSTACK_DEV_CLOUDS_YAML=$ST/clouds.yaml
export STACKBINDER_CLOUD__BACKEND=openstack
export STACKBINDER_CLOUD__CLOUD=stackbinder-dev
export STACKBINDER_CLOUD__IMAGE=stackbinder-dev-snapshot
export STACKBINDER_CLOUD__FLAVOR=sb.small
export STACKBINDER_CLOUD__VOLUME_SIZE_GB=1
export STACKBINDER_CLOUD__KEY_NAME=stackbinder-dev
export STACKBINDER_CLOUD__NETWORK=stackbinder-net
export STACKBINDER_CLOUD__FLOATING_IP_POOL=public
# no packet reaches the dev cloud's VM network (Neutron without agents), so no Jupyter proxy
export STACKBINDER_CLOUD__JUPYTER_ACCESS=floating_ip
# the openstack CLI: $VENV/bin/openstack --os-cloud stackbinder-dev (or stackbinder-dev-admin)
EOF
}

up() {
    if running; then
        say "already running (state in $ST)"
        print_env
        return
    fi
    local t0=$SECONDS
    mkdir -p "$DIR"
    install
    if [[ -s $PIDS ]]; then
        say "a previous stack is partly running: stopping it first"
        down
    fi
    rm -rf "$ST"
    mkdir -p "$ETC" "$DATA" "$LOG"
    : >"$PIDS"
    export PATH=$VENV/bin:$PATH
    export DEV_HOST=$H DEV_PASSWORD=$PW DEV_STATE=$ST DEV_SERVICES=$SERVICES
    # if anything below fails, stop what was started
    trap 'if (($? != 0)); then say "start-up failed: stopping what was started"; down; fi' EXIT
    say "mariadb, rabbitmq, keystone"
    start_mariadb
    start_rabbitmq
    start_keystone
    "$PY" "$HELPERS/setup_cloud.py" catalog
    say "glance, placement, neutron, cinder"
    start_glance
    start_placement
    start_neutron
    start_cinder
    "$PY" "$HELPERS/setup_cloud.py" cinder
    say "nova"
    start_nova
    say "stackbinder's project, image, flavors, groups, key pair, networks"
    DEV_IMAGE_FILE=$DATA/snapshot.qcow2
    qemu-img create -q -f qcow2 "$DEV_IMAGE_FILE" 64M
    DEV_IMAGE_FILE=$DEV_IMAGE_FILE "$PY" "$HELPERS/setup_cloud.py" resources
    trap - EXIT
    say "up in $((SECONDS - t0)) s; logs in $LOG"
    print_env
}

down() {
    if [[ ! -s $PIDS ]]; then
        say "nothing is running"
        return 0
    fi
    local lines line name pid i
    mapfile -t lines < <(tac "$PIDS")
    for line in "${lines[@]}"; do
        read -r name pid <<<"$line"
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for line in "${lines[@]}"; do
        read -r name pid <<<"$line"
        for ((i = 0; i < 40; i++)); do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 -- "-$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || true
            say "$name ($pid) needed SIGKILL"
        fi
    done
    : >"$PIDS"
    say "stopped"
}

case ${1:-} in
up) up ;;
down) down ;;
env)
    running || die "the dev cloud is not running: scripts/openstack-dev.sh up"
    print_env
    ;;
*)
    echo "usage: $0 up|down|env" >&2
    exit 2
    ;;
esac
