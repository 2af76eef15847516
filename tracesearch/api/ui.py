"""Zipkin's UI, Lens (Apache-2.0), served at ``TRACESEARCH_UI_BASE_PATH`` (``/zipkin``, Lens's own).

Lens is a static single-page app that speaks the Zipkin v2 read API. Everything about it is here:

- **The release.** Lens is not published on its own: its files are inside zipkin-server's exec jar on
  Maven Central (``BOOT-INF/lib/zipkin-lens-<version>.jar``, folder ``zipkin-lens/``). ``extract``
  checks the jar against the SHA-256 pinned below and writes only Lens's files into a folder
  (``python -m tracesearch fetch-ui`` and the dev stack call it; the service never downloads).
- **Start-up.** A missing UI stops the service at start rather than answering 500s: ``Settings.check``
  refuses a folder without ``index.html`` (gunicorn's master runs it), ``install`` a page that loads a
  file the folder lacks, or a base path it cannot move the page to.
- **Serving.** What Lens derives from ``<base href>`` in its ``index.html`` (see zipkin-lens
  ``src/constants/api.ts``): its router's base, ``<base>/config.json``, and its API at
  ``<base>/api/v2/...``. So the Zipkin query blueprint is mounted a second time below the base path,
  as Zipkin's own server does (``ZipkinHttpConfiguration``: the query API also under ``/zipkin``),
  and the client-side routes (``/``, ``/traces/<id>``, ``/dependency``, ``/traceViewer``: Lens's
  ``App.tsx``) answer ``index.html``.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any, cast

import orjson
from flask import Flask, Response, current_app, send_from_directory
from marshmallow import Schema, fields
from werkzeug.exceptions import NotFound as FileNotFound

from tracesearch.api import errors, zipkin
from tracesearch.api.blueprint import BINARY, Blueprint, ErrorFormat
from tracesearch.api.http_errors import NotFound
from tracesearch.api.openapi import Mount
from tracesearch.api.params import path_parameter
from tracesearch.settings import Settings, ui_dir_problem

EXTENSION = "tracesearch.ui"
# The path Lens is built for: its index.html says <base href="/zipkin/"> and loads /zipkin/static/...
LENS_BASE = "/zipkin"
# Written by ``extract`` beside Lens's files: names the release, and marks the folder as ours to replace.
MARKER = ".tracesearch-lens"
INDEX = "index.html"
# The Zipkin query blueprint's second registration, below the base path.
ZIPKIN_MOUNT = "zipkin_query_ui"
# Content-hashed names (static/js/index.c42cd5c9.js): a new release has new names, so they never change.
HASHED_FOLDER = "static/"
HASHED_MAX_AGE_S = 365 * 86400
# Zipkin's own server answers these (config.json, dependency graph colours).
LOW_ERROR_RATE = 0.5
HIGH_ERROR_RATE = 0.75
# Set here rather than guessed from the machine's MIME tables: a browser refuses a module script served
# under a non-JavaScript type, and those tables differ between systems.
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}


class UiAssetsError(Exception):
    """Lens's files cannot be fetched, extracted or served; the message says what to do."""


class ChecksumMismatch(UiAssetsError):
    """The downloaded jar is not the pinned release."""


# ------------------------------------------------------------------------------------------ the release


@dataclass(frozen=True)
class Release:
    """One zipkin-server release whose exec jar carries Lens."""

    version: str
    # Of the exec jar as Maven Central serves it: computed once when the version was chosen, pinned here.
    sha256: str
    size_mb: int

    @property
    def coordinates(self) -> str:
        return f"io.zipkin:zipkin-server:{self.version}:jar:exec"

    @property
    def file_name(self) -> str:
        return f"zipkin-server-{self.version}-exec.jar"

    @property
    def url(self) -> str:
        return f"https://repo1.maven.org/maven2/io/zipkin/zipkin-server/{self.version}/{self.file_name}"

    @property
    def lens_jar(self) -> str:
        return f"BOOT-INF/lib/zipkin-lens-{self.version}.jar"


