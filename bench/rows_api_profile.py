"""Where a request of the rows API spends its time: pyinstrument under load.

The catalog runs in this process (uvicorn, as `opendata servir` runs it) on the data folder
of OPENDATA_DATA_DIR (and OPENDATA_STORE_URL for PostGIS); the load (8 client threads)
comes from another process (`bench/rows_api.py`'s client). FastAPI's thread pool is
replaced by a direct call, so that the endpoint's work shows in the one profiled thread.

    OPENDATA_DATA_DIR=… .venv/bin/python bench/rows_api_profile.py \\
        "/api/datasets/lyon-releves/rows?_taille=100" [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import requests
import uvicorn
from pyinstrument import Profiler

HERE = Path(__file__).resolve().parent
CLIENT = """
import sys
sys.path.insert(0, {here!r})
from rows_api import load
print(load([sys.argv[1]], int(sys.argv[2])))
"""


async def _inline(function: Any, *args: Any, **_options: Any) -> Any:
    return function(*args)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--port", type=int, default=18890)
    args = parser.parse_args()
    anyio.to_thread.run_sync = _inline  # the endpoint in the profiled thread
    from catalog.web.app import create_app_from_env

    server = uvicorn.Server(
        uvicorn.Config(create_app_from_env(), host="127.0.0.1", port=args.port, log_level="error")
    )
    profiler = Profiler(interval=0.0005)
    url = f"http://127.0.0.1:{args.port}{args.path}"

    def client(loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                requests.get(url, timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.3)
        code = CLIENT.format(here=str(HERE))
        subprocess.run([sys.executable, "-c", code, url, "100"], check=True)  # warm-up
        loop.call_soon_threadsafe(profiler.start)
        subprocess.run([sys.executable, "-c", code, url, str(args.requests)], check=True)
        stopped = threading.Event()
        loop.call_soon_threadsafe(lambda: (profiler.stop(), stopped.set()))
        stopped.wait()
        server.should_exit = True

    async def serve() -> None:
        threading.Thread(target=client, args=(asyncio.get_running_loop(),), daemon=True).start()
        await server.serve()

    asyncio.run(serve())
    print(profiler.output_text(unicode=True, color=False))


if __name__ == "__main__":
    main()
