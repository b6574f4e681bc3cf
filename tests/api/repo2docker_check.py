"""Feed the command line the launch script gave repo2docker to the real
repo2docker (installed from PyPI), which needs no Docker engine for this:
its own argument handling (`make_r2d`, the code behind the CLI) must
accept the flags, and its git content provider must clone the repository
and check out the requested ref.

    python repo2docker_check.py CHECKOUT_DIR ARG...

Prints what repo2docker understood, as JSON, for the Rust test to check.
"""
import json
import subprocess
import sys

from repo2docker import contentproviders
from repo2docker.__main__ import make_r2d

checkout, argv = sys.argv[1], sys.argv[2:]
r2d = make_r2d(argv)
# Only git: the other providers' detection asks the internet (Dataverse
# downloads its list of installations), and tests stay on 127.0.0.1.
r2d.content_providers = [contentproviders.Git]
r2d.fetch(r2d.repo, r2d.ref, checkout)
head = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=checkout)
print(
    json.dumps(
        {
            "repo": r2d.repo,
            "ref": r2d.ref,
            "json_logs": r2d.json_logs,
            "run": r2d.run,
            "ports": {k: list(v) for k, v in r2d.ports.items()},
            "environment": r2d.environment,
            "run_cmd": r2d.run_cmd,
            "user_id": r2d.user_id,
            "user_name": r2d.user_name,
            "volumes": r2d.volumes,
            "head": head.decode().strip(),
        }
    )
)