LENS = Release("3.6.1", "d8326e0ed4f43855dba81228f688554706e52578a7c782d9a90b73f8680654a1", 135)
LENS_FOLDER = "zipkin-lens/"  # inside the Lens jar


def verify(jar: Path, release: Release = LENS) -> None:
    """Refuse ``jar`` unless its SHA-256 is the pinned one."""
    try:
        with jar.open("rb") as stream:
            actual = hashlib.file_digest(stream, "sha256").hexdigest()
    except OSError as exc:
        raise UiAssetsError(f"cannot read {jar}: {exc.strerror}") from exc
    if actual != release.sha256:
        raise ChecksumMismatch(
            f"{jar} has SHA-256 {actual}, not the pinned {release.sha256} of {release.coordinates}: "
            "a corrupt or altered download, refused (nothing was extracted). Delete it, and Maven's copy under "
            f"~/.m2/repository/io/zipkin/zipkin-server/{release.version}/ if there is one, then fetch again"
        )


def extract(jar: Path, into: Path, release: Release = LENS) -> list[str]:
    """Check ``jar``, then make ``into`` hold exactly Lens's files (a previous fetch is replaced); return
    their paths. The folder is written beside ``into`` and renamed into place, so a service never sees
    half of it; a running service keeps the page it read at start, so restart it after a new release."""
    into = into.resolve()  # "." has no name to put the staging folder beside
    _check_replaceable(into)
    verify(jar, release)
    into.parent.mkdir(parents=True, exist_ok=True)
    staging = into.with_name(f".{into.name}.fetching")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        names = _write_lens_files(jar, release, staging)
        (staging / MARKER).write_text(f"{release.coordinates} sha256={release.sha256}\n")
        _swap(staging, into)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names


def _check_replaceable(into: Path) -> None:
    """Only an empty folder or an earlier fetch is replaced: ``--into`` a wrong folder must not empty it."""
    if not into.exists():
        return
    if not into.is_dir():
        raise UiAssetsError(f"{into} is a file, not a folder")
    if any(into.iterdir()) and not (into / MARKER).is_file():
        raise UiAssetsError(f"{into} is not empty and was not made by fetch-ui: choose a new or empty folder")


def _write_lens_files(jar: Path, release: Release, folder: Path) -> list[str]:
    try:
        with zipfile.ZipFile(jar) as outer:
            inner = outer.read(release.lens_jar)
        names = []
        with zipfile.ZipFile(io.BytesIO(inner)) as lens:
            for info in lens.infolist():
                if info.is_dir() or not info.filename.startswith(LENS_FOLDER):
                    continue
                relative = info.filename.removeprefix(LENS_FOLDER)
                target = folder.joinpath(*_safe_parts(relative))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(lens.read(info))
                names.append(relative)
    except KeyError:
        raise UiAssetsError(
            f"{jar} has no {release.lens_jar}: not zipkin-server {release.version}'s exec jar"
        ) from None
    except zipfile.BadZipFile as exc:
        raise UiAssetsError(f"{jar} is not a valid jar ({exc})") from exc
    if INDEX not in names:
        raise UiAssetsError(f"{jar}: {release.lens_jar} has no {LENS_FOLDER}{INDEX}")
    return sorted(names)


def _safe_parts(relative: str) -> tuple[str, ...]:
    """The parts of a path from the jar, refused if it could leave the folder."""
    path = PurePosixPath(relative)
    if path.is_absolute() or "\\" in relative or any(part in ("..", ".") for part in path.parts):
        raise UiAssetsError(f"refused a file outside the UI's folder: {relative!r}")
    return path.parts


