"""The worker processes of ``splitlab serve --workers N``, each listening on a socket of its own.

uvicorn's own multi-worker mode binds one socket and lets every worker accept from it: whichever
worker wakes first takes the connection, so the long-lived connections of a load balancer or a
busy client pile up unevenly (measured with 32 keep-alive connections: one worker's event loop
used twice the CPU of the other's while the machine stood 14% idle). Here every worker binds its
own socket to the same address with ``SO_REUSEPORT``, and the kernel spreads new connections
over the workers' sockets by a hash of the connection's addresses.

A worker's socket starts listening only once its application has started (asyncio calls
``listen`` when uvicorn starts serving), so no connection waits on a worker that is still
starting. The supervisor checks first that the address is free (``SO_REUSEPORT`` would otherwise
let a second server started by the same user share the port silently), restarts a worker that
dies, stops when a worker fails during its start-up, and on SIGTERM or SIGINT stops every worker
gracefully. Connections waiting in a dying worker's queue are reset (the kernel does not move
them to another socket): a client's retry reaches a live worker. A supervisor killed outright
(SIGKILL) takes its workers with it: each asks the kernel for SIGTERM when its parent dies.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn

from splitlab.service.metrics import share_values_cheaply

log = logging.getLogger(__name__)
STARTUP_SECONDS = 30.0
"""A worker that exits with an error sooner than this after its start failed to start (the
supervisor stops); one killed by a signal, or exiting later, is replaced."""
POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1
"""Linux ``prctl`` option: the signal a process gets when its parent dies."""


class StartupError(RuntimeError):
    """A worker exited while starting (its own log says why)."""


def address_family(host: str, port: int) -> socket.AddressFamily:
    """The address family to listen on ``host`` with."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]


def bound_socket(host: str, port: int, share: bool) -> socket.socket:
    """A socket bound to ``host:port``, not listening; with ``share``, beside the other workers'
    (``SO_REUSEPORT``), else only where no other socket is bound (``OSError`` otherwise)."""
    sock = socket.socket(address_family(host, port), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def stop_with_parent(parent: int) -> None:
    """Have the kernel send this process SIGTERM when its parent dies, even by SIGKILL (Linux's
    ``PR_SET_PDEATHSIG``; elsewhere nothing is done). A worker left without its supervisor would
    keep its socket and its shard, and nobody would stop it. ``parent`` is the supervisor's pid:
    when it has died already, the worker stops now."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # it died before the request was made
            os.kill(os.getpid(), signal.SIGTERM)


def run_worker(options: dict[str, Any], parent: int | None = None) -> None:
    """One worker process: the application of ``options`` (uvicorn ``Config`` keywords) served
    on a socket of its own, stopped with its supervisor ``parent``."""
    if parent is not None:
        stop_with_parent(parent)
    share_values_cheaply()  # before the application makes its collectors
    config = uvicorn.Config(**options)
    uvicorn.Server(config).run(sockets=[bound_socket(config.host, config.port, True)])


class Supervisor:
    """Runs ``count`` workers of the uvicorn application described by ``options`` until SIGTERM
    or SIGINT (see the module docstring)."""

    def __init__(self, options: dict[str, Any], count: int) -> None:
        self.options = options
        self.count = count
        self.grace = float(options.get("timeout_graceful_shutdown") or 10)
        self._context = multiprocessing.get_context("spawn")
        self._stopping = threading.Event()

    def _start(self) -> tuple[BaseProcess, float]:
        process = self._context.Process(target=run_worker, args=(self.options, os.getpid()),
                                        name="splitlab-worker")
        process.start()
        return process, time.monotonic()

    def run(self) -> None:
        """Serve until stopped; :class:`StartupError` when a worker fails to start."""
        bound_socket(self.options["host"], self.options["port"], False).close()  # free?
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda _number, _frame: self._stopping.set())
        workers = [self._start() for _ in range(self.count)]
        try:
            while not self._stopping.wait(POLL_SECONDS):
                for index, (process, started) in enumerate(workers):
                    if process.is_alive():
                        continue
                    failed = process.exitcode is not None and process.exitcode > 0
                    if failed and time.monotonic() - started < STARTUP_SECONDS:
                        raise StartupError(f"a worker exited with code {process.exitcode} while "
                                           "starting")
                    log.warning("worker %s exited (code %s); starting another", process.pid,
                                process.exitcode)
                    workers[index] = self._start()
        finally:
            self._stop([process for process, _ in workers])

    def _stop(self, processes: list[BaseProcess]) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + self.grace + 5
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
