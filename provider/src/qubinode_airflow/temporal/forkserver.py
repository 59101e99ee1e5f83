# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""A long-lived task runner for the Temporal worker: it imports Airflow once, then forks one child per
task attempt, as Airflow's LocalExecutor and Edge worker fork from a warm process.

The worker never forks itself (the Temporal SDK's core runs threads); it starts this server as a
separate interpreter and talks to it over a SOCK_SEQPACKET socket pair:
- worker to server: a one-byte request carrying, as SCM_RIGHTS, the read end of a pipe; the worker
  writes the workload into the pipe and closes it (the workload, with its token, never shows on a
  command line);
- server to worker: `S pid` when it forked the child of a request (in request order), `E pid status`
  when that child ended (its exit code, or minus the signal that killed it).
Each child starts a session of its own (stopping an attempt signals everything its task started),
reads its workload, runs it and leaves with os._exit once its output is flushed (no interpreter
shutdown). The server exits when the worker closes its end, after its children ended. A worker that
stops closes its end once it stopped its attempts; if the worker dies instead (killed, out of memory),
the attempts still running have nobody to heartbeat for them or to report them, and Temporal hands them
to another worker: the server kills their sessions at once, as systemd would kill the whole unit.
"""

from __future__ import annotations

import array
import asyncio
import collections
import logging
import os
import signal
import socket
import struct
import sys

log = logging.getLogger("qubinode_airflow.temporal.forkserver")
REPLY = struct.Struct("!cii")
STARTED, ENDED, REQUEST = b"S", b"E", b"R"
# Minus the signal number: the status of an attempt whose server was lost (its process killed).
LOST = -signal.SIGKILL
# Started as `python -c _SERVER fd runner`: the package directory is not on sys.path of a `-c` process
# started from another working directory, so it is added (at the end, never before the standard library).
_SERVER = (
    "import sys; p = %r\n"
    "p in sys.path or sys.path.append(p)\n"
    "from qubinode_airflow.temporal.forkserver import serve; serve(int(sys.argv[1]), sys.argv[2])\n"
    % os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _child(sock: socket.socket, data_fd: int, runner) -> None:
    """In the forked child: never returns."""
    code = 1
    try:
        sock.close()
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        data = _read_all(data_fd)
        os.close(data_fd)
        code = runner.run(data.decode("utf-8"))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever the task raised, the child ends here
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream must not keep the child alive
                pass
        os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)


def serve(fd: int, runner_name: str) -> None:
    """The server's main loop: `runner_name` is the module whose warm() runs once and run(data) per child."""
    import gc
    import importlib
    import selectors

    # The worker decides when this process ends (it closes the socket); a Ctrl-C or a SIGTERM meant for
    # the worker must not take the running attempts' parent away first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    runner = importlib.import_module(runner_name)
    if hasattr(runner, "warm"):
        runner.warm()
    # What the forks share stays shared: the collector does not touch (and so copy) the warm objects.
    gc.collect()
    gc.freeze()
    sock = socket.socket(fileno=fd)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, None)
    children = {}
    listening = True
    while listening or children:
        for key, unused in sel.select():
            if key.data is None:
                try:
                    msg, ancdata, unused_flags, unused_addr = sock.recvmsg(16, socket.CMSG_SPACE(4 * 4))
                except OSError:
                    msg, ancdata = b"", []
                fds = array.array("i")
                for level, kind, payload in ancdata:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                if not msg:
                    for extra in fds:
                        os.close(extra)
                    sel.unregister(sock)
                    listening = False
                    if children:
                        log.warning("forkserver: the worker is gone; its %d running attempts are killed",
                                    len(children))
                        for pid in children:
                            _signal_session(pid, signal.SIGKILL)
                    continue
                if msg != REQUEST or len(fds) != 1:
                    for extra in fds:
                        os.close(extra)
                    raise SystemExit("forkserver: malformed request %r with %d descriptors" % (msg, len(fds)))
                pid = os.fork()
                if pid == 0:
                    sel.close()
                    for pidfd in children.values():
                        os.close(pidfd)
                    _child(sock, fds[0], runner)
                os.close(fds[0])
                pidfd = os.pidfd_open(pid)
                children[pid] = pidfd
                sel.register(pidfd, selectors.EVENT_READ, pid)
                _reply(sock, STARTED, pid, 0)
            else:
                pid = key.data
                sel.unregister(key.fileobj)
                os.close(children.pop(pid))
                unused, status = os.waitpid(pid, 0)
                if listening:
                    _reply(sock, ENDED, pid, os.waitstatus_to_exitcode(status))
    sock.close()


