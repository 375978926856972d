"""Resident service processes of the embedded deployment, owned by the catalog.

`ResidentServer` keeps one server process (gunicorn serving pycsw) on a Unix socket the
catalog makes, started again whenever it is found dead.

`FastCgiPool` keeps a few processes of a FastCGI program (Debian's `mapserv`) alive, each
listening on its own Unix socket in a private folder (the socket is handed to it as its
standard input, as a FastCGI spawner does), and sends each request to an idle one:

- at most `size` processes, so at most `size` requests at once; the others wait their
  turn, within their own time limit;
- a process that dies is replaced: a request it had not accepted goes to a new process,
  a request it died on is answered as a crash (`Finished.complete` False);
- a request past its time limit has its process killed (and later replaced);
- `restart` retires every process of the previous generation (the idle ones at once, the
  busy ones when their request is answered): no request in flight fails;
- a process is also retired after `max_requests` requests (leaks stay bounded).

Processes are started on the first request, so a service never asked starts none. The
waiting is loop-agnostic (a future of the caller's event loop, woken from any thread):
one pool serves every event loop of the process, and waiting takes no thread.

Every process is started through util-linux's `setpriv --pdeathsig` from one thread that
lives as long as the catalog: the kernel signals the process when the catalog's process
ends, however it ends (killed included), so no resident process outlives it.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import dataclasses
import itertools
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from catalog.ogc import fastcgi

LOGGER = logging.getLogger(__name__)
STDERR_LINES = 40  # kept per process, for the report of a crash
EXIT_WAIT = 2.0  # seconds a process that dropped a request has to exit (its status)
BACKLOG = 64
_SPAWN = object()  # handed to a waiter: a place is free, start a process in it
SETPRIV = shutil.which("setpriv")  # util-linux (Debian: essential)
# The parent-death signal follows the thread that started the process: one thread that
# never ends before the catalog's process starts them all.
_STARTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ogc-starter")
_POOLS: weakref.WeakSet[FastCgiPool] = weakref.WeakSet()
_SERVERS: weakref.WeakSet[ResidentServer] = weakref.WeakSet()


@dataclasses.dataclass(frozen=True)
class Finished:
    """A run: the exit status (negative: the signal that killed it), output, errors;
    `complete` False when the process dropped the request (it crashed)."""

    returncode: int
    output: bytes
    errors: bytes
    complete: bool = True


@dataclasses.dataclass(eq=False)
class Worker:
    process: subprocess.Popen[bytes]
    socket_path: str
    generation: int
    stderr: collections.deque[str]
    reader: threading.Thread
    served: int = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def errors(self) -> bytes:
        return "\n".join(self.stderr).encode("utf-8", "replace")


class FastCgiPool:
    """Up to `size` resident processes of `command`, each on its own Unix socket."""

    def __init__(
        self,
        command: list[str],
        environ: Mapping[str, str],
        size: int = 2,
        max_requests: int = 1000,
        label: str = "FastCGI",
    ) -> None:
        self.command = list(command)
        self.environ = dict(environ)
        self.size = max(1, size)
        self.max_requests = max_requests
        self.label = label
        self.generation = 0
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._places = 0  # processes running or being started
        self._waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = (
            collections.deque()
        )
        self._folder: Path | None = None
        self._names = itertools.count()
        self._closed = False
        _POOLS.add(self)

    # --- requests ----------------------------------------------------------------------------

    async def run(self, params: Mapping[str, str], body: bytes, timeout: float) -> Finished:
        """The program's answer to one request; TimeoutError past `timeout` (waiting for a
        process included), the process that was answering killed."""
        async with asyncio.timeout(timeout):
            for attempt in range(2):
                worker = await self._acquire()
                try:
                    reply = await fastcgi.exchange(worker.socket_path, params, body)
                except (ConnectionRefusedError, FileNotFoundError):
                    # died while idle: the request never reached it, so another may take it
                    self._release(worker, reuse=False)
                    if attempt:
                        raise
                    continue
                except fastcgi.ProtocolError as garbage:
                    LOGGER.error("%s : réponse illisible (%s)", self.label, garbage)
                    self._release(worker, reuse=False)
                    return Finished(-1, b"", worker.errors(), complete=False)
                except OSError as failed:
                    LOGGER.warning("%s : échange interrompu (%s)", self.label, failed)
                    return await self._dropped(worker, b"")
                except BaseException:  # the time limit, or the caller gone: kill it
                    self._release(worker, reuse=False)
                    raise
                if not reply.complete:
                    return await self._dropped(worker, reply.stdout)
                worker.served += 1
                self._release(worker, reuse=True)
                errors = reply.stderr
                if reply.protocol_status != fastcgi.REQUEST_COMPLETE:
                    return Finished(-1, b"", errors, complete=False)
                return Finished(reply.app_status, reply.stdout, errors)
        raise AssertionError("unreachable")

    async def _dropped(self, worker: Worker, output: bytes) -> Finished:
        """The process dropped the request: its exit status and last errors, then out."""
        try:
            for _ in range(int(EXIT_WAIT / 0.05)):
                if not worker.alive():
                    break
                await asyncio.sleep(0.05)
        finally:
            returncode = worker.process.poll()
            self._release(worker, reuse=False)
        worker.reader.join(timeout=1)  # its last words
        code = returncode if returncode is not None and returncode != 0 else -1
        return Finished(code, output, worker.errors(), complete=False)

    # --- the processes -----------------------------------------------------------------------

    async def _acquire(self) -> Worker:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.label} : pool fermé")
            worker = self._take_idle()
            if worker is None and self._places < self.size:
                self._places += 1
                item: object = _SPAWN
            elif worker is None:
                future: asyncio.Future = loop.create_future()
                self._waiters.append((loop, future))
                item = future
            else:
                item = worker
        if isinstance(item, asyncio.Future):
            item = await self._wait(loop, item)
        if item is _SPAWN:
            try:
                worker = await asyncio.to_thread(self._spawn)
            except BaseException:
                self._give_back(_SPAWN)
                raise
            with self._lock:
                self._busy.add(worker)
            return worker
        assert isinstance(item, Worker)
        return item

    async def _wait(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future) -> object:
        """A process or a free place, handed over by `_give_back`; given back if the
        caller leaves (its time limit) once it was handed over."""
        try:
            return await future
        except BaseException:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove((loop, future))
            if future.done() and not future.cancelled():
                self._return(future.result())
            raise

    def _take_idle(self) -> Worker | None:
        """An idle live process of this generation (the others leave); under the lock."""
        while self._idle:
            worker = self._idle.pop()
            if worker.alive() and worker.generation == self.generation:
                self._busy.add(worker)
                return worker
            self._places -= 1
            self._stop(worker)
        return None

    def _release(self, worker: Worker, reuse: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            keep = (
                reuse
                and not self._closed
                and worker.alive()
                and worker.generation == self.generation
                and worker.served < self.max_requests
            )
        if not keep:
            self._stop(worker)
        self._give_back(worker if keep else _SPAWN)

    def _give_back(self, item: object) -> None:
        """A process (or a free place) back: to the first waiter still waiting, else idle."""
        with self._lock:
            while self._waiters:
                loop, future = self._waiters.popleft()
                if loop.is_closed() or future.done():
                    continue
                if isinstance(item, Worker):
                    self._busy.add(item)
                loop.call_soon_threadsafe(self._deliver, future, item)
                return
            if isinstance(item, Worker):
                self._idle.append(item)
            else:
                self._places -= 1

    def _deliver(self, future: asyncio.Future, item: object) -> None:
        if future.done():  # given up meanwhile: to the next one
            self._return(item)
        else:
            future.set_result(item)

    def _return(self, item: object) -> None:
        """What a waiter was handed but will not use, back to the others."""
        if isinstance(item, Worker):
            with self._lock:
                self._busy.discard(item)
        self._give_back(item)

    def _spawn(self) -> Worker:
        with self._lock:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="opendata-ogc-"))  # mode 0700
            path = str(self._folder / f"{next(self._names)}.sock")
            generation = self.generation
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(BACKLOG)
            process = start_process(
                self.command,
                "KILL",  # an idle mapserv waits in accept(), deaf to SIGTERM
                stdin=listener.fileno(),  # FastCGI: the listening socket as standard input
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=self.environ,
                close_fds=True,
            )
        finally:
            listener.close()  # the process holds it now: refused connections mean it died
        lines: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        reader = threading.Thread(
            target=_drain, args=(process, lines, self.label), name="ogc-stderr", daemon=True
        )
        reader.start()
        LOGGER.info("%s : processus résident %d démarré", self.label, process.pid)
        return Worker(process, path, generation, lines, reader)

    def _stop(self, worker: Worker) -> None:
        if worker.alive():
            worker.process.kill()  # idle ones sit in accept(): SIGTERM would not end them
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(timeout=5)
        with contextlib.suppress(OSError):
            Path(worker.socket_path).unlink()

    # --- lifecycle ---------------------------------------------------------------------------

    def restart(self) -> None:
        """A new generation: idle processes leave now, busy ones after their request."""
        with self._lock:
            self.generation += 1
            leaving, self._idle = self._idle, []
            self._places -= len(leaving)
        for worker in leaving:
            self._stop(worker)

    def processes(self) -> list[subprocess.Popen[bytes]]:
        """The processes running now (idle or busy)."""
        with self._lock:
            return [w.process for w in (*self._idle, *self._busy) if w.alive()]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle, self._busy = [], set()
            folder, self._folder = self._folder, None
        for worker in workers:
            self._stop(worker)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


class ResidentServer:
    """One resident server process (an HTTP server and its workers, such as gunicorn)
    listening on a Unix socket that the catalog makes and hands to it as a file
    descriptor: `command(fd)` is its command line. Started on first use; started again
    when it is found dead (its own workers it restarts itself)."""

    def __init__(
        self,
        command: Callable[[int], list[str]],
        environ: Mapping[str, str],
        label: str,
        cwd: Path | None = None,
    ) -> None:
        self.command = command
        self.environ = dict(environ)
        self.label = label
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.socket_path = ""
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._names = itertools.count()
        self._closed = False
        _SERVERS.add(self)

    def address(self) -> str:
        """The socket of the running server, started (again) if it is not running."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.label} : serveur arrêté")
            if self.process is None or self.process.poll() is not None:
                if self.process is not None:
                    LOGGER.error(
                        "%s : le serveur résident s'est arrêté (code %s) ; redémarrage. %s",
                        self.label,
                        self.process.returncode,
                        " | ".join(self.stderr)[-2000:],
                    )
                self._start()
            return self.socket_path

    def _start(self) -> None:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="opendata-ogc-"))  # mode 0700
        if self.socket_path:
            with contextlib.suppress(OSError):
                Path(self.socket_path).unlink()
        self.socket_path = str(self._folder / f"{next(self._names)}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.socket_path)
            listener.listen(BACKLOG)
            self.process = start_process(
                self.command(listener.fileno()),
                "TERM",  # gunicorn stops its workers
                pass_fds=(listener.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=self.environ,
                cwd=self.cwd,
            )
        finally:
            listener.close()  # connections wait for the server in the socket's backlog
        self.stderr.clear()
        threading.Thread(
            target=_drain, args=(self.process, self.stderr, self.label), daemon=True
        ).start()
        LOGGER.info("%s : serveur résident %d démarré", self.label, self.process.pid)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            process, folder = self.process, self._folder
            self.process, self._folder = None, None
        if process is not None and process.poll() is None:
            process.terminate()  # the server stops its workers
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def start_process(command: list[str], death_signal: str, **options: Any) -> subprocess.Popen[bytes]:
    """`command` started so that it receives `death_signal` when the catalog's process
    ends (without setpriv, it is only stopped by `close` and at a normal exit)."""
    if SETPRIV:
        command = [SETPRIV, f"--pdeathsig={death_signal}", "--", *command]
    return _STARTER.submit(subprocess.Popen, command, **options).result()


def _drain(process: subprocess.Popen[bytes], lines: collections.deque[str], label: str) -> None:
    """The process's standard error, line by line, into the log and its recent lines."""
    assert process.stderr is not None
    for raw in process.stderr:
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            lines.append(line)
            LOGGER.info("%s : %s", label, line[:2000])
    process.stderr.close()


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS):
        pool.close()
    for server in list(_SERVERS):
        server.close()
