"""The engine process's side of agent.engine: load the model, then answer the client's requests."""

from __future__ import annotations

import sys
import threading
from typing import Any

from agent.engine import describe_error


def main() -> None:
    """The engine process's entry: the socket's file descriptor is the one argument."""
    from multiprocessing.connection import Connection

    conn = Connection(int(sys.argv[1]))
    try:
        serve(conn, conn.recv())
    except (EOFError, OSError):  # the client went away
        pass
    finally:
        conn.close()


def serve(conn: Any, spec: dict[str, Any]) -> None:
    """The engine process: load the model, then answer requests until the connection closes or "stop" comes."""
    from agent.backends import LocalChatModel, ModelCache

    try:
        model = LocalChatModel(**spec, engine=False, loaded_models=ModelCache())
        loaded = model.loaded()
    except BaseException as exc:  # told to the client, which raises it where the model was asked for
        conn.send(("failed", describe_error(exc)))
        return
    conn.send(("ready", {"slots": loaded.slots}))
    send_lock = threading.Lock()  # guards the connection and `decoding`
    decoding: dict[int, bool] = {}  # decode requests running -> cancelled

    def send(rid: int, kind: str, payload: Any) -> None:
        with send_lock:
            conn.send((rid, kind, payload))

    def one_thread() -> None:
        """A request thread's own torch ops (the argmax, the grammar's mask) run on one thread when the main thread
        computes the passes: a second OpenMP team would spin on a core the passes need (69 against 47-52 ms a pass on
        2 cores, session 27).
        """
        if loaded.batcher is not None:
            import torch

            torch.set_num_threads(1)

    def decode(rid: int, request: dict[str, Any]) -> None:
        one_thread()
        try:
            call = model.model_copy(update=request["options"])
            pieces = call._token_stream(request["prompt"], request["stop"], request["grammar"])
            try:
                for piece in pieces:
                    if decoding.get(rid):
                        break
                    send(rid, "piece", piece)
            finally:
                pieces.close()
            send(rid, "end", None)
        except BaseException as exc:
            send(rid, "error", describe_error(exc))
        finally:
            with send_lock:
                decoding.pop(rid, None)

    def answer(rid: int, kind: str, payload: Any) -> None:
        one_thread()
        try:
            if kind == "prefill":
                result = model.model_copy(update=payload["options"]).prefill(payload["prompt"])
            elif kind == "clear_prefixes":
                result = loaded.clear_prefixes()
            elif kind == "stats":
                result = loaded.stats()
            else:
                raise ValueError(f"unknown request {kind!r}")
            send(rid, "end", result)
        except BaseException as exc:
            send(rid, "error", describe_error(exc))

    stop = threading.Event()

    def read() -> None:
        try:
            while True:
                try:
                    rid, kind, payload = conn.recv()
                except (EOFError, OSError):  # the client is gone
                    return
                if kind == "stop":
                    return
                if kind == "cancel":
                    with send_lock:
                        if rid in decoding:
                            decoding[rid] = True
                    continue
                if kind == "decode":
                    with send_lock:
                        decoding[rid] = False
                target, args = (decode, (rid, payload)) if kind == "decode" else (answer, (rid, kind, payload))
                threading.Thread(target=target, args=args, name=f"engine-{kind}-{rid}", daemon=True).start()
        finally:
            stop.set()

    threading.Thread(target=read, name="engine-reader", daemon=True).start()
    if loaded.batcher is not None:  # every pass on this (the main) thread: see StepBatcher
        loaded.batcher.serve(stop)
    else:
        stop.wait()