def _signal_session(pid: int, sig: int) -> None:
    """Signal a child's session (the task and whatever it started); the child itself if it has not made
    its session yet."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _reply(sock: socket.socket, kind: bytes, pid: int, code: int) -> None:
    try:
        sock.send(REPLY.pack(kind, pid, code))
    except OSError:
        pass  # the worker is gone: its end of the socket is closed


class Attempt:
    """One child of the server: a task attempt's process."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode = None
        self._ended = asyncio.get_running_loop().create_future()

    def _end(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
            self._ended.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)

    def signal(self, sig: int) -> None:
        """Signal the attempt's session (the task and whatever it started); the child itself if it has
        not made its session yet."""
        if self.returncode is None:
            _signal_session(self.pid, sig)


class ForkServer:
    """The worker's side: starts the server when first needed, and again after it was lost."""

    def __init__(self, runner: str = "qubinode_airflow.temporal.run_workload"):
        self.runner = runner
        self._proc = None
        self._sock = None
        self._reader = None
        self._pending = collections.deque()
        self._attempts = {}
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._proc is None:
                await self._start()

    async def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _SERVER, str(theirs.fileno()), self.runner,
                stdin=asyncio.subprocess.DEVNULL, pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._reader = asyncio.ensure_future(self._read(ours, self._proc))
        log.info("task runner started (pid %d): each attempt is a fork of it", self._proc.pid)

    async def spawn(self, workload: bytes) -> Attempt:
        """Fork a child for one attempt and hand it the workload."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            if self._proc is None:
                await self._start()
            read_end, write_end = os.pipe()
            started = loop.create_future()
            try:
                self._sock.sendmsg([REQUEST], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [read_end]))])
            except OSError as e:
                os.close(write_end)
                raise RuntimeError("the task runner is gone: %s" % e) from e
            finally:
                os.close(read_end)
            self._pending.append(started)
        try:
            await loop.run_in_executor(None, _write_all, write_end, workload)
        except OSError:
            pass  # the child is gone already: its status tells the rest
        return await started

    async def _read(self, sock: socket.socket, proc) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                msg = await loop.sock_recv(sock, REPLY.size)
                if len(msg) != REPLY.size:
                    break
                kind, pid, code = REPLY.unpack(msg)
                if kind == STARTED:
                    attempt = Attempt(pid)
                    self._attempts[pid] = attempt
                    if self._pending:
                        future = self._pending.popleft()
                        if not future.done():
                            future.set_result(attempt)
                elif kind == ENDED and pid in self._attempts:
                    self._attempts.pop(pid)._end(code)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if self._proc is proc:
                self._lost(proc)

    def _lost(self, proc) -> None:
        """The server ended: its children cannot report any more, so they are stopped and reported killed."""
        if self._attempts:
            log.warning("task runner (pid %d) ended; its %d running attempts are stopped and reported lost",
                        proc.pid, len(self._attempts))
        for attempt in self._attempts.values():
            attempt.signal(signal.SIGKILL)
            attempt._end(LOST)
        self._attempts.clear()
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(RuntimeError("the task runner ended before it started the attempt"))
        self._sock.close()
        self._proc = None
        self._sock = None

    async def close(self, timeout: float = 10) -> None:
        """Close the server's socket; it exits once its children ended (the caller stopped them)."""
        async with self._lock:
            proc, reader = self._proc, self._reader
            if proc is None:
                return
            self._proc = None
            self._sock.shutdown(socket.SHUT_RDWR)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
            reader.cancel()
            self._lost(proc)


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
