"""Ctrl-C and SIGTERM for ``didtv convert``: one clean, bounded stop.

- The first SIGINT / SIGTERM raises KeyboardInterrupt (:class:`Terminated` for SIGTERM) in the
  main thread; the library then stops its FFmpeg / x265 / mkvtoolnix children (SIGTERM, SIGKILL
  after 0.2 s: didtv.io.ffmpeg.Child.stop) and removes its temporary files. Further signals do
  not interrupt that cleanup.
- A watcher thread hears every signal at once (``signal.set_wakeup_fd``), whatever the main
  thread is doing (Python runs signal handlers only between bytecodes, so one long model call
  would delay them): :data:`CHILD_DEADLINE` s after the first signal it stops every child still
  running itself; a second signal stops them at once, and :data:`HARD_EXIT_AFTER` s later the
  process exits even if something still hangs. (The watcher needs the GIL: torch's operators,
  ctypes calls and I/O release it; a pure-Python-object C loop such as ``sum(range(10**10))``
  would hold it.)
- The exit status is 130 after SIGINT and 143 after SIGTERM (128 + the signal, as shells
  report it), also when a stage failed because a child died of the same Ctrl-C (a terminal
  signals the whole process group). After a real signal the process leaves with ``os._exit``
  once everything is cleaned up, skipping the interpreter's teardown (2-3 s of garbage
  collection over torch's modules on a busy CPU).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading

#: Exit status after SIGINT (Ctrl-C) / SIGTERM, as shells report signals (128 + number).
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


#: After the first SIGINT/SIGTERM: seconds the orderly stop gets before a watcher thread stops
#: every child process itself (the main thread only sees the signal between Python bytecodes,
#: so a long model call could otherwise delay it; with ``--jobs N`` workers may be in a stage
#: that does not look at the stop flag).
CHILD_DEADLINE = 1.0
#: After a second signal: children are stopped at once, and the process exits this many seconds
#: later if it has not by itself (the last resort against a hang; exit 130/143 all the same).
HARD_EXIT_AFTER = 1.5


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so the same cleanup runs."""


class _SignalWatcher:
    """Sees SIGINT/SIGTERM the moment they arrive, in a thread (``signal.set_wakeup_fd``: the
    interpreter writes each signal's number to a socket), whatever the main thread is doing.
    First signal: stop all children after :data:`CHILD_DEADLINE` s. Second: stop them now and
    exit after :data:`HARD_EXIT_AFTER` s."""

    def __init__(self, state: dict) -> None:
        from didtv.io.ffmpeg import stop_all

        self._stop_all = stop_all
        self._state = state  # its "seen": the first signal, as soon as it arrives
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)
        self.first: int | None = None
        self.count = 0
        self._old_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._run, name="didtv-signals", daemon=True)
        self._thread.start()

    def _later(self, seconds: float, func, *args) -> None:
        timer = threading.Timer(seconds, func, args)
        timer.daemon = True
        timer.start()

    def _run(self) -> None:
        while True:
            try:
                data = self._read.recv(64)
            except OSError:
                return
            for signum in data:
                if signum == 0:  # close(): the command ended without a signal
                    return
                if signum not in (signal.SIGINT, signal.SIGTERM):  # the fd hears every handled signal
                    continue
                self.count += 1
                if self.count == 1:
                    self.first = signum
                    self._state["seen"] = signum
                    self._later(CHILD_DEADLINE, self._stop_all)
                elif self.count == 2:
                    self._stop_all(0)
                    self._later(HARD_EXIT_AFTER, os._exit, 128 + self.first)

    def close(self) -> None:
        signal.set_wakeup_fd(self._old_fd)
        self._write.send(b"\0")
        self._thread.join(timeout=1)
        self._read.close()
        self._write.close()


@contextlib.contextmanager
def signals_as_interrupts():
    """While active (main thread only): SIGTERM raises :class:`Terminated` and SIGINT
    KeyboardInterrupt, once; the Python handler ignores further signals so the cleanup that the
    first one started (stopping FFmpeg, deleting temporary files) is not cut short, while
    :class:`_SignalWatcher` makes sure no child outlives :data:`CHILD_DEADLINE` and a second
    signal never hangs. On exit every child still running is stopped; the handlers are restored
    only when no signal came (otherwise the process is on its way out and keeps ignoring them).
    Yields a dict whose "signal" is the first signal the Python handler got (or None) and
    "seen" the first one the watcher got (or None; it may know before the handler runs)."""
    from didtv.io.ffmpeg import stop_all

    state: dict = {"signal": None, "seen": None}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, _frame):
        if state["signal"] is not None:
            return
        state["signal"] = signum
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    watcher = _SignalWatcher(state)
    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield state
    finally:
        stop_all()  # whatever ended the command (an exception at any stage): no child outlives it
        if state["signal"] is None and watcher.count == 0:
            for s, h in old.items():
                signal.signal(s, h)
            watcher.close()


def interrupt_exit_code(state: dict, exc: BaseException | None = None) -> int:
    """130, or 143 when the first signal was SIGTERM (``state`` from signals_as_interrupts)."""
    first = state.get("signal") or state.get("seen")
    return EXIT_TERMINATED if first == signal.SIGTERM or isinstance(exc, Terminated) else EXIT_INTERRUPTED


def exit_now(code: int, state: dict) -> None:
    """Exit with ``code``. After a real signal (the cleanup has run): stop any child left, flush
    stdout / stderr and ``os._exit``; otherwise (a KeyboardInterrupt raised in-process, as in
    tests) ``sys.exit``."""
    if state.get("signal") or state.get("seen"):
        from didtv.io.ffmpeg import stop_all

        stop_all()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
