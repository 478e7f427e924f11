"""Streamed answers (an exec's output, a service's logs): one JSON object a line, and a beat,
{"beat": 1}, when nothing else was said for BEAT seconds.

Under WSGI a write is the only way the API learns that a client went: the write after its socket
closed fails, and the server then closes the answer's generator. A silent stream that never wrote
held its API thread (one of 16), and what it had opened on the nodes, until its next line."""

from __future__ import annotations

import json
import time

BEAT = 5.0
BEAT_FRAME = '{"beat": 1}\n'


def frame(**fields) -> str:
    return json.dumps(fields) + "\n"


class Beat:
    """When a silent stream writes a beat: `said()` at each frame, `due()` when nothing came."""

    def __init__(self) -> None:
        self._said = time.monotonic()

    def said(self) -> None:
        self._said = time.monotonic()

    def due(self) -> bool:
        if time.monotonic() - self._said < BEAT:
            return False
        self._said = time.monotonic()
        return True
