#!/bin/bash
# stackbinder launch script. cloud-init runs it once, as root, at first boot:
#   stackbinder-launch /etc/stackbinder/launch.json
#
# It runs repo2docker as user `ubuntu` on the user's repository at the
# requested ref, which clones, builds and then starts Jupyter on a fixed
# port under /user/<login>/ (stackbinder's proxy route to this VM) with a
# token stackbinder chose, and it reports the progress
# (cloning, building, starting, ready or failed, plus the log lines) to
# stackbinder's callback with the VM's own secret.
#
# Everything from the launch data is handled by the Python helper below:
# user values are read from JSON and handed to repo2docker as separate
# arguments, never through the shell. The secrets live in root-only files
# and in repo2docker's environment, never on a command line or the console.
set -Eeuo pipefail
umask 077

conf=${1:-/etc/stackbinder/launch.json}

# Knobs for the sandbox test (tests/api/launch_script.rs), which runs this
# script as an ordinary user with stub programs first on PATH. On a VM
# nothing sets them: cloud-init's runcmd passes no such variables and the
# user data cannot add any.
r2d=${STACKBINDER_R2D:-/opt/repo2docker/bin/jupyter-repo2docker}
# Where the image keeps repo2docker's configuration, and where a GPU
# launch writes its own next to it (readable by `ubuntu`, unlike $workdir).
config_dir=${STACKBINDER_CONFIG_DIR:-/etc/stackbinder}
workdir=${STACKBINDER_WORKDIR:-/var/lib/stackbinder}
tick=${STACKBINDER_TICK_SECONDS:-5}
retry_delay=${STACKBINDER_RETRY_SECONDS:-3}
retries=${STACKBINDER_RETRIES:-40}
# The owner's home volume (launch data `home_volume_id`): the disk is found
# by its serial under $disks, mounted at $home_mount, and mounted into the
# container at /home/jovyan/work.
disks=${STACKBINDER_DISK_DIR:-/dev/disk/by-id}
home_mount=${STACKBINDER_HOME_MOUNT:-/mnt/stackbinder-home}
disk_wait=${STACKBINDER_DISK_WAIT_SECONDS:-120}
# Beyond this stackbinder has long given up on the launch (its own phase
# timeouts are shorter); the script stops rather than poll forever.
deadline=$((SECONDS + ${STACKBINDER_DEADLINE_SECONDS:-7200}))

say() {
    printf 'stackbinder-launch: %s\n' "$*"
}

mkdir -p "$workdir"
chmod 700 "$workdir"
helper_py="$workdir/helper.py"
cat >"$helper_py" <<'PY'
"""The launch script's data handling: the only code that reads launch.json."""
import json, os, re, sys

conf_path, workdir, command, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
R2D_LOG = os.path.join(workdir, "repo2docker.log")  # repo2docker's JSON lines
LOG = os.path.join(workdir, "launch.log")  # what we relay, one line each
MAX_LINE = 500
BATCH = 200  # stackbinder keeps at most this many lines of one report
# repo2docker's --json-logs phases, as stackbinder names them.
PHASES = {"fetching": "cloning", "building": "building", "pushing": "building",
          "running": "starting", "failed": "failed"}
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# A launch profile with `gpu = true`: the container runs with `--gpus all`,
# which docker-py (repo2docker's way to Docker) spells as a device request
# for every GPU. Fixed text, on top of the image's own configuration.
GPU_CONFIG = """\
# Written by stackbinder-launch: this launch's profile asks for GPUs.
# `docker run --gpus all`, in docker-py's words: every GPU, for the container.
import docker
load_subconfig("/etc/stackbinder/repo2docker_config.py")
c.Repo2Docker.extra_run_kwargs = {
    "device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])],
}
"""


