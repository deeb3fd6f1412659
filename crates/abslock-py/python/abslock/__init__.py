"""Single-instance locks on Linux abstract socket names.

A name bound in Linux's abstract socket namespace lives exactly as long as
some descriptor of its socket is open: the kernel frees it when the holder
exits, crashes or is SIGKILLed, and nothing is left on disk. This package is
the Python face of the ``abslock`` Rust library and command: the same name
is the same lock for both (``Lock("job")`` and ``abslock run job``).

    import abslock

    try:
        guard = abslock.Lock("my-daemon").try_acquire()
    except abslock.HeldError as e:
        raise SystemExit(f"already running: {e.holder}")
"""

from __future__ import annotations

import asyncio
import os
import pwd
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Type, TypeVar, Union

from . import _abslock

__all__ = [
    "Lock",
    "Guard",
    "Holder",
    "BoundName",
    "bound_names",
    "Reply",
    "Request",
    "Requests",
    "Error",
    "HeldError",
    "LockTimeout",
    "SquattedError",
    "InvalidNameError",
    "NotHeldError",
    "NotServingError",
    "RefusedError",
    "UnsafePathError",
    "UnresponsiveError",
    "ShuttingDownError",
]


# -- exceptions -------------------------------------------------------------


class Error(Exception):
    """An abslock error. ``exit_code`` is what the ``abslock`` command exits
    with in the same case (its documented exit codes)."""

    exit_code: int

    def __init__(self, message: str, exit_code: int = 71) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class HeldError(Error):
    """The lock is held by a trusted holder (another instance): exit 1."""

    holder: Optional["Holder"]

    def __init__(self, message: str, exit_code: int = 1, holder: Optional["Holder"] = None) -> None:
        super().__init__(message, exit_code)
        self.holder = holder


class LockTimeout(HeldError, TimeoutError):
    """The lock stayed held until the timeout: exit 1."""


class SquattedError(Error):
    """The lock is held by a user it does not trust (someone squats the
    name): exit 3. Not "another instance of mine is running"."""

    holder: Optional["Holder"]

    def __init__(self, message: str, exit_code: int = 3, holder: Optional["Holder"] = None) -> None:
        super().__init__(message, exit_code)
        self.holder = holder


class InvalidNameError(Error, ValueError):
    """A lock name that cannot be used: exit 64."""


class NotHeldError(Error):
    """Nobody holds the lock, so there is nobody to message: exit 69."""


class NotServingError(Error):
    """The holder takes no messages or stop requests: exit 69."""


class RefusedError(Error):
    """The holder refused the request: exit 77."""


class UnsafePathError(Error):
    """A lock file path another user could redirect or take over: exit 77."""


class UnresponsiveError(Error, TimeoutError):
    """The holder did not answer in time (it was left running): exit 75."""


class ShuttingDownError(Error):
    """The holder is shutting down; try to take the lock: exit 75."""


_KINDS: Dict[str, Type[Error]] = {
    "timeout": LockTimeout,
    "held": HeldError,
    "squatted": SquattedError,
    "invalid_name": InvalidNameError,
    "not_held": NotHeldError,
    "not_serving": NotServingError,
    "refused": RefusedError,
    "unsafe_path": UnsafePathError,
    "unresponsive": UnresponsiveError,
    "shutting_down": ShuttingDownError,
}


def _error(raw: "_abslock.RawError") -> Error:
    kind, message, exit_code, holder = raw.args
    cls = _KINDS.get(kind, Error)
    if issubclass(cls, HeldError):
        return cls(message, exit_code, Holder._of(holder))
    if issubclass(cls, SquattedError):
        return cls(message, exit_code, Holder._of(holder))
    return cls(message, exit_code)


_T = TypeVar("_T")


def _call(f: Callable[..., _T], *args: object) -> _T:
    try:
        return f(*args)
    except _abslock.RawError as raw:
        raise _error(raw) from None


# -- holders ----------------------------------------------------------------


def _escaped(text: str) -> str:
    """Text another user chose, safe for a terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: the kernel's ``SO_PEERCRED`` of the holder's
    socket, or the lock file's owner."""

    pid: Optional[int]
    """The holding process, as seen from this pid namespace."""
    uid: Optional[int]
    """The holder's user id."""
    argv: Optional[Tuple[str, ...]]
    """Its command line, if it could be read (``/proc/PID/cmdline``)."""

    @property
    def user(self) -> Optional[str]:
        """The holder's login name, if the user database has one."""
        if self.uid is None:
            return None
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return None

    @property
    def command(self) -> Optional[str]:
        """The command line as one string (arguments joined by spaces),
        unescaped: escape it before printing (``str(holder)`` does)."""
        return None if self.argv is None else " ".join(self.argv)

    @classmethod
    def _of(
        cls, raw: Optional[Tuple[Optional[int], Optional[int], Optional[List[bytes]]]]
    ) -> Optional["Holder"]:
        if raw is None:
            return None
        pid, uid, argv = raw
        return cls(pid, uid, None if argv is None else tuple(os.fsdecode(a) for a in argv))

    def __str__(self) -> str:
        who = "pid ?" if self.pid is None else f"pid {self.pid}"
        if self.uid is not None:
            user = self.user
            who += f" (uid {self.uid}" + (f", {_escaped(user)})" if user else ")")
        if self.command:
            who += f": {_escaped(self.command)}"
        return who


