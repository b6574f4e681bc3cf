# shellcheck shell=bash
# stackbinder image build --prebuild: the images of the course repositories
# pinned in `[pool] repos`, built under the names BinderHub would give them,
# so that repo2docker's find_image finds them at launch and skips the build,
# even on a VM booted cold from the snapshot.
#
# A bash library, sourced by build-image.sh (and by its sandbox test). The
# caller defines
#   say TEXT       report progress; TEXT is what a failure is reported as
#   as_ubuntu CMD  run CMD as the user the launch script builds as
# and runs with `set -Eeuo pipefail` and an ERR trap, so the first command
# that fails ends the build with the last `say`, which names the repository.
#
# The repositories come from the settings JSON (data, never shell code):
#   {"pinned": [{"repo": "https://...", "ref": "main"}, ...]}

# build_pinned SETTINGS R2D IMAGE_NAME_PY
build_pinned() {
    local conf=$1 r2d=$2 namer=$3 repo ref commit name
    while IFS= read -r -d '' repo && IFS= read -r -d '' ref; do
        # What BinderHub does: a full commit id is taken as it is, anything
        # else is resolved with `git ls-remote` (its first match).
        say "resolving $ref of $repo"
        if [[ $ref =~ ^[0-9a-f]{40}$ ]]; then
            commit=$ref
        else
            commit=$(git ls-remote -- "$repo" "$ref" | awk 'NR == 1 { print $1 }')
            [[ $commit =~ ^[0-9a-f]{40}$ ]]
        fi
        name=$(python3 "$namer" "$repo" "$commit")
        say "pre-building $repo at $ref ($commit) as $name"
        as_ubuntu "$r2d" --no-run --user-id=1000 --user-name=jovyan \
            --image-name "$name" --ref "$commit" -- "$repo"
    done < <(python3 -c '
import json, sys
for pin in json.load(open(sys.argv[1])).get("pinned", []):
    sys.stdout.write(pin["repo"] + "\0" + pin["ref"] + "\0")
' "$conf")
}
