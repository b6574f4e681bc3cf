"""The launch script's data handling (cloud-init/launch.sh): the only code
that reads the boot data and the assignment. User values stay data: they
reach git, repo2docker and docker as separate arguments, never a shell.

    python3 launch_helper.py <boot.json> <workdir> <command> [args...]
"""
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
        "boot": boot,
        "take-assignment": lambda: take_assignment(args[0]),
        "prepare": prepare,
        "check-user-values": check_user_values,
        "exec-r2d": exec_r2d,
        "prebuild": lambda: prebuild(args[0], args[1]),
        "relay": relay,
        "note": lambda: note(args[0]),
        "last-line": last_line,
        "body": lambda: body(*args[:3]),
    }[command]()
except (OSError, ValueError) as e:
    print(f"the launch data is unusable: {e}", file=sys.stderr)
    sys.exit(2)
