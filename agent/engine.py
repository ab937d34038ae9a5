"""The in-process model's passes in a process of their own (an engine process, as vLLM runs its engine core).

Why: on 2 cores, every torch op of a decode step gives up the interpreter lock and must take it back. When other
conversations run Python in the same process (tools, rendering, KV-cache bookkeeping), each op can wait up to the
5 ms switch interval: a 30 ms step took 3.7-5.5 s beside one busy Python thread (bench/README.md, session 26). In
its own process the model shares its interpreter with nothing but its own decode threads.

`EngineClient` starts the process (a fresh interpreter running `agent.engine_process`: torch's threads do not survive a
fork, and multiprocessing's spawn would run the caller's main script again in the child) and talks to it over one
socket pair with multiprocessing's Connection (pickled messages). The process holds a plain LocalChatModel
(tokenizer, weights, prefix cache, grammars, the batched passes of agent.llama_step) and runs each request on a
thread of its own, so concurrent calls still share passes; its main thread computes every pass. A request is the
prompt text, the stop strings and the call's grammar (a JSON structural tag); the answer is the text pieces as they
are decoded. A caller that stops reading cancels the decode at its next step.

If the process dies, every call in flight fails with a UserError and the next call starts a new one.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

from shopdesk.output import UserError


class EngineClient:
    """One engine process for one model (`spec`: LocalChatModel fields). Thread-safe: any number of calls at once."""

    def __init__(self, spec: dict[str, Any], start_timeout_s: float = 600.0):
        self.spec = dict(spec)
        self.start_timeout_s = start_timeout_s
        self._lock = threading.Lock()  # guards the process, the connection's send end and the tables below
        self._process: Any = None
        self._conn: Any = None
        self._pending: dict[int, queue.SimpleQueue] = {}
        self._ids = itertools.count()
        self.slots = 1  # model calls the engine computes at once (its _Loaded.slots), known once it has started
        self.in_flight = 0  # calls sent and not yet finished

    # -- the process -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the process and wait until the model is loaded (a load error is raised here)."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        from multiprocessing.connection import Connection

        a, b = socket.socketpair()
        env = dict(os.environ)
        # the child imports what this process imports: its module path, in the same order
        env["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
        try:
            command = [sys.executable, "-c", "import agent.engine_process as e; e.main()", str(b.fileno())]
            process = subprocess.Popen(command, pass_fds=[b.fileno()], env=env, stdin=subprocess.DEVNULL)
        finally:
            b.close()
        mine = Connection(a.detach())
        mine.send(self.spec)
        if not mine.poll(self.start_timeout_s):
            process.kill()
            process.wait()
            mine.close()
            raise UserError(f"the model process did not load the model within {self.start_timeout_s:.0f} s")
        try:
            kind, payload = mine.recv()
        except EOFError:
            mine.close()
            raise UserError(f"the model process stopped while loading (exit code {process.wait()})") from None
        if kind != "ready":
            mine.close()
            process.wait()
            raise _error(payload)
        self.slots = payload["slots"]
        self._process, self._conn = process, mine
        atexit.register(self.close)  # stopped with this interpreter (it would also stop on the connection's EOF)
        threading.Thread(target=self._read, args=(mine, process), name="shopdesk-engine-reader", daemon=True).start()

    def _read(self, conn: Any, process: Any) -> None:
        """Hand each message from the engine to the call it answers; on EOF, fail every call still waiting."""
        while True:
            try:
                rid, kind, payload = conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                box = self._pending.get(rid)
            if box is not None:
                box.put((kind, payload))
        try:
            code = process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        with self._lock:
            if self._conn is conn:
                self._process = self._conn = None
            waiting, self._pending = self._pending, {}
            self.in_flight -= len(waiting)
        stopped = UserError(f"the model process stopped (exit code {code})")
        for box in waiting.values():
            box.put(("error", describe_error(stopped)))

    def close(self) -> None:
        """Stop the process (calls in flight fail)."""
        atexit.unregister(self.close)
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send((None, "stop", None))
            conn.close()
        if process is not None:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    # -- requests ----------------------------------------------------------------------------------------------

    def _send(self, kind: str, payload: Any) -> tuple[int, queue.SimpleQueue]:
        box: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            self._start_locked()
            rid = next(self._ids)
            self._pending[rid] = box
            self.in_flight += 1
            try:
                self._conn.send((rid, kind, payload))
            except OSError as exc:
                self._pending.pop(rid, None)
                self.in_flight -= 1
                raise UserError(f"the model process cannot be reached ({exc})") from None
        return rid, box

    def _done(self, rid: int) -> None:
        with self._lock:
            if self._pending.pop(rid, None) is not None:
                self.in_flight -= 1

    def _cancel(self, rid: int) -> None:
        with self._lock:
            if self._conn is not None and rid in self._pending:
                with contextlib.suppress(OSError):
                    self._conn.send((rid, "cancel", None))

    def stream(self, prompt: str, stop: list[str] | None, call_grammar: dict[str, Any] | None,
               options: dict[str, Any]) -> Iterator[str]:
        """The decoded text pieces of `prompt` (LocalChatModel._token_stream in the engine, with `options`: the
        calling model's per-call fields). Closing the iterator early cancels the decode.
        """
        rid, box = self._send("decode", {"prompt": prompt, "stop": stop, "grammar": call_grammar,
                                         "options": options})
        finished = False
        try:
            while True:
                kind, payload = box.get()
                if kind == "piece":
                    yield payload
                elif kind == "end":
                    finished = True
                    return
                else:
                    finished = True
                    raise _error(payload)
        finally:
            if not finished:
                self._cancel(rid)
            self._done(rid)

    def call(self, kind: str, payload: Any = None) -> Any:
        """One request with one answer: "prefill" (prompt, options) -> tokens computed; "stats" -> the counters of
        _Loaded.stats; "clear_prefixes" -> None.
        """
        rid, box = self._send(kind, payload)
        try:
            answer, result = box.get()
        finally:
            self._done(rid)
        if answer == "error":
            raise _error(result)
        return result


def describe_error(exc: BaseException) -> tuple[str, str]:
    """An exception as the engine sends it: ("user", text) for a UserError, else (its class name, text)."""
    return ("user" if isinstance(exc, UserError) else type(exc).__name__, str(exc))


def _error(payload: tuple[str, str]) -> Exception:
    kind, message = payload
    if kind == "user":
        return UserError(message)
    return RuntimeError(f"model process: {kind}: {message}")
