# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""A long-lived task runner for the Temporal worker: it imports Airflow once, then runs each task attempt
in a process forked from it, as Airflow's LocalExecutor and Edge worker run tasks from warm processes.

The worker never forks itself (the Temporal SDK's core runs threads); it starts this server as a
separate interpreter and talks to it over a SOCK_SEQPACKET socket pair:
- worker to server: `R`, a request carrying, as SCM_RIGHTS, the read end of a pipe; the worker writes
  the workload into the pipe and closes it (the workload, with its token, never shows on a command
  line); `K seq signal`, stop the attempt of request number `seq` (counted from 1) if it still runs;
- server to worker: `S pid seq` when the process `pid` took request `seq` (in request order), `E pid
  status` when its attempt ended (its exit code, or minus the signal that killed it).
The server forks attempt processes ("slots") as the attempts need them, each in a session of its own,
and gives a slot whose attempt ended the next one: Airflow's supervisor in it forks the task process,
as a LocalExecutor worker does, and the fork of the big server and the copying of its memory happen once
per slot, not once per attempt (about 30 ms of CPU per attempt on the Temporal bench). A slot is replaced
after SLOT_ATTEMPTS attempts, and after an attempt that was stopped. Each attempt's output is flushed
when it ends.

Stopping goes through the server, which knows which attempt a slot runs: a stop for an attempt that
already ended never reaches the next one. SIGTERM goes to the slot (Airflow's supervisor passes it on to
the task process, whose on_kill runs); SIGKILL to every process of the slot's session, the task process
included (Airflow 3.3 starts it in a process group of its own, which a signal to the slot's process
group would miss). Whatever a stopped attempt or a dead slot left in its session is killed.

The server exits when the worker closes its end, after its slots ended. A worker that stops closes its
end once it stopped its attempts; if the worker dies instead (killed, out of memory), the attempts still
running have nobody to heartbeat for them or to report them, and Temporal hands them to another worker:
the server kills their sessions at once, as systemd would kill the whole unit.
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
STARTED, ENDED, REQUEST, KILL = b"S", b"E", b"R", b"K"
# What a slot tells the server when its attempt ended: the exit code.
CODE = struct.Struct("!i")
# Attempts one slot runs before it is replaced (what the supervisor leaves behind stays bounded).
SLOT_ATTEMPTS = 100
# Minus the signal number: the status of an attempt whose server was lost (its process killed).
LOST = -signal.SIGKILL
# Started as `python -c _SERVER fd runner slot_attempts`: the package directory is not on sys.path of a `-c` process
# started from another working directory, so it is added (at the end, never before the standard library).
_SERVER = (
    "import sys; p = %r\n"
    "p in sys.path or sys.path.append(p)\n"
    "from qubinode_airflow.temporal.forkserver import serve; serve(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))\n"
    % os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _receive(sock: socket.socket) -> tuple[bytes, list[int]]:
    """A message and the descriptors it carried; (b"", []) when the other end closed."""
    try:
        msg, ancdata, unused_flags, unused_addr = sock.recvmsg(16, socket.CMSG_SPACE(4 * 4))
    except OSError:
        return b"", []
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return msg, list(fds)


def _run_one(data_fd: int, runner) -> int:
    """One attempt in a slot: its exit code, whatever the task raised."""
    code = 1
    try:
        data = _read_all(data_fd)
        os.close(data_fd)
        code = runner.run(data.decode("utf-8"))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever the task raised, the attempt ends here
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream must not stop the slot
                pass
    return code if isinstance(code, int) and 0 <= code < 256 else 1


def _slot(ctrl: socket.socket, runner) -> None:
    """In a forked slot: run the attempts the server hands over until it closes the socket; never returns."""
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        while True:
            msg, fds = _receive(ctrl)
            if msg != REQUEST or len(fds) != 1:
                break
            ctrl.send(CODE.pack(_run_one(fds[0], runner)))
    except BaseException:  # noqa: BLE001,S110 - the server sees the slot end and reports its attempt
        pass
    os._exit(0)


class _Slot:
    """The server's record of one slot."""

    def __init__(self, pid: int, ctrl: socket.socket, pidfd: int):
        self.pid, self.ctrl, self.pidfd = pid, ctrl, pidfd
        self.seq = 0  # the request it runs; 0: idle
        self.served = 0
        self.stopped = False


def serve(fd: int, runner_name: str, slot_attempts: int = SLOT_ATTEMPTS) -> None:
    """The server's main loop: `runner_name` is the module whose warm() runs once and run(data) per attempt."""
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
    slots: dict[int, _Slot] = {}
    idle: list[_Slot] = []
    requests = 0
    listening = True

    def fork_slot() -> _Slot:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                # Only its own end stays open: a slot holding another's socket would keep it from ever
                # seeing the server close it.
                sel.close()
                sock.close()
                ours.close()
                for other in slots.values():
                    other.ctrl.close()
                    os.close(other.pidfd)
                _slot(theirs, runner)
            finally:
                os._exit(1)
        theirs.close()
        slot = _Slot(pid, ours, os.pidfd_open(pid))
        slots[pid] = slot
        sel.register(ours, selectors.EVENT_READ, ("said", slot))
        sel.register(slot.pidfd, selectors.EVENT_READ, ("ended", slot))
        return slot

    def retire(slot: _Slot) -> None:
        """No more attempts for this slot: it exits when it reads the closed socket."""
        if slot in idle:
            idle.remove(slot)
        if slot.ctrl.fileno() >= 0:
            sel.unregister(slot.ctrl)
            slot.ctrl.close()

    def hand_over(data_fd: int) -> _Slot:
        while idle:
            slot = idle.pop()
            try:
                slot.ctrl.sendmsg([REQUEST], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [data_fd]))])
                return slot
            except OSError:
                retire(slot)  # it died idle: its end is reaped below
        slot = fork_slot()
        slot.ctrl.sendmsg([REQUEST], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [data_fd]))])
        return slot

    while listening or slots:
        for key, unused in sel.select():
            if key.data is None:
                msg, fds = _receive(sock)
                if not msg:
                    for extra in fds:
                        os.close(extra)
                    sel.unregister(sock)
                    listening = False
                    running = [slot for slot in slots.values() if slot.seq]
                    if running:
                        log.warning("forkserver: the worker is gone; its %d running attempts are killed", len(running))
                    for slot in list(slots.values()):
                        if slot.seq:
                            _signal_session(slot.pid, signal.SIGKILL)
                        retire(slot)
                    continue
                if msg[:1] == KILL and len(msg) == REPLY.size and not fds:
                    unused, seq, sig = REPLY.unpack(msg)
                    for slot in slots.values():
                        if slot.seq == seq:  # still running that attempt: never the one after it
                            slot.stopped = True
                            _stop(slot.pid, sig)
                    continue
                if msg != REQUEST or len(fds) != 1:
                    for extra in fds:
                        os.close(extra)
                    raise SystemExit("forkserver: malformed request %r with %d descriptors" % (msg, len(fds)))
                requests += 1
                try:
                    slot = hand_over(fds[0])
                finally:
                    os.close(fds[0])
                slot.seq = requests
                _reply(sock, STARTED, slot.pid, requests)
                continue
            what, slot = key.data
            if slot.pid not in slots:
                continue  # ended earlier in this round
            if what == "said":
                if slot.ctrl.fileno() < 0:
                    continue  # retired earlier in this round
                said = slot.ctrl.recv(CODE.size)
                if len(said) != CODE.size:
                    retire(slot)  # it is ending: its end is reported below
                    continue
                seq, slot.seq = slot.seq, 0
                slot.served += 1
                if slot.stopped:
                    # What the stopped attempt left running goes with its slot.
                    _signal_session(slot.pid, signal.SIGKILL)
                    retire(slot)
                elif slot.served >= slot_attempts or not listening:
                    retire(slot)
                else:
                    idle.append(slot)
                if seq and listening:
                    _reply(sock, ENDED, slot.pid, CODE.unpack(said)[0])
                continue
            # The slot's process ended; an exit code it sent before counts.
            code = None
            if slot.seq and slot.ctrl.fileno() >= 0:
                try:
                    said = slot.ctrl.recv(CODE.size, socket.MSG_DONTWAIT)
                    code = CODE.unpack(said)[0] if len(said) == CODE.size else None
                except OSError:
                    pass
            retire(slot)
            sel.unregister(slot.pidfd)
            os.close(slot.pidfd)
            del slots[slot.pid]
            # Whatever it left in its session (its task process, when the slot was killed) goes too; before it
            # is reaped, while its pid, which names the session, cannot be reused.
            _signal_session(slot.pid, signal.SIGKILL)
            unused, status = os.waitpid(slot.pid, 0)
            if slot.seq and listening:
                _reply(sock, ENDED, slot.pid, os.waitstatus_to_exitcode(status) if code is None else code)
    sock.close()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _session(sid: int) -> list[int]:
    """The live processes of session `sid` (Linux's /proc); zombies are left out."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                # After the command's closing parenthesis: state, ppid, pgrp, session.
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != b"Z":
            members.append(int(entry))
    return members


def _signal_session(pid: int, sig: int) -> None:
    """Signal every process of the session `pid` leads (the attempt, its task process in a process group of
    its own, and whatever they started); `pid` itself if it has not made its session yet. SIGKILL is sent
    until none is left, so a process forked meanwhile goes too."""
    for round_ in range(10):
        members = [member for member in _session(pid) if member != os.getpid()]
        if not members:
            if round_ == 0:
                _signal(pid, sig)
            return
        for member in members:
            _signal(member, sig)
        if sig != signal.SIGKILL:
            return


def _stop(pid: int, sig: int) -> None:
    """Stop the attempt running in process `pid`: SIGKILL kills its whole session; another signal goes to
    the process only (Airflow's supervisor passes it on to the task process, whose on_kill runs)."""
    if sig == signal.SIGKILL:
        _signal_session(pid, sig)
    else:
        _signal(pid, sig)


def _reply(sock: socket.socket, kind: bytes, pid: int, code: int) -> None:
    try:
        sock.send(REPLY.pack(kind, pid, code))
    except OSError:
        pass  # the worker is gone: its end of the socket is closed


class Attempt:
    """One task attempt, run by a process (a slot) of the server."""

    def __init__(self, pid: int, seq: int, server: ForkServer):
        self.pid = pid
        self.seq = seq
        self.returncode = None
        self._server = server
        self._ended = asyncio.get_running_loop().create_future()

    def _end(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
            self._ended.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)

    def signal(self, sig: int) -> None:
        """Stop the attempt: SIGTERM lets Airflow's supervisor pass it on to the task process; SIGKILL kills
        the attempt's whole session. A no-op once the attempt ended."""
        if self.returncode is None and not self._server._kill(self.seq, sig):
            _stop(self.pid, sig)  # the server is gone: nothing runs another attempt in that process


class ForkServer:
    """The worker's side: starts the server when first needed, and again after it was lost."""

    def __init__(self, runner: str = "qubinode_airflow.temporal.run_workload", slot_attempts: int = SLOT_ATTEMPTS):
        self.runner = runner
        self.slot_attempts = slot_attempts
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
                sys.executable, "-c", _SERVER, str(theirs.fileno()), self.runner, str(self.slot_attempts),
                stdin=asyncio.subprocess.DEVNULL, pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._reader = asyncio.ensure_future(self._read(ours, self._proc))
        log.info("task runner started (pid %d): attempts run in processes forked from it", self._proc.pid)

    async def spawn(self, workload: bytes) -> Attempt:
        """Have the server run one attempt and hand it the workload."""
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
                    # A slot's next attempt starts only after the server reported the one before ended.
                    attempt = Attempt(pid, code, self)
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
            _signal_session(attempt.pid, signal.SIGKILL)
            attempt._end(LOST)
        self._attempts.clear()
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(RuntimeError("the task runner ended before it started the attempt"))
        self._sock.close()
        self._proc = None
        self._sock = None

    def _kill(self, seq: int, sig: int) -> bool:
        """Ask the server to signal the attempt of request `seq` if it still runs; False if it is gone."""
        if self._sock is None:
            return False
        try:
            self._sock.send(REPLY.pack(KILL, seq, sig))
            return True
        except OSError:
            return False

    async def close(self, timeout: float = 10) -> None:
        """Close the server's socket; it exits once its slots ended (the caller stopped the attempts)."""
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
