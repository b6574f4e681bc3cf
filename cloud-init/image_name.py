"""The image name BinderHub derives for a repository at a commit, so that
repo2docker's find_image finds an image built ahead under that name and
skips the build.

    python3 image_name.py <repo-url> <commit>    prints the name

BinderHub (binderhub/builder.py) names an image
`<prefix><safe slug>:<resolved ref>`, with `_` turned into `-` and all of it
in lower case, where the safe slug is the provider's build slug with every
character but ASCII letters and digits escaped as `-XX` (the hex of each
UTF-8 byte, as the escapism package does), cut so that the hash still
fits, and ended by `-` and the first 6 hex digits of the SHA-256 of the
slug. A GitHub repository's build slug is `<owner>-<name>`; any other
Git repository's is its URL. stackbinder uses no prefix.
"""
import hashlib
import re
import string
import sys

SAFE = frozenset(string.ascii_letters + string.digits)
GITHUB = re.compile(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?")
# Docker's limit on a repository name, as BinderHub enforces it.
LIMIT = 255
HASH_LENGTH = 6


def escape(text):
    return "".join(
        c if c in SAFE else "".join(f"-{byte:02X}" for byte in c.encode("utf-8"))
        for c in text
    )


def build_slug(repo):
    match = GITHUB.fullmatch(repo)
    return f"{match[1]}-{match[2]}" if match else repo


def safe_slug(slug, limit=LIMIT):
    digest = hashlib.sha256(slug.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    return f"{escape(slug)[:limit - HASH_LENGTH - 1]}-{digest}".lower()


def image_name(repo, commit):
    return f"{safe_slug(build_slug(repo))}:{commit}".replace("_", "-").lower()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: image_name.py <repo-url> <commit>")
    print(image_name(sys.argv[1], sys.argv[2]))
