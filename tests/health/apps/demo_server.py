"""The demo app under uvicorn, against the PostgreSQL and Redis named in the environment."""

import os

import uvicorn

from covet_otel.demo.app import Backends, build_app

app = build_app(Backends(os.environ["DEMO_DATABASE_URL"], os.environ["DEMO_REDIS_URL"]))
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["DEMO_PORT"]), log_level="warning")
