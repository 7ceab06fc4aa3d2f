"""An unmodified-looking FastAPI app: measured only because it runs under opentelemetry-instrument."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse

from covet_otel.instrumentation.http import record_auth_failure

app = FastAPI()
STREAM_CHUNKS = 3
STREAM_PAUSE = 0.2


@app.exception_handler(Exception)
async def on_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "custom", "detail": str(exc)}, status_code=500)


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict:
    return {"item_id": item_id}


@app.post("/items")
async def create_item(request: Request) -> dict:
    return {"received": len(await request.body())}


@app.get("/boom")
async def boom() -> dict:
    raise RuntimeError("kaboom")


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks():
        for _ in range(STREAM_CHUNKS):
            await asyncio.sleep(STREAM_PAUSE)
            yield b"x" * 100

    return StreamingResponse(chunks(), media_type="application/octet-stream")


@app.get("/private")
async def private() -> dict:
    raise HTTPException(status_code=401)


@app.get("/admin")
async def admin() -> dict:
    raise HTTPException(status_code=403)


@app.post("/login")
async def login() -> dict:
    record_auth_failure("bad_password")
    raise HTTPException(status_code=401)


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}
