"""The worker process shell: one crash at a time, told what to do over its pipe
(docs/architecture.md §2, 6).

`worker_main` runs in the child right after the supervisor forks it; the supervisor reaches it
by name only (`procsupervisor.supervisor.pool.WORKER_ENTRY`). It first cuts itself loose from
everything it inherited (descriptors, signal handlers), arranges to die with the supervisor,
then opens its own clients (`CrashHandler`) and serves `process` requests until `stop` or EOF.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from typing import NoReturn

from procsupervisor import __version__
from procsupervisor.backends import load_class
from procsupervisor.config import Config
from procsupervisor.forked_child import detach_from_supervisor
from procsupervisor.logs import set_level
from procsupervisor.metrics import batched
from procsupervisor.protocol import BlockingChannel, Progress, Ready, StopRequest
from procsupervisor.workers.crash_handler import CrashHandler

log = logging.getLogger("procsupervisor.worker")



def worker_main(index: int, sock: socket.socket, config: Config, supervisor_pid: int) -> NoReturn:
    """Entry point in the forked child; never returns."""
    code = 1
    try:
        detach_from_supervisor(sock.fileno(), supervisor_pid)
        _set_title(index, "starting")
        code = _serve(index, BlockingChannel(sock), config)
    except BaseException:
        log.exception("worker %d failed", index)
    finally:
        sys.stderr.flush()
        os._exit(code)


def probe_main(sock: socket.socket, config: Config, parent_pid: int) -> NoReturn:
    """A throwaway child (procsupervisor.worker_probe): open what a new worker opens with
    `config`, close it again and report one JSON line, {"ok": true} or the error."""
    reply: dict[str, object] = {"ok": True}
    try:
        detach_from_supervisor(sock.fileno(), parent_pid)
        _set_process_title("procsupervisor: worker start check")
        _check_processor_spec(config.supervisor.processor)
        CrashHandler(config).close()
    except BaseException as exc:
        # A ValueError is a bad value, worded for the operator; anything else is named.
        text = str(exc) if type(exc) is ValueError else f"{type(exc).__name__}: {exc}"
        reply = {"ok": False, "error": " ".join(text.split())[:500]}
    try:
        sock.sendall(json.dumps(reply).encode() + b"\n")
    finally:
        os._exit(0)


def _check_processor_spec(spec: str) -> None:
    """The processor must import and be callable; the error names the key."""
    try:
        factory = load_class(spec)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"[supervisor] processor {spec!r} cannot be loaded:"
                         f" {type(exc).__name__}: {exc}") from None
    if not callable(factory):
        raise ValueError(f"[supervisor] processor {spec!r} is not a class or function")





def _set_title(index: int, state: str) -> None:
    _set_process_title(f"procsupervisor: worker {index} [{state}]")


def _set_process_title(title: str) -> None:
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(title)


def _serve(index: int, channel: BlockingChannel, config: Config) -> int:
    set_level(config.log_level)  # the config this worker was forked with, even mid-reload
    handler = CrashHandler(config)
    try:
        channel.send(Ready(pid=os.getpid(), version=__version__,
                           cache_stats=handler.cache_stats()))
        _set_title(index, "idle")
        while True:
            request = channel.receive_request()
            if request is None or isinstance(request, StopRequest):
                return 0
            crash_id = request.crash_id
            _set_title(index, crash_id[:36])
            # One statsd batch per crash: a few datagrams instead of one per metric.
            with batched(handler.metrics):
                result = handler.handle(
                    crash_id,
                    ruleset=request.ruleset,
                    queue=request.queue,
                    poison_reason=request.poison,
                    on_stage=lambda stage, cid=crash_id: channel.send(Progress(cid, stage)),
                )
            channel.send(result.message(handler.cache_stats()))
            _set_title(index, "idle")
    finally:
        handler.close()
