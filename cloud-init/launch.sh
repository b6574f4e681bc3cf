#!/bin/bash
# stackbinder launch script. cloud-init runs it once, as root, at first boot:
#   stackbinder-launch /etc/stackbinder/boot.json
#
# The boot data says only who the VM is and where stackbinder is, the same
# for a VM booted for a user and for a warm-pool VM booted ahead of
# demand. First the script asks stackbinder for the VM's job (a long-poll
# of GET assignment_url with the VM's boot secret) until it gets one, and
# writes it to assignment.json next to the boot data; a claimed pool VM
# gets a new secret with it, used for every report from then on.
#
# Then it runs repo2docker as user `ubuntu` on the user's repository at the
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

conf=${1:-/etc/stackbinder/boot.json}

# Knobs for the sandbox test (tests/api/launch_script.rs), which runs this
# script as an ordinary user with stub programs first on PATH. On a VM
# nothing sets them: cloud-init's runcmd passes no such variables and the
# user data cannot add any.
r2d=${STACKBINDER_R2D:-/opt/repo2docker/bin/jupyter-repo2docker}
# Where the image keeps repo2docker's configuration, and where a GPU
# launch writes its own next to it (readable by `ubuntu`, unlike $workdir).
config_dir=${STACKBINDER_CONFIG_DIR:-/etc/stackbinder}
workdir=${STACKBINDER_WORKDIR:-/var/lib/stackbinder}
# cloud-init/image_name.py, from the user data: the image name BinderHub
# would derive for a repository at a commit.
namer=${STACKBINDER_IMAGE_NAMER:-/usr/local/lib/stackbinder/image_name.py}
tick=${STACKBINDER_TICK_SECONDS:-5}
retry_delay=${STACKBINDER_RETRY_SECONDS:-3}
retries=${STACKBINDER_RETRIES:-40}
# Asking for the job: while stackbinder is unreachable, overloaded or
# failing, the script keeps asking for this many attempts (an hour at 3 s):
# an outage of stackbinder must not waste the VM. A held request lasts at
# most 300 s (provision.assignment_hold_seconds); curl waits longer.
ask_retries=${STACKBINDER_ASK_RETRIES:-1200}
ask_max_time=330
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
"""The launch script's data handling: the only code that reads the boot
data and the assignment."""
import importlib.util, json, os, re, subprocess, sys

conf_path, workdir, command, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
# The VM's job, next to the boot data, once stackbinder gave it.
ASSIGNMENT = os.path.join(os.path.dirname(os.path.abspath(conf_path)), "assignment.json")
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


def load(path, what):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"the {what} is not a JSON object")
    return data


def conf():
    """The boot data, merged with the assignment once there is one: a
    rotated secret (the assignment's `callback_secret`) replaces the boot
    secret, which is kept as `boot_secret` only to be redacted."""
    data = load(conf_path, "boot data")
    data["boot_secret"] = data.get("callback_secret")
    if os.path.exists(ASSIGNMENT):
        job = load(ASSIGNMENT, "assignment")
        rotated = job.pop("callback_secret", None)
        for key in ("vm_id", "callback_url", "assignment_url", "jupyter_port",
                    "prebuild", "boot_secret"):
            job.pop(key, None)  # stackbinder's own fields stay the boot data's
        data.update(job)
        if rotated is not None:
            data["callback_secret"] = rotated
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
    for key in ("jupyter_token", "callback_secret", "boot_secret"):
        secret = data.get(key)
        if isinstance(secret, str) and secret:
            line = line.replace(secret, "[redacted]")
    return CONTROL.sub(" ", line.rstrip())[:MAX_LINE]