# -- every lock -------------------------------------------------------------


@dataclass(frozen=True)
class BoundName:
    """A bound abstract socket name of this network namespace, as
    ``abslock list`` shows it."""

    address: str
    """The address, ``@`` first, escaped as ``abslock list`` shows it."""
    name: Optional[str]
    """The lock name, if abslock made the address from one:
    ``Lock(b.name, system=b.system)`` is that lock. As its taker chose it,
    unescaped: print ``address`` instead, or escape it."""
    system: bool
    """Whether ``name`` is a system-wide name (else a per-user one)."""
    uid: Optional[int]
    """The user whose per-user name it is."""
    listening: bool
    """Whether the socket listens, as abslock's own locks do."""
    processes: Tuple[Holder, ...]
    """Every process with the socket open (those whose ``/proc/PID/fd``
    this process may not read are missing)."""


def bound_names(all: bool = False) -> List[BoundName]:
    """The locks of this network namespace and who has them open: every
    name abslock made from a lock name, or with ``all`` every bound
    abstract name (raw ``@names`` and other programs' sockets too).
    Waiters' places in a queue are not locks and are left out."""
    rows = _call(_abslock.bound_names, all)
    return [
        BoundName(
            address,
            name,
            system,
            uid,
            listening,
            tuple(h for h in (Holder._of(p) for p in processes) if h is not None),
        )
        for address, name, system, uid, listening, processes in rows
    ]


# -- the lock ---------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """The holder's answer to :meth:`Lock.send`."""

    status: int
    payload: bytes


class Lock:
    """A single-instance lock, named as the ``abslock`` command names it.

    * ``"job"``: a per-user name (``system=True``: one shared by all
      users), the same lock as ``abslock run job``, with the same file in
      the user's runtime directory that keeps other network namespaces out;
    * ``"@addr"``: the exact abstract socket address ``addr``, with the
      command's escapes (``\\x00``); it also excludes the classic
      ``socket(AF_UNIX, SOCK_DGRAM).bind("\\0addr")`` recipe;
    * ``"file:PATH"``: a ``flock(2)`` lock file.

    A holder running as another uid than yours or root is a squatter
    (:class:`SquattedError`), unless trusted with ``trust_uids`` or
    ``trust_any``. ``file`` adds a lock file that decides (the command's
    ``--file``, combined mode).
    """

    def __init__(
        self,
        name: str,
        *,
        system: bool = False,
        trust_uids: Sequence[int] = (),
        trust_any: bool = False,
        file: Optional[Union[str, "os.PathLike[str]"]] = None,
    ) -> None:
        self._lock = _call(
            _abslock.Lock, name, system, list(trust_uids), trust_any,
            None if file is None else os.fspath(file),
        )
        self._name = name
        # The guards of `with lock:` blocks, per thread: one Lock object
        # may be entered by several threads, each waiting its turn.
        self._entered = threading.local()

    def try_acquire(self) -> "Guard":
        """Takes the lock if it is free; :class:`HeldError` (or
        :class:`SquattedError`) naming the holder if not."""
        return Guard(_call(self._lock.try_acquire))

    def acquire(self, timeout: Optional[float] = None) -> "Guard":
        """Takes the lock, waiting at most ``timeout`` seconds (None: as
        long as it takes; 0: :meth:`try_acquire`). The wait sleeps in the
        kernel until the holder lets go, with the GIL released; Ctrl-C
        interrupts it with ``KeyboardInterrupt``. Raises
        :class:`LockTimeout` when time runs out."""
        return Guard(_call(self._lock.acquire, timeout))

    async def acquire_async(self, timeout: Optional[float] = None) -> "Guard":
        """Takes the lock without blocking the event loop and without a
        thread: one descriptor that the kernel makes readable when the
        holder lets go, watched with ``loop.add_reader``. Cancelled, it
        holds nothing."""
        loop = asyncio.get_running_loop()
        waiter = _call(_abslock.Waiter)
        deadline = None if timeout is None else loop.time() + timeout
        fd = waiter.fileno()
        while True:
            guard = _call(waiter.poll, self._lock)
            if guard is not None:
                return Guard(guard)
            delay = waiter.retry_after()
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    holder = self.holder()
                    raise LockTimeout(
                        f"timed out; lock is still held by {holder}" if holder
                        else "timed out; lock is still held",
                        1,
                        holder,
                    )
                delay = left if delay is None else min(delay, left)
            woken = loop.create_future()

            def wake() -> None:
                if not woken.done():
                    woken.set_result(None)

            loop.add_reader(fd, wake)
            timer = None if delay is None else loop.call_later(delay, wake)
            try:
                await woken
            finally:
                loop.remove_reader(fd)
                if timer is not None:
                    timer.cancel()

    def holder(self) -> Optional[Holder]:
        """Who holds the lock now, or None if it is free."""
        return Holder._of(_call(self._lock.holder))

    def wait_released(self, timeout: Optional[float] = None) -> bool:
        """Waits until the lock is free without taking it; False if it was
        still held after ``timeout`` seconds."""
        return _call(self._lock.wait_released, timeout)

    def send(
        self,
        args: Sequence[Union[str, bytes]],
        *,
        payload: Union[str, bytes] = b"",
        timeout: float = 5.0,
    ) -> Reply:
        """Hands ``args`` (and ``payload``) to the running holder, as
        ``abslock send NAME -- ARGS`` does, and returns its :class:`Reply`.
        Raises :class:`NotHeldError` if nobody holds the lock,
        :class:`NotServingError` if the holder takes no messages."""
        argv = [os.fsencode(a) for a in args]
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        status, reply = _call(self._lock.send, argv, data, timeout)
        return Reply(status, reply)

    def request_stop(self, timeout: float = 5.0) -> None:
        """Asks the holder to stop (it may refuse: :class:`RefusedError`)."""
        _call(self._lock.request_stop, timeout)

    def __enter__(self) -> "Guard":
        guard = self.acquire()
        stack: List[Guard] = self._entered.__dict__.setdefault("guards", [])
        stack.append(guard)
        return guard

    def __exit__(self, *exc: object) -> None:
        stack: List[Guard] = self._entered.__dict__["guards"]
        stack.pop().release()

    def __str__(self) -> str:
        return str(self._lock)

    def __repr__(self) -> str:
        return f"abslock.Lock({self._name!r})"