def _swap(staging: Path, into: Path) -> None:
    old = into.with_name(f".{into.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if into.exists():
        into.rename(old)
    staging.rename(into)
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------------------------- start-up


@dataclass(frozen=True)
class Lens:
    """What the views serve, prepared once at start."""

    folder: Path
    index_html: bytes
    config_json: bytes


def install(app: Flask, settings: Settings) -> list[Mount]:
    """Check the UI's folder and keep what the views serve in ``app``; return the blueprints to mount."""
    app.extensions[EXTENSION] = load(settings)
    base = settings.ui_base_path
    return [Mount(bp, base), Mount(zipkin.bp, base, name=ZIPKIN_MOUNT)]


def load(settings: Settings) -> Lens:
    problem = ui_dir_problem(settings.ui_dir)  # Settings.from_env said so already; an app built otherwise too
    if problem:
        raise UiAssetsError(problem)
    folder = Path(settings.ui_dir).expanduser()
    html = (folder / INDEX).read_text(encoding="utf-8")
    missing = [name for name in referenced_files(html) if not (folder / name).is_file()]
    if missing:
        raise UiAssetsError(
            f"TRACESEARCH_UI_DIR={settings.ui_dir}: {INDEX} loads {', '.join(missing)}, missing from the folder; "
            f"fetch the UI again with `python -m tracesearch fetch-ui --into {settings.ui_dir}`"
        )
    rebased = rebase(html, settings.ui_base_path)
    return Lens(folder, rebased.encode(), orjson.dumps(lens_config(settings)))


class _References(HTMLParser):
    """The ``src`` and ``href`` of a page's elements."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


def referenced_files(html: str) -> list[str]:
    """The files of the folder that a page loads (by Lens's base path, or relative to its <base>)."""
    parser = _References()
    parser.feed(html)
    names = []
    for value in parser.found:
        if value.startswith(f"{LENS_BASE}/"):
            names.append(value.removeprefix(f"{LENS_BASE}/"))
        elif not value.startswith("/") and ":" not in value:
            names.append(value.removeprefix("./"))
    return [name for name in names if name]


def rebase(html: str, base: str) -> str:
    """``index.html`` for the UI served at ``base``, as Zipkin's server rewrites it for its
    ``zipkin.ui.basepath`` (``ZipkinUiConfiguration.maybeResource``): what the page loads becomes relative
    to ``<base href>``, which then names ``base``. Lens takes its routes, config and API URLs from that tag,
    and its script refers to its own files relative to it (``./static/media/...``)."""
    if base == LENS_BASE:
        return html
    tag = f'<base href="{LENS_BASE}/"'
    if tag not in html:
        raise UiAssetsError(
            f"TRACESEARCH_UI_BASE_PATH={base}: the UI's {INDEX} has no {tag}>, so it cannot be moved off "
            f"{LENS_BASE}; use Lens's own {INDEX} (fetch-ui) or TRACESEARCH_UI_BASE_PATH={LENS_BASE}"
        )
    relative = html.replace(f'="{LENS_BASE}/', '="./')
    return relative.replace('<base href="./"', f'<base href="{base}/"', 1)


def lens_config(settings: Settings) -> dict[str, Any]:
    """Lens's ``config.json``: the keys Zipkin's server writes (``ZipkinUiConfiguration.writeConfig``)."""
    return {
        "environment": "",
        "queryLimit": zipkin.DEFAULT_LIMIT,
        "defaultLookback": int(settings.zipkin_lookback_s * 1000),
        "searchEnabled": True,
        "logsUrl": None,
        "supportUrl": None,
        "archivePostUrl": None,
        "archiveUrl": None,
        # The dependency page reads /api/v2/dependencies, which the service graph fills.
        "dependency": {
            "enabled": settings.servicegraph_enabled,
            "lowErrorRate": LOW_ERROR_RATE,
            "highErrorRate": HIGH_ERROR_RATE,
        },
    }


def check_routes(app: Flask, base: str) -> None:
    """Refuse a base path that would shadow or be shadowed by the service's own routes (``/api``)."""
    ours = {bp.name, ZIPKIN_MOUNT}
    clashing = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if (rule.rule == base or rule.rule.startswith(f"{base}/")) and rule.endpoint.split(".")[0] not in ours
    )
    if clashing:
        raise UiAssetsError(
            f"TRACESEARCH_UI_BASE_PATH={base} holds routes of the service ({', '.join(clashing[:3])}): choose another"
        )


# ---------------------------------------------------------------------------------------------- serving

bp = Blueprint(
    "ui",
    __name__,
    description="Zipkin's UI (Lens) and what it reads at start; its API calls go to <base path>/api/v2/...",
    errors=ErrorFormat(errors.render_json, errors.JsonError),
)
HTML = {"type": "string"}


class DependencyConfig(Schema):
    enabled = fields.Boolean(metadata={"description": "the dependency page is shown (the service graph is on)"})
    lowErrorRate = fields.Float(metadata={"description": "share of failed calls drawing a link yellow"})
    highErrorRate = fields.Float(metadata={"description": "share of failed calls drawing a link red"})


class LensConfig(Schema):
    environment = fields.String(metadata={"description": "shown in the header; empty"})
    queryLimit = fields.Integer(metadata={"description": "traces per search by default"})
    defaultLookback = fields.Integer(metadata={"description": "ms; TRACESEARCH_ZIPKIN_DEFAULT_LOOKBACK"})
    searchEnabled = fields.Boolean()
    logsUrl = fields.String(allow_none=True, metadata={"description": "none"})
    supportUrl = fields.String(allow_none=True, metadata={"description": "none"})
    archivePostUrl = fields.String(allow_none=True, metadata={"description": "none"})
    archiveUrl = fields.String(allow_none=True, metadata={"description": "none"})
    dependency = fields.Nested(DependencyConfig)


def _lens() -> Lens:
    return cast(Lens, current_app.extensions[EXTENSION])


def _index() -> Response:
    # no-cache: a browser revalidates, so a new release's page (naming new script files) is seen at once.
    return Response(_lens().index_html, 200, mimetype="text/html", headers={"Cache-Control": "no-cache"})


@bp.get("/")
@bp.answers("Lens's index.html", HTML, content_type="text/html")
def index() -> Response:
    """Zipkin's UI (Lens): its search page"""
    return _index()


@bp.get("/index.html")
@bp.answers("Lens's index.html", HTML, content_type="text/html")
def index_html() -> Response:
    """Zipkin's UI (Lens): its index.html"""
    return _index()


@bp.get("/traces/<trace_id>", parameters=[path_parameter("trace_id", "the trace id; Lens fetches the trace")])
@bp.answers("Lens's index.html; Lens then shows the trace", HTML, content_type="text/html")
def trace_page(trace_id: str) -> Response:
    """Zipkin's UI (Lens): a trace (client-side route)"""
    return _index()


@bp.get("/traceViewer")
@bp.answers("Lens's index.html; Lens then opens a trace from a JSON file", HTML, content_type="text/html")
def trace_viewer_page() -> Response:
    """Zipkin's UI (Lens): the trace viewer (client-side route)"""
    return _index()


@bp.get("/dependency")
@bp.answers("Lens's index.html; Lens then draws the dependency graph", HTML, content_type="text/html")
def dependency_page() -> Response:
    """Zipkin's UI (Lens): the dependency graph (client-side route)"""
    return _index()


@bp.get("/config.json")
@bp.answers("what Lens reads at start", LensConfig)
def config() -> Response:
    """Zipkin's UI (Lens): its configuration"""
    return Response(_lens().config_json, 200, mimetype="application/json", headers={"Cache-Control": "no-cache"})


@bp.get("/<path:filename>", parameters=[path_parameter("filename", "a file of the UI's folder, e.g. favicon.ico")])
@bp.answers("the file, with its content type", BINARY, content_type="*/*")
@bp.fails(404)
def asset(filename: str) -> Response:
    """Zipkin's UI (Lens): its scripts, styles and images"""
    if any(part.startswith(".") for part in filename.split("/")):  # the marker; never a file of Lens's
        raise NotFound(f"no file {filename} in the UI")
    hashed = filename.startswith(HASHED_FOLDER)
    try:
        response = send_from_directory(
            _lens().folder,
            filename,
            mimetype=CONTENT_TYPES.get(PurePosixPath(filename).suffix),
            max_age=HASHED_MAX_AGE_S if hashed else None,
        )
    except FileNotFound:
        raise NotFound(f"no file {filename} in the UI") from None
    if hashed:
        response.cache_control.immutable = True
    return response
