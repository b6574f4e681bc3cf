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
# Everything from the launch data is handled by the Python helper
# (launch_helper.py, next to image_name.py):
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
# cloud-init/launch_helper.py, from the user data: the only code that reads
# the boot data and the assignment.
helper_py=${STACKBINDER_HELPER:-/usr/local/lib/stackbinder/launch_helper.py}
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
