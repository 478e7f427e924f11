"""Image references checked as Docker parses them: `[registry[:port]/]path[:tag][@digest]`.

`docker stack deploy` refuses a bad reference ("invalid reference format"),
often one an unset `${TAG}` left as `nginx:`; swarmpy says so before anything
is sent, naming the key.
"""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9_-]*[a-zA-Z0-9])"  # `_` too: the specification shows one
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)(?::{_TAG})?(?:@{_DIGEST})?$")


def check_image(reference: str) -> None:
    """Raise ValueError when `reference` is not an image reference Docker accepts."""
    match = _REFERENCE.match(reference)
    name_length = len(match.group("domain") or "") + len(match.group("path")) if match else 0
    if not match or name_length > 255:
        raise ValueError(f"{reference!r} is not an image reference (like nginx:1.25 or registry:5000/team/app:2)")