def conf():
    with open(conf_path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError("the launch data is not a JSON object")
    return data


def text(data, key):
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{key}` is missing or not a string")
    return value


def port(data):
    value = data.get("jupyter_port")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ValueError("`jupyter_port` is not a port number")
    return value


def login(data):
    """The owner's GitHub login, as GitHub allows it: it becomes a path."""
    value = text(data, "login")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}", value):
        raise ValueError("`login` is not a GitHub login")
    return value


def gpu(data):
    """Whether the container gets the VM's GPUs (`--gpus all`)."""
    value = data.get("gpu", False)
    if not isinstance(value, bool):
        raise ValueError("`gpu` is not true or false")
    return value


def base_url(data):
    """Where Jupyter serves: the route of stackbinder's proxy to this VM."""
    return f"/user/{login(data)}/"


def read_state(name, default=0):
    try:
        with open(os.path.join(workdir, name)) as f:
            return int(f.read())
    except (OSError, ValueError):
        return default


def write_state(name, value):
    with open(os.path.join(workdir, name), "w") as f:
        f.write(str(value))


def clean(line, data):
    """One printable line, without our secrets, of bounded length."""
    for key in ("jupyter_token", "callback_secret"):
        secret = data.get(key)
        if isinstance(secret, str) and secret:
            line = line.replace(secret, "[redacted]")
    return CONTROL.sub(" ", line.rstrip())[:MAX_LINE]


def append(lines):
    with open(LOG, "a", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def prepare():
    """Check stackbinder's own fields, write the callback header file, and
    print the VM id, the port and the callback URL for the script."""
    data = conf()
    vm = text(data, "vm_id")
    if not re.fullmatch(r"[0-9a-f-]{36}", vm):
        raise ValueError("`vm_id` is not a UUID")
    login(data)
    gpu(data)
    url = text(data, "callback_url")
    if not re.fullmatch(r"https?://[!-~]+", url):
        raise ValueError("`callback_url` is not an http(s) URL")
    for key in ("callback_secret", "jupyter_token"):
        if not re.fullmatch(r"[!-~]+", text(data, key)):
            raise ValueError(f"`{key}` is not printable ASCII")
    with open(os.path.join(workdir, "callback-header"), "w") as f:
        f.write(f"Authorization: Bearer {data['callback_secret']}\n")
    print(vm, port(data), url, base_url(data), home_serial(data) or "-", sep="\n")


def check_user_values():
    """Print why the user's values cannot be used, or nothing. The server
    validates them already; this is the last line of defence on the VM."""
    data = conf()
    for key, what in (("repo", "repository"), ("git_ref", "git ref")):
        try:
            value = text(data, key)
        except ValueError:
            print(f"the {what} is missing")
            return
        if value.startswith("-"):
            print(f"the {what} starts with '-' and would be read as an option")
            return
        if CONTROL.search(value) or len(value) > 2048:
            print(f"the {what} contains control characters or is too long")
            return
    append([clean(f"launching {data['repo']} at {data['git_ref']}", data)])


def r2d_config(data, config_dir):
    """The configuration repo2docker reads: the image's, or for a GPU
    launch ours, which adds `--gpus all` to it."""
    if not gpu(data):
        return "/etc/stackbinder/repo2docker_config.py"
    path = os.path.join(config_dir, "repo2docker_gpus.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(GPU_CONFIG)
    os.chmod(path, 0o644)
    return path


def home_serial(data):
    """The serial Nova gives the home volume's disk (`virtio-<serial>` in
    /dev/disk/by-id): the first 20 characters of the volume id. None when
    the owner has no home volume."""
    value = data.get("home_volume_id")
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f-]{36}", value):
        raise ValueError("`home_volume_id` is not a volume id")
    return value[:20]


def r2d_argv(data, r2d, config, home_mount):
    """repo2docker's command line. The token is not on it: `--env NAME`
    without a value makes repo2docker take the value from its own
    environment. `--` ends the options, so the repository is never one.
    The home volume, mounted at `home_mount`, becomes /home/jovyan/work."""
    home = ["--volume=" + home_mount + ":/home/jovyan/work"] if home_serial(data) else []
    return [
        r2d,
        "--config=" + config,
        "--json-logs",
        "--ref=" + text(data, "git_ref"),
        "--user-id=1000",
        "--user-name=jovyan",
        "--env=JUPYTER_TOKEN",
        f"--publish=0.0.0.0:{port(data)}:8888",
        *home,
        "--",
        text(data, "repo"),
        "jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser",
        "--ServerApp.base_url=" + base_url(data),
    ]


def exec_r2d():
    """Become repo2docker, run as `ubuntu` by sudo, in a session of its own
    so it outlives cloud-init, with the token in its environment only."""
    data = conf()
    argv = ["sudo", "-u", "ubuntu", "-H", "--preserve-env=JUPYTER_TOKEN", "--"]
    argv += r2d_argv(data, args[0], r2d_config(data, args[1]), args[2])
    env = dict(os.environ, JUPYTER_TOKEN=text(data, "jupyter_token"))
    try:
        os.setsid()
    except OSError:
        pass
    # repo2docker reads repo2docker_config.py from its working directory.
    os.chdir("/")
    os.execvpe(argv[0], argv, env)


def relay():
    """Turn repo2docker's new JSON lines into log lines; print the phases
    they name, in order and as stackbinder calls them."""
    data = conf()
    offset = read_state("r2d-offset")
    try:
        with open(R2D_LOG, "rb") as f:
            f.seek(offset)
            chunk = f.read()
    except OSError:
        return
    complete = chunk.rfind(b"\n") + 1  # a half-written line waits
    write_state("r2d-offset", offset + complete)
    lines, phases = [], []
    for raw in chunk[:complete].decode("utf-8", "replace").splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            phase = PHASES.get(str(entry.get("phase")))
            if phase and phase not in phases:
                phases.append(phase)
            message = str(entry.get("message", ""))
        else:
            message = raw
        for line in message.splitlines():
            line = clean(line, data)
            if line:
                lines.append(line)
    append(lines)
    print(" ".join(phases))


def note(message):
    append([clean(message, conf())])


def last_line():
    try:
        with open(LOG, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    print(lines[-1] if lines else "")


def body(phase, port_arg, home_mounted=""):
    """Write the next report to body.json: the next batch of log lines and,
    with the last batch, the phase (and the home volume's used space, once
    it is mounted at `home_mounted`). Print 1 if lines are left for another
    batch, 0 if not, and - if there is nothing to report at all."""
    data = conf()
    sent = read_state("sent-lines")
    try:
        with open(LOG, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    batch = lines[sent:sent + BATCH]
    more = sent + BATCH < len(lines)
    if not batch and not phase:
        print("-")
        return
    seq = read_state("seq") + 1
    report = {
        "vm": data["vm_id"],
        "seq": seq,
        "phase": None if more or not phase else phase,
        "port": int(port_arg) if port_arg and not more else None,
        "log": batch,
    }
    if home_mounted:
        fs = os.statvfs(home_mounted)
        report["home_used_bytes"] = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
        report["home_total_bytes"] = fs.f_blocks * fs.f_frsize
    with open(os.path.join(workdir, "body.json"), "w") as f:
        json.dump(report, f)
    write_state("seq", seq)
    write_state("sent-lines", sent + len(batch))
    print(1 if more else 0)


try:
    {
        "prepare": prepare,
        "check-user-values": check_user_values,
        "exec-r2d": exec_r2d,
        "relay": relay,
        "note": lambda: note(args[0]),
        "last-line": last_line,
        "body": lambda: body(*args[:3]),
    }[command]()
except (OSError, ValueError) as e:
    print(f"the launch data is unusable: {e}", file=sys.stderr)
    sys.exit(2)
PY

helper() {
    python3 "$helper_py" "$conf" "$workdir" "$@"
}

# The fields stackbinder wrote itself. Without them there is nobody to
# report to, so all we can do is say so on the console.
if ! prepared=$(helper prepare); then
    say "cannot read the launch data in $conf; giving up"
    exit 1
fi
{
    read -r vm_id
    read -r port
    read -r callback_url
    read -r base_url
    read -r home_serial
} <<<"$prepared"
say "launching VM $vm_id; Jupyter will listen on port $port"

# post FILE: send one report, retrying while stackbinder is unreachable,
# overloaded (429) or failing (5xx). 409 means the VM is being deleted.
post() {
    local attempt code
    for ((attempt = 1; attempt <= retries; attempt++)); do
        code=$(curl --silent --output /dev/null --write-out '%{http_code}' \
            --proto '=http,https' --max-time 20 \
            --header @"$workdir/callback-header" \
            --header 'Content-Type: application/json' \
            --data-binary @"$1" --url "$callback_url") || code=000
        case $code in
        2??) return 0 ;;
        409)
            say "stackbinder no longer expects this VM (HTTP 409); stopping"
            stop_r2d
            exit 0
            ;;
        429 | 5?? | 000) sleep "$retry_delay" ;;
        *)
            say "stackbinder refused a report (HTTP $code)"
            return 1
            ;;
        esac
    done
    say "stackbinder did not answer after $retries attempts; going on"
    return 1
}

# report PHASE [PORT]: send the log lines not sent yet, in batches, with
# the phase (empty: none) in the last batch.
report() {
    local more
    while :; do
        more=$(helper body "$1" "${2:-}" "${home_mounted:-}")
        [ "$more" != - ] || return 0
        post "$workdir/body.json" || true
        [ "$more" = 1 ] || return 0
    done
}

r2d_pid=
stop_r2d() {
    if [ -n "$r2d_pid" ] && kill -0 "$r2d_pid" 2>/dev/null; then
        kill "$r2d_pid" 2>/dev/null || true
    fi
}

# fail MESSAGE: the launch is over; tell stackbinder why, with the log.
fail() {
    trap - ERR
    helper note "stackbinder: $1" || true
    stop_r2d
    report failed
    say "failed: $1"
    exit 1
}
# Any command that fails unexpectedly ends the launch with a report. The
# trap also fires inside $(...); only the main shell reports.
on_error() {
    [ "$BASH_SUBSHELL" = 0 ] || exit 1
    fail "the launch script stopped unexpectedly (line $1)"
}
trap 'on_error $LINENO' ERR

# mount_home SERIAL: mount the owner's home volume at $home_mount, owned
# by the container's user (uid 1000). The disk is found by its serial,
# never by device name (vdb today may be vdc tomorrow). A filesystem is
# made only when blkid finds none (exit status 2): any other answer keeps
# the disk as it is, since mkfs on a used volume would erase the user's work.
mount_home() {
    local disk="$disks/virtio-$1" waited=0 status=0
    while [ ! -e "$disk" ]; do
        ((waited < disk_wait)) || fail "your storage did not appear as $disk"
        sleep 1
        waited=$((waited + 1))
    done
    blkid -p "$disk" >/dev/null 2>&1 || status=$?
    case $status in
    0) helper note "stackbinder: your storage has your work from earlier VMs" ;;
    2)
        helper note "stackbinder: preparing your new storage"
        # -F: never stop at a question (a whole disk, not a partition);
        # blkid has just said there is nothing on it to lose.
        mkfs.ext4 -F -q -L stackbinder-home "$disk" </dev/null ||
            fail "could not make a filesystem on your storage"
        ;;
    *) fail "could not read your storage (blkid exit status $status); it was left as it is" ;;
    esac
    mkdir -p "$home_mount"
    mount -o nodev,nosuid "$disk" "$home_mount" || fail "could not mount your storage"
    chown 1000:1000 "$home_mount"
    home_mounted=$home_mount
    helper note "stackbinder: your storage is mounted at /home/jovyan/work"
}

problem=$(helper check-user-values)
if [ -n "$problem" ]; then
    fail "$problem"
fi
if [ "$home_serial" != - ]; then
    mount_home "$home_serial"
fi
report cloning

helper exec-r2d "$r2d" "$config_dir" "$home_mount" >"$workdir/repo2docker.log" 2>&1 </dev/null &
r2d_pid=$!

# relay_phases: report each phase repo2docker has newly entered, once.
reported=" cloning "
relay_phases() {
    local phase
    # The phases are fixed words from the helper's table, safe to split.
    for phase in $(helper relay); do
        # `failed` is ours to report, with the reason, when repo2docker exits.
        if [ "$phase" != failed ] && [[ $reported != *" $phase "* ]]; then
            reported+="$phase "
            say "$phase"
            report "$phase"
        fi
    done
}

while :; do
    relay_phases
    # Jupyter answers on the published port, under its base URL: the
    # launch worked.
    if curl --silent --fail --output /dev/null --max-time 2 \
        --url "http://127.0.0.1:${port}${base_url}api"; then
        relay_phases
        helper note "stackbinder: Jupyter answers on port $port"
        report ready "$port"
        say "ready on port $port"
        exit 0
    fi
    if ! kill -0 "$r2d_pid" 2>/dev/null; then
        status=0
        wait "$r2d_pid" || status=$?
        relay_phases
        fail "repo2docker stopped (exit status $status) before Jupyter answered; last line: $(helper last-line)"
    fi
    if ((SECONDS > deadline)); then
        fail "Jupyter did not answer in time"
    fi
    report ""
    sleep "$tick"
done
