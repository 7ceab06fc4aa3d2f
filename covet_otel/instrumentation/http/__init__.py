"""HTTP/application metrics: RED by route template for ASGI and WSGI apps, auth failures.

Under `opentelemetry-instrument` the framework instrumentors (frameworks.py) add the middleware to
Starlette/FastAPI, Flask and Django apps; any other ASGI/WSGI app can be wrapped by hand.
"""

from .asgi import CovetASGIMiddleware
from .auth import record_auth_failure
from .wsgi import CovetWSGIMiddleware

__all__ = ["CovetASGIMiddleware", "CovetWSGIMiddleware", "record_auth_failure"]