def append(lines):
    with open(LOG, "a", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def url(data, key):
    value = text(data, key)
    if not re.fullmatch(r"https?://[!-~]+", value):
        raise ValueError(f"`{key}` is not an http(s) URL")
    return value


def vm_id(data):
    value = text(data, "vm_id")
    if not re.fullmatch(r"[0-9a-f-]{36}", value):
        raise ValueError("`vm_id` is not a UUID")
    return value


def write_header(data):
    """The callback header file: the secret never goes on a command line."""
    if not re.fullmatch(r"[!-~]+", text(data, "callback_secret")):
        raise ValueError("`callback_secret` is not printable ASCII")
    with open(os.path.join(workdir, "callback-header"), "w") as f:
        f.write(f"Authorization: Bearer {data['callback_secret']}\n")


def boot():
    """Check the boot data, write the header with the boot secret, and
    print the VM id and where to ask for the job."""
    data = conf()
    vm = vm_id(data)
    port(data)
    url(data, "callback_url")
    write_header(data)
    print(vm, url(data, "assignment_url"), sep="\n")


def take_assignment(path):
    """Keep stackbinder's answer as the VM's job, if it is a JSON object."""
    job = load(path, "assignment")
    secret = job.get("callback_secret")
    if secret is not None and not (isinstance(secret, str) and re.fullmatch(r"[!-~]+", secret)):
        raise ValueError("`callback_secret` is not printable ASCII")
    with open(ASSIGNMENT + ".part", "w", encoding="utf-8") as f:
        json.dump(job, f)
    os.replace(ASSIGNMENT + ".part", ASSIGNMENT)
    os.remove(path)


def prepare():
    """Check the merged data, write the callback header file with the
    secret that acts for the VM now, and print the VM id, the port, the
    callback URL, the base URL and the home volume's serial."""
    data = conf()
    vm = vm_id(data)
    login(data)
    gpu(data)
    callback = url(data, "callback_url")
    if not re.fullmatch(r"[!-~]+", text(data, "jupyter_token")):
        raise ValueError("`jupyter_token` is not printable ASCII")
    write_header(data)
    print(vm, port(data), callback, base_url(data), home_serial(data) or "-", sep="\n")


def check_user_values():
    """Print why the user's values cannot be used, or nothing. The server
    validates them already; this is the last line of defence on the VM."""
    data = conf()
    for key, what in (("repo", "repository"), ("git_ref", "git ref")):
        problem = user_value(data.get(key), what)
        if problem:
            print(problem)
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


def namer(path):
    """cloud-init/image_name.py: the image name BinderHub would derive."""
    spec = importlib.util.spec_from_file_location("image_name", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.image_name


def user_value(value, what):
    """Why a repository or ref cannot be used, or None."""
    if not isinstance(value, str) or not value:
        return f"the {what} is missing"
    if value.startswith("-"):
        return f"the {what} starts with '-' and would be read as an option"
    if CONTROL.search(value) or len(value) > 2048:
        return f"the {what} contains control characters or is too long"
    return None


def resolve(repo, ref):
    """The commit `ref` names in `repo` (git ls-remote), or None."""
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref
    try:
        out = subprocess.run(["git", "ls-remote", "--", repo, ref], capture_output=True,
                             text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.stdout.splitlines():
        commit = line.split("\t", 1)[0]
        if re.fullmatch(r"[0-9a-f]{40}", commit):
            return commit
    return None


def image_present(name):
    try:
        found = subprocess.run(["docker", "image", "inspect", name], capture_output=True,
                               timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return found.returncode == 0


def prebuild(r2d, namer_path):
    """A pool VM builds the images of its pinned repositories ahead, under
    the names a launch of them looks for; each step is a console line."""
    data = conf()
    pinned = data.get("prebuild") or []
    if not isinstance(pinned, list):
        raise ValueError("`prebuild` is not a list")
    name_of = namer(namer_path) if pinned else None
    for entry in pinned:
        repo = entry.get("repo") if isinstance(entry, dict) else None
        ref = entry.get("git_ref") if isinstance(entry, dict) else None
        problem = user_value(repo, "repository") or user_value(ref, "git ref")
        if problem:
            print(f"prebuild skipped: {problem}", flush=True)
            continue
        commit = resolve(repo, ref)
        if commit is None:
            print(clean(f"prebuild skipped: {repo} at {ref} does not resolve", data), flush=True)
            continue
        name = name_of(repo, commit)
        print(clean(f"prebuilding {repo} at {commit} as {name}", data), flush=True)
        argv = ["sudo", "-u", "ubuntu", "-H", "--", r2d,
                "--config=/etc/stackbinder/repo2docker_config.py", "--no-run",
                "--image-name=" + name, "--ref=" + commit,
                "--user-id=1000", "--user-name=jovyan", "--", repo]
        with open(os.path.join(workdir, "prebuild.log"), "ab") as log:
            status = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd="/").returncode
        print(f"prebuilt {name}" if status == 0 else f"prebuild failed (exit status {status})",
              flush=True)


def prebuilt_image(data, namer_path):
    """The image of this launch's repository at its commit, if the VM has it
    (built ahead, or baked into the snapshot): repo2docker then finds it
    by name and skips the build."""
    try:
        commit = resolve(text(data, "repo"), text(data, "git_ref"))
        name = commit and namer(namer_path)(data["repo"], commit)
    except (OSError, ImportError, AttributeError):
        return None
    return name if name and image_present(name) else None


def r2d_argv(data, r2d, config, home_mount, image=None):
    """repo2docker's command line. The token is not on it: `--env NAME`
    without a value makes repo2docker take the value from its own
    environment. `--` ends the options, so the repository is never one.
    The home volume, mounted at `home_mount`, becomes /home/jovyan/work."""
    home = ["--volume=" + home_mount + ":/home/jovyan/work"] if home_serial(data) else []
    named = ["--image-name=" + image] if image else []
    return [
        r2d,
        "--config=" + config,
        "--json-logs",
        "--ref=" + text(data, "git_ref"),
        "--user-id=1000",
        "--user-name=jovyan",
        "--env=JUPYTER_TOKEN",
        f"--publish=0.0.0.0:{port(data)}:8888",
        *named,
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
    image = prebuilt_image(data, args[3])
    if image:
        note("stackbinder: environment prebuilt: starting without a build")
    argv = ["sudo", "-u", "ubuntu", "-H", "--preserve-env=JUPYTER_TOKEN", "--"]
    argv += r2d_argv(data, args[0], r2d_config(data, args[1]), args[2], image)
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


def body(phase, port_arg):
    """Write the next report to body.json: the next batch of log lines and,
    with the last batch, the phase. Print 1 if lines are left for another
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
    with open(os.path.join(workdir, "body.json"), "w") as f:
        json.dump(report, f)
    write_state("seq", seq)
    write_state("sent-lines", sent + len(batch))
    print(1 if more else 0)


try:
    {
        "boot": boot,
        "take-assignment": lambda: take_assignment(args[0]),
        "prepare": prepare,
        "check-user-values": check_user_values,
        "exec-r2d": exec_r2d,
        "prebuild": lambda: prebuild(args[0], args[1]),
        "relay": relay,
        "note": lambda: note(args[0]),
        "last-line": last_line,
        "body": lambda: body(args[0], args[1]),
    }[command]()
except (OSError, ValueError) as e:
    print(f"the launch data is unusable: {e}", file=sys.stderr)
    sys.exit(2)
PY

helper() {
    python3 "$helper_py" "$conf" "$workdir" "$@"
}

# The boot data. Without it there is nobody to ask or report to, so all
# we can do is say so on the console.
if ! booted=$(helper boot); then
    say "cannot read the boot data in $conf; giving up"
    exit 1
fi
{
    read -r vm_id
    read -r assignment_url
} <<<"$booted"

# retry_wait HEADERS: how long stackbinder asked us to wait (Retry-After,
# in seconds), else the usual delay.
retry_wait() {
    local asked
    asked=$(sed -n 's/^[Rr][Ee][Tt][Rr][Yy]-[Aa][Ff][Tt][Ee][Rr]: *\([0-9]\{1,4\}\).*/\1/p' "$1" 2>/dev/null | tail -n 1)
    printf '%s\n' "${asked:-$retry_delay}"
}

# ask_for_job: long-poll stackbinder for this VM's job until it has one.
# 204: nothing yet (a pool VM nobody claimed), ask again at once. 409: no
# job will come, stop. Unreachable, 429 or 5xx: wait and ask again, for a
# long while. 401 or anything else: give up.
ask_for_job() {
    local failures=0 code
    local body="$workdir/assignment.part" headers="$workdir/assignment.headers"
    while :; do
        rm -f "$body" "$headers"
        code=$(curl --silent --output "$body" --dump-header "$headers" \
            --write-out '%{http_code}' --proto '=http,https' --max-time "$ask_max_time" \
            --header @"$workdir/callback-header" \
            --get --data-urlencode "vm=$vm_id" --url "$assignment_url") || code=000
        case $code in
        200)
            if helper take-assignment "$body"; then
                return 0
            fi
            say "stackbinder's answer is not a job; giving up"
            exit 1
            ;;
        204) failures=0 ;;
        409)
            say "stackbinder no longer expects this VM (HTTP 409); stopping"
            exit 0
            ;;
        429 | 5?? | 000)
            failures=$((failures + 1))
            if ((failures >= ask_retries)); then
                say "stackbinder did not answer after $ask_retries attempts; giving up"
                exit 1
            fi
            sleep "$(retry_wait "$headers")"
            ;;
        *)
            say "stackbinder refused to give this VM its job (HTTP $code); giving up"
            exit 1
            ;;
        esac
    done
}

# A pool VM builds its pinned repositories first (nothing to do on a VM
# booted for its owner): a claim of one of them then starts at once.
helper prebuild "$r2d" "$namer" </dev/null | while IFS= read -r line; do say "$line"; done ||
    say "the prebuild stopped; going on without it"

say "VM $vm_id booted; asking stackbinder for its job"
ask_for_job

# The merged data. Without stackbinder's own fields there is nobody to
# report to, so all we can do is say so on the console.
if ! prepared=$(helper prepare); then
    say "cannot read the launch data in $conf and its assignment; giving up"
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
        more=$(helper body "$1" "${2:-}")
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

helper exec-r2d "$r2d" "$config_dir" "$home_mount" "$namer" >"$workdir/repo2docker.log" 2>&1 </dev/null &
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