class Guard:
    """A held lock: released by :meth:`release`, at the end of a ``with``
    block, when garbage-collected, or by the kernel when the process dies,
    however it dies."""

    def __init__(self, raw: "_abslock.Guard") -> None:
        self._raw = raw

    def release(self) -> None:
        """Releases the lock (a no-op if released already)."""
        self._raw.release()

    @property
    def held(self) -> bool:
        """Whether this guard still holds the lock."""
        return self._raw.held

    def requests(self) -> "Requests":
        """The messages (:meth:`Lock.send`, ``abslock send``) and stop
        requests sent to this holder, as a :class:`Requests` stream. Only
        the holder's own uid and root may send them."""
        return Requests(_call(self._raw.requests))

    def __enter__(self) -> "Guard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Request:
    """A message (``kind == "message"``) or a stop request (``"stop"``).
    Answer a message with :meth:`reply`, a stop request with
    :meth:`accept`; either with :meth:`refuse`. Left unanswered, a message
    is answered with status 0 and a stop request accepted."""

    def __init__(self, raw: "_abslock.Request") -> None:
        self._raw = raw

    @property
    def kind(self) -> str:
        return self._raw.kind

    @property
    def argv(self) -> List[str]:
        """The sender's arguments (``os.fsdecode``-d)."""
        return [os.fsdecode(a) for a in self._raw.argv]

    @property
    def argv_bytes(self) -> List[bytes]:
        return list(self._raw.argv)

    @property
    def payload(self) -> bytes:
        return self._raw.payload

    @property
    def cwd(self) -> str:
        """The sender's working directory."""
        return os.fsdecode(self._raw.cwd)

    @property
    def peer(self) -> Tuple[Optional[int], int, int]:
        """The sender's (pid, uid, gid), from the kernel."""
        return self._raw.peer

    def reply(self, status: int = 0, payload: Union[str, bytes] = b"") -> None:
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        _call(self._raw.reply, status, data)

    def accept(self) -> None:
        _call(self._raw.accept)

    def refuse(self, reason: str) -> None:
        _call(self._raw.refuse, reason)


class Requests:
    """The requests sent to a held lock. Iterate (blocking), call
    :meth:`next` with a timeout, or in asyncio ``async for``."""

    def __init__(self, raw: "_abslock.RequestStream") -> None:
        self._raw = raw

    def next(self, timeout: Optional[float] = None) -> Optional[Request]:
        """The next request, waiting at most ``timeout`` seconds; None on
        timeout or once the lock is released."""
        raw = _call(self._raw.next, timeout)
        return None if raw is None else Request(raw)

    def fileno(self) -> int:
        """A descriptor that polls readable when a request may be waiting
        (then call :meth:`try_next` until it returns None)."""
        fd = self._raw.fileno()
        if fd is None:
            raise Error("no readiness descriptor (out of file descriptors)", 71)
        return fd

    def try_next(self) -> Optional[Request]:
        raw = self._raw.try_next()
        return None if raw is None else Request(raw)

    def __iter__(self) -> Iterator[Request]:
        while True:
            request = self.next()
            if request is None:
                return
            yield request

    def __aiter__(self) -> "Requests":
        return self

    async def __anext__(self) -> Request:
        loop = asyncio.get_running_loop()
        while True:
            request = self.try_next()
            if request is not None:
                return request
            ready: "asyncio.Future[None]" = loop.create_future()

            def wake() -> None:
                if not ready.done():
                    ready.set_result(None)

            fd = self.fileno()
            loop.add_reader(fd, wake)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
