"""The dashboard at /ui/ (`swarmpy manager` serves it on the API's address and port).

Server-rendered pages (Jinja2) and one small script, no build step: the node grid with its task
cards, the stacks and services, a service's page. The script follows the store's event stream
(server-sent events, `/ui/events`) and fetches the changed fragment again; its two actions
(scale a service, set a node's availability) are the API's own routes (see `board.call`).

Who may look: the cluster token, sent as `Authorization: Bearer` or given once to the login
page (a session cookie, see `session`; changes then need the page's CSRF token). A stack token
is refused: the dashboard shows the whole cluster (its nodes and every stack), which such a
token may not read through the API either.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request, url_for

from swarmpy.manager import access
from swarmpy.manager.context import ManagerContext
from swarmpy.manager.ui import board, session

log = logging.getLogger(__name__)

NAME = "ui"
# cheroot serves the API with a pool of 16 threads (server.run) and an event stream holds one:
# a few streams at once, each for a few minutes (EventSource then reconnects where it left off).
MAX_STREAMS = 4
STREAM_LIFETIME = 300.0  # seconds
BLOCK_MS = 3000  # under the store's socket timeout (5 s); each empty wait writes a keep-alive
RETRY_MS = 2000  # how soon EventSource comes back after a stream ends
EVENT_ID = re.compile(r"\d{1,20}-\d{1,20}\Z")
STACK_TOKEN_REFUSED = ("forbidden: the dashboard shows the whole cluster; log in with the cluster token "
                       "(a stack token reads its stack with `swarmpy stack ps`)")
PAGES = {f"{NAME}.index", f"{NAME}.service_page"}  # without a login, these send the browser to it
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch)) if epoch else "–"


def blueprint(ctx: ManagerContext) -> Blueprint:
    bp = Blueprint(NAME, __name__, url_prefix="/ui", template_folder="templates", static_folder="static")
    store = ctx.store
    streams = threading.BoundedSemaphore(MAX_STREAMS)

    @bp.before_request
    def identify():
        """The caller, from a bearer token or the session cookie; a change made with the cookie
        must carry the session's CSRF token (SameSite=Strict already keeps other sites' forms out)."""
        g.csrf = None
        if request.endpoint in (f"{NAME}.login", f"{NAME}.static"):
            return None
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            g.caller = access.identify(store, ctx.token, header[7:])
        else:
            current = session.current(ctx.token)
            g.caller = access.Caller() if current else None  # only the cluster token logs in
            if current and request.method == "POST" and not session.csrf_ok(current):
                return jsonify(error="forbidden: the page's CSRF token is missing or wrong (reload the page)"), 403
            g.csrf = current and current["csrf"]
        if g.caller is None:
            if request.method == "GET" and request.endpoint in PAGES:
                return redirect(url_for(f"{NAME}.login"))
            return jsonify(error="unauthorized: log in at /ui/login or send the cluster token"), 401
        if not g.caller.admin:
            return jsonify(error=STACK_TOKEN_REFUSED), 403
        return None

    @bp.after_request
    def secured(response: Response):
        response.headers.update(SECURITY_HEADERS)
        if request.endpoint != f"{NAME}.static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @bp.context_processor
    def helpers():
        return {"csrf": g.get("csrf"), "bytes": _bytes, "when": _when}

    # ---------------------------------------------------------------- login

    @bp.route("/login", methods=["GET", "POST"])
    def login():
        if request.method == "GET":
            return render_template("ui/login.html")
        caller = access.identify(store, ctx.token, request.form.get("token", "").strip())
        if caller is None:
            return render_template("ui/login.html", error="That is not the cluster's token."), 401
        if not caller.admin:
            return render_template("ui/login.html", error=STACK_TOKEN_REFUSED), 403
        response = redirect(url_for(f"{NAME}.index"), 303)
        session.start(response, ctx.token)
        return response

    @bp.post("/logout")
    def logout():
        response = jsonify(logged_out=True)
        session.end(response)
        return response

    # ---------------------------------------------------------------- pages and their fragments

    @bp.get("/")
    def index():
        return render_template("ui/index.html", **board.grid(store), **board.stacks(store))

    @bp.get("/board")
    def board_fragment():
        return render_template("ui/_board.html", **board.grid(store), **board.stacks(store))

    @bp.get("/services/<ref>")
    def service_page(ref):
        return render_template("ui/service.html", ref=ref, log_lines=board.LOG_LINES, **board.service(store, ref))

    @bp.get("/services/<ref>/part")
    def service_fragment(ref):
        return render_template("ui/_service.html", ref=ref, **board.service(store, ref))

    @bp.get("/services/<ref>/logs")
    def service_logs(ref):
        return Response(board.logs(store, ref), mimetype="text/plain")

    # ---------------------------------------------------------------- actions: the API's routes

    @bp.post("/services/<ref>/scale")
    def scale(ref):
        body = request.get_json(silent=True) or {}
        return board.call(store, "PATCH", f"/services/{board.quoted(ref)}", {"replicas": body.get("replicas")})

    @bp.post("/nodes/<ref>/availability")
    def availability(ref):
        body = request.get_json(silent=True) or {}
        return board.call(store, "PATCH", f"/nodes/{board.quoted(ref)}", {"availability": body.get("availability")})

    # ---------------------------------------------------------------- live updates

    @bp.get("/events")
    def events():
        """Server-sent events: one message per batch of the store's events (the page fetches
        again what it shows). A stream lasts STREAM_LIFETIME; its last id brings the browser
        back where it left off (Last-Event-ID)."""
        if not streams.acquire(blocking=False):
            return jsonify(error=f"too many event streams open (at most {MAX_STREAMS})"), 503, {"Retry-After": "5"}
        try:
            since = request.headers.get("Last-Event-ID", "")
            if not EVENT_ID.match(since):
                since = store.last_event_id()
            response = Response(_stream(store, since), mimetype="text/event-stream",
                                headers={"X-Accel-Buffering": "no"})
        except BaseException:
            streams.release()
            raise
        response.call_on_close(streams.release)  # when the stream ends, or the client goes
        return response

    return bp


def _stream(store, since: str):
    deadline = time.monotonic() + STREAM_LIFETIME
    yield f"retry: {RETRY_MS}\n\n"
    while time.monotonic() < deadline:
        try:
            found = store.read_events(since, block_ms=BLOCK_MS, count=1000)
        except Exception as e:  # noqa: BLE001 - the store away: end, the browser comes back
            log.warning("ui: event stream: %s", e)
            return
        if found:
            since = found[-1][0]
            kinds = sorted({e.get("kind", "") for _, e in found})
            yield f"id: {since}\ndata: {json.dumps(kinds)}\n\n"
        else:
            yield ": idle\n\n"  # a write: a client gone is noticed here, not in STREAM_LIFETIME
