"""An unmodified-looking Flask app: measured only because it runs under opentelemetry-instrument."""

from __future__ import annotations

import time

from flask import Flask, Response, abort, request

from covet_otel.instrumentation.http import record_auth_failure

app = Flask(__name__)
STREAM_CHUNKS = 3
STREAM_PAUSE = 0.2


@app.get("/items/<int:item_id>")
def read_item(item_id: int) -> dict:
    time.sleep(float(request.args.get("sleep", "0")))
    return {"item_id": item_id}


@app.post("/items")
def create_item() -> dict:
    return {"received": len(request.get_data())}


@app.get("/boom")
def boom() -> dict:
    raise RuntimeError("kaboom")


@app.get("/stream")
def stream() -> Response:
    def chunks():
        for _ in range(STREAM_CHUNKS):
            time.sleep(STREAM_PAUSE)
            yield b"x" * 100

    return Response(chunks(), mimetype="application/octet-stream")


@app.get("/private")
def private() -> dict:
    abort(401)


@app.get("/admin")
def admin() -> dict:
    abort(403)


@app.post("/login")
def login() -> dict:
    record_auth_failure("bad_password")
    abort(401)


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}
