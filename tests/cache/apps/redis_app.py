"""A redis-py app run under `opentelemetry-instrument` by tests/cache/test_redis_launcher.py.

It imports nothing from covet_otel: the launcher alone must make it report the cache group.
"""

import asyncio
import os
import signal
import sys
import time

import redis
import redis.asyncio as aioredis

host, port = os.environ["REDIS_HOST"], int(os.environ["REDIS_PORT"])

r = redis.Redis(host=host, port=port)
r.flushdb()
r.set("a", "1")
r.set("c", "3")
r.get("a")  # hit
r.get("b")  # miss
r.mget("a", "b", "c")  # 2 hits, 1 miss
with r.pipeline() as pipe:  # transaction: MULTI
    pipe.get("a").get("b")
    pipe.execute()


async def main() -> None:
    ar = aioredis.Redis(host=host, port=port)
    await ar.get("c")  # hit
    await ar.aclose()


asyncio.run(main())
print("workload done", flush=True)
# a clean exit on SIGTERM runs the SDK's atexit shutdown, which flushes the spans
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(60)
