"""`lavimo serve`: one local web page over a search index (text box, video drop zone, animated results).

The page (``web/``) calls a small JSON API; every bad request gets a 4xx answer with one message and the
server keeps running:

- ``GET /api/info``: the library (clip count, run, search backend);
- ``GET /api/search?text=...&k=10`` or ``?motion=CLIP_ID``: ranked hits;
- ``POST /api/search/video`` (multipart field ``video``, optional ``k``): hits for an uploaded video;
- ``GET /api/preview/<clip_id>``: a hit's preview strip (PNG tiles side by side; the page shows one at a time).
"""

from __future__ import annotations

import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import werkzeug.serving
from flask import Flask, Response, jsonify, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer
from werkzeug.utils import secure_filename

from lavimo.io import LavimoInputError
from lavimo.search import MAX_K
from lavimo.search.previews import PREVIEW_FRAMES
from lavimo.search.query import Searcher

LOCALHOST = "127.0.0.1"  # never other interfaces: the page has no authentication
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
WEB_FILES = {"app.js": "text/javascript", "style.css": "text/css"}


def _web_file(name: str) -> bytes:
    return resources.files("lavimo.search").joinpath("web", name).read_bytes()


def _top_k(value: str | None, default: int = 12) -> int:
    if value in (None, ""):
        return default
    try:
        k = int(value)
    except ValueError:
        raise LavimoInputError("k", f"{value!r} is not a whole number") from None
    if not 1 <= k <= MAX_K:
        raise LavimoInputError("k", f"{k} is outside 1..{MAX_K}")
    return k


def create_app(searcher: Searcher) -> Flask:
    """The Flask app serving the page and the JSON API over ``searcher``."""
    app = Flask("lavimo.search.serve", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    index = searcher.index
    one_query_at_a_time = threading.Lock()  # the encoders are not meant for concurrent forward passes

    def answer(query: str, run_query: Any) -> Response:
        start = time.perf_counter()
        with one_query_at_a_time:
            hits = run_query()
        elapsed_ms = 1000 * (time.perf_counter() - start)
        return jsonify(
            query=query,
            elapsed_ms=elapsed_ms,
            hits=[
                {
                    "rank": hit.rank,
                    "clip_id": hit.clip_id,
                    "score": hit.score,
                    "caption": hit.caption,
                    "frames": PREVIEW_FRAMES if hit.preview_path else 0,
                }
                for hit in hits
            ],
        )

    @app.errorhandler(LavimoInputError)
    def bad_input(error: LavimoInputError) -> tuple[Response, int]:
        return jsonify(error=str(error)), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        return jsonify(error=f"{error.code} {error.name}: {error.description}"), error.code or 500

    @app.get("/")
    def page() -> Response:
        return Response(_web_file("index.html"), mimetype="text/html")

    @app.get("/static/<name>")
    def static_file(name: str) -> Response:
        if name not in WEB_FILES:
            return jsonify(error=f"no static file {name!r}"), 404
        return Response(_web_file(name), mimetype=WEB_FILES[name])

    @app.get("/api/info")
    def info() -> Response:
        return jsonify(clips=len(index), run=index.identity.run, backend=index.backend_kind)

    @app.get("/api/search")
    def search() -> Response:
        k = _top_k(request.args.get("k"))
        if "motion" in request.args:
            clip_id = request.args["motion"]
            return answer(f"motion {clip_id}", lambda: searcher.search_motion(clip_id, k))
        if "text" in request.args:
            text = request.args["text"]
            return answer(f'"{text}"', lambda: searcher.search_text(text, k))
        raise LavimoInputError("request", "give a text=... or motion=... parameter")

    @app.post("/api/search/video")
    def search_video() -> Response:
        k = _top_k(request.form.get("k"))
        upload = request.files.get("video")
        if upload is None or not upload.filename:
            raise LavimoInputError("request", "no video file in the 'video' field")
        name = secure_filename(upload.filename) or "upload"
        with tempfile.TemporaryDirectory(prefix="lavimo-query-") as folder:
            path = Path(folder) / name
            upload.save(path)
            try:
                return answer(f"video {upload.filename}", lambda: searcher.search_video(path, k))
            except LavimoInputError as error:  # name the upload, not the temporary copy
                raise LavimoInputError(upload.filename, error.problem) from error

    @app.get("/api/preview/<path:clip_id>")
    def preview(clip_id: str) -> Response:
        path = index.preview_path(index.row(clip_id))
        if path is None or not path.is_file():
            return jsonify(error=f"clip {clip_id!r} has no preview in {index.path}"), 404
        return send_file(path, mimetype="image/png", max_age=3600)

    return app


def make_server(searcher: Searcher, port: int = 8000) -> BaseWSGIServer:
    """An HTTP server bound to 127.0.0.1 only (``port`` 0: any free port, see ``server.port``)."""
    try:
        return werkzeug.serving.make_server(LOCALHOST, port, create_app(searcher), threaded=True)
    except OSError as error:
        raise LavimoInputError(f"port {port}", f"cannot listen on {LOCALHOST}:{port} ({error.strerror})") from error


def serve(searcher: Searcher, port: int = 8000) -> None:
    """Serve the page on http://127.0.0.1:``port`` until interrupted."""
    server = make_server(searcher, port)
    print(f"lavimo: searching {len(searcher.index)} motions on http://{LOCALHOST}:{server.port} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
