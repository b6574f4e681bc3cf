#!/bin/bash
# stackbinder image build. cloud-init runs it once, as root, on the builder
# VM (see cloud-init/base-image.yaml):
#   stackbinder-build-image /etc/stackbinder/image.json
# and powers the VM off afterwards. It ends by printing one marker line on
# the console, which the image builder greps from the console output:
#   STACKBINDER-IMAGE-BUILD: OK
#   STACKBINDER-IMAGE-BUILD: FAILED: <reason>
# No OK line means the build failed, even if the VM died before saying so.
#
# The settings (repo2docker version, Docker MTU, repositories to pre-build,
# the pinned repositories of `image build --prebuild`) are JSON data, read
# by python3 and passed as separate arguments: nothing from the
# configuration is evaluated as shell. build-pinned.sh and image_name.py
# land in /usr/local/lib/stackbinder beside it.
set -Eeuo pipefail

conf=${1:-/etc/stackbinder/image.json}
lib=/usr/local/lib/stackbinder
venv=/opt/repo2docker
r2d=$venv/bin/jupyter-repo2docker
marker=STACKBINDER-IMAGE-BUILD

# marker TEXT: on stdout (cloud-init's log) and straight on the console,
# which is what os-getConsoleOutput shows.
marker() {
    printf '%s: %s\n' "$marker" "$1"
    printf '%s: %s\n' "$marker" "$1" >/dev/console 2>/dev/null || true
}

step=starting
on_error() {
    [ "$BASH_SUBSHELL" = 0 ] || exit 1
    trap - ERR
    marker "FAILED: $step"
    exit 1
}
trap on_error ERR

say() {
    step=$1
    printf 'stackbinder-build-image: %s\n' "$1"
}

# setting KEY: one value of the settings (a string or a number).
setting() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$conf" "$1"
}

say "reading the settings"
version=$(setting repo2docker_version)
mtu=$(setting docker_mtu)
case $mtu in
'' | *[!0-9]*) false ;;
esac

say "configuring Docker with MTU $mtu"
mkdir -p /etc/docker
python3 -c 'import json, sys; json.dump({"mtu": int(sys.argv[1])}, open(sys.argv[2], "w"))' \
    "$mtu" /etc/docker/daemon.json
systemctl restart docker
docker info --format '{{.ServerVersion}}' >/dev/null
docker buildx version

say "installing jupyter-repo2docker $version into $venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --no-cache-dir --upgrade pip
"$venv/bin/pip" install --quiet --no-cache-dir "jupyter-repo2docker==$version"
installed=$("$r2d" --version)
[ "$installed" = "$version" ]

say "putting ubuntu in the docker group"
usermod -aG docker ubuntu

# as_ubuntu CMD: as the launch script builds (same user, same user id).
as_ubuntu() {
    (cd / && sudo -u ubuntu -H "$@")
}

# Build each repository once, so its layers are in Docker's cache when a
# user launches it.
say "pre-building repositories"
while IFS= read -r -d '' repo; do
    say "pre-building $repo"
    as_ubuntu "$r2d" --no-run --user-id=1000 --user-name=jovyan -- "$repo"
done < <(python3 -c '
import json, sys
for repo in json.load(open(sys.argv[1]))["prebuild"]:
    sys.stdout.write(repo + "\0")
' "$conf")

# `image build --prebuild`: the pinned repositories' images, named as
# BinderHub names them, so a launch of one of them skips the build.
# build-pinned.sh lands beside this script on the builder and is checked
# on its own (CI runs shellcheck on every cloud-init/*.sh).
# shellcheck disable=SC1091
. "$lib/build-pinned.sh"
build_pinned "$conf" "$r2d" "$lib/image_name.py"

say "recording what the image holds"
mkdir -p /etc/stackbinder
python3 - "$conf" "$installed" /etc/stackbinder/image-manifest.json <<'PY'
import datetime, json, subprocess, sys
conf, version, out = sys.argv[1:4]
images = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                        capture_output=True, text=True, check=True).stdout.split()
json.dump({
    "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    "repo2docker_version": version,
    "prebuild": json.load(open(conf))["prebuild"],
    "pinned": json.load(open(conf)).get("pinned", []),
    "docker_images": images,
}, open(out, "w"), indent=2)
PY

say "cleaning up"
apt-get clean
rm -rf /var/lib/apt/lists/* /root/.cache/pip /home/ubuntu/.cache/pip
# Every VM made from the snapshot must get its own machine id (DHCP client
# ids derive from it); an empty file makes systemd generate one at boot.
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id

marker OK
