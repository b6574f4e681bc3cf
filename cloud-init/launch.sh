#!/bin/bash
# stackbinder launch script. cloud-init runs it once, as root, at first boot:
#   stackbinder-launch /etc/stackbinder/launch.json
# It builds the user's repository with repo2docker as user `ubuntu`, starts
# Jupyter on a fixed port with a token stackbinder chose, and reports its
# progress to stackbinder. Every value from the user is read from the JSON
# file and passed as a separate argument: nothing is evaluated as shell.
set -euo pipefail

conf=${1:-/etc/stackbinder/launch.json}
workdir=/var/lib/stackbinder
mkdir -p "$workdir"
chmod 700 "$workdir"
log="$workdir/launch.log"
: >"$log"

# Print one field of the launch data.
field() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$conf" "$1"
}

vm_id=$(field vm_id)
repo=$(field repo)
git_ref=$(field git_ref)
port=$(field jupyter_port)
callback_url=$(field callback_url)

# The secrets go to files only readable by root, never onto the console
# or a command line.
umask 077
printf 'Authorization: Bearer %s\n' "$(field callback_secret)" >"$workdir/callback-header"
jupyter_token=$(field jupyter_token)

seq=0
# report PHASE [PORT]: send the phase and the log lines not sent yet.
sent_lines=0
report() {
    local phase=$1 port_arg=${2:-} body total
    seq=$((seq + 1))
    total=$(wc -l <"$log")
    body=$(python3 - "$vm_id" "$seq" "$phase" "$port_arg" "$log" "$sent_lines" <<'PY'
import json, sys
vm, seq, phase, port, path, skip = sys.argv[1:7]
with open(path, errors="replace") as f:
    lines = [line.rstrip("\n")[:500] for line in f][int(skip):][-200:]
print(json.dumps({"vm": vm, "seq": int(seq), "phase": phase or None,
                  "port": int(port) if port else None, "log": lines}))
PY
)
    sent_lines=$total
    curl --silent --show-error --output /dev/null --fail \
        --retry 20 --retry-delay 3 --retry-all-errors --max-time 20 \
        -H @"$workdir/callback-header" -H 'Content-Type: application/json' \
        --data-binary "$body" "$callback_url" || echo "stackbinder: could not report $phase" >&2
}

fail() {
    echo "$1" >>"$log"
    report failed
    exit 1
}

report cloning
# The redirections are meant to be done by root, into root's log.
# shellcheck disable=SC2024
sudo -u ubuntu -H git clone --quiet -- "$repo" /home/ubuntu/repo >>"$log" 2>&1 \
    || fail "git clone failed"
# shellcheck disable=SC2024
sudo -u ubuntu -H git -C /home/ubuntu/repo checkout --quiet "$git_ref" -- >>"$log" 2>&1 \
    || fail "git checkout of the requested ref failed"

report building
# repo2docker builds the image and then runs it; it keeps running while
# Jupyter does, so it goes to the background and we watch the port. The
# token reaches Jupyter through its environment, not its command line.
# shellcheck disable=SC2024
sudo -u ubuntu -H /opt/repo2docker/bin/jupyter-repo2docker \
    --user-id 1000 --user-name jovyan \
    --env "JUPYTER_TOKEN=${jupyter_token}" \
    --publish "0.0.0.0:${port}:8888" \
    /home/ubuntu/repo \
    jupyter lab --ip=0.0.0.0 --port=8888 --no-browser >>"$log" 2>&1 &
r2d=$!

started=0
for _ in $(seq 1 720); do
    if ! kill -0 "$r2d" 2>/dev/null; then
        fail "repo2docker stopped before Jupyter answered"
    fi
    if [ "$started" = 0 ] && grep -q 'Successfully built\|Reusing existing image' "$log"; then
        report starting
        started=1
    fi
    if curl --silent --fail --max-time 2 "http://127.0.0.1:${port}/api" >/dev/null; then
        report ready "$port"
        exit 0
    fi
    sleep 5
done
fail "Jupyter did not answer within an hour"
