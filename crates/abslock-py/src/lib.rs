//! The native half of the `abslock` Python package (`abslock._abslock`): a
//! thin layer over the `abslock` crate. The public API, its exceptions and
//! asyncio live in `python/abslock/__init__.py`; errors cross as
//! `_abslock.RawError(kind, message, exit_code, holder)`, which that module
//! turns into its exception classes.
//!
//! Every blocking call releases the GIL and waits inside
//! `abslock::interrupt::interruptible`: a signal makes the wait return, the
//! Python handlers run (`KeyboardInterrupt` for Ctrl-C), and unless one
//! raised, the wait goes on where it was.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use abslock::{AnyGuard, AnyLock, Backend, Error, Holder, Message, Named, Requests};
use abslock::{Incoming, Received, StopRequest};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

pyo3::create_exception!(
    _abslock,
    RawError,
    pyo3::exceptions::PyException,
    "An abslock error on its way to the Python exception classes."
);

/// A holder as a tuple: (pid, uid, argv), each possibly None.
type HolderTuple = (Option<u32>, Option<u32>, Option<Vec<OsString>>);

fn holder_tuple(holder: &Holder) -> HolderTuple {
    let argv = holder
        .pid()
        .and_then(|pid| abslock::ProcessInfo::of(pid).ok())
        .and_then(argv);
    (holder.pid(), holder.uid(), argv)
}

/// A process's command line, if `/proc` gave one.
fn argv(process: abslock::ProcessInfo) -> Option<Vec<OsString>> {
    (!process.cmdline.is_empty()).then(|| process.cmdline.into_iter().map(OsString::from).collect())
}

/// The error's kind, as `__init__.py` maps it to a class.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::Held(_) => "held",
        Error::Timeout(_) => "timeout",
        Error::Squatted(_) => "squatted",
        Error::InvalidName(_) | Error::NotAFile(_) => "invalid_name",
        Error::NotHeld => "not_held",
        Error::NotServing => "not_serving",
        Error::ShuttingDown => "shutting_down",
        Error::Unresponsive { .. } => "unresponsive",
        Error::Refused(_) => "refused",
        Error::UnsafePath(_) => "unsafe_path",
        Error::Interrupted => "interrupted",
        _ => "other",
    }
}

fn raise(e: Error) -> PyErr {
    let holder = e.holder().map(holder_tuple);
    RawError::new_err((kind(&e), e.to_string(), e.exit_code(), holder))
}

/// A timeout in seconds: None (forever), or a finite number >= 0.
fn duration(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    timeout
        .map(|t| {
            Duration::try_from_secs_f64(t).map_err(|_| {
                PyValueError::new_err(format!("timeout must be a number of seconds >= 0, not {t}"))
            })
        })
        .transpose()
}

/// Runs the wait `f(time left)` with the GIL released, interruptibly:
/// after each signal, runs the Python handlers (raising what they raise)
/// and goes on with what is left of `timeout`.
fn wait<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    f: impl Fn(Option<Duration>) -> abslock::Result<T> + Sync,
) -> PyResult<T> {
    let deadline = timeout.map(|t| Instant::now().checked_add(t));
    loop {
        let left = match deadline {
            None => None,
            Some(None) => None,
            Some(Some(d)) => Some(d.saturating_duration_since(Instant::now())),
        };
        match py.detach(|| abslock::interrupt::interruptible(|| f(left))) {
            Err(Error::Interrupted) => py.check_signals()?,
            other => return other.map_err(raise),
        }
    }
}

/// A lock, in the syntax of the `abslock` command's NAME.
#[pyclass(module = "abslock._abslock", frozen)]
struct Lock {
    lock: AnyLock,
}

#[pymethods]
impl Lock {
    #[new]
    #[pyo3(signature = (name, system=false, trust_uids=Vec::new(), trust_any=false, file=None))]
    fn new(
        name: &str,
        system: bool,
        trust_uids: Vec<u32>,
        trust_any: bool,
        file: Option<std::path::PathBuf>,
    ) -> PyResult<Lock> {
        let how = Named {
            system,
            trust_uids,
            trust_any,
            file,
        };
        Ok(Lock {
            lock: AnyLock::named(name, &how).map_err(raise)?,
        })
    }

    fn try_acquire(&self, py: Python<'_>) -> PyResult<Guard> {
        let guard = py.detach(|| self.lock.try_acquire()).map_err(raise)?;
        Ok(Guard::new(guard))
    }

    #[pyo3(signature = (timeout=None))]
    fn acquire(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Guard> {
        let timeout = duration(timeout)?;
        let guard = wait(py, timeout, |left| self.lock.acquire(left))?;
        Ok(Guard::new(guard))
    }

    fn holder(&self, py: Python<'_>) -> PyResult<Option<HolderTuple>> {
        let holder = py.detach(|| self.lock.holder()).map_err(raise)?;
        Ok(holder.as_ref().map(holder_tuple))
    }

    #[pyo3(signature = (timeout=None))]
    fn wait_released(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = duration(timeout)?;
        wait(py, timeout, |left| self.lock.wait_released(left))
    }

    /// Sends `argv` (and `payload`) to the holder; (status, reply payload).
    #[pyo3(signature = (argv, payload, timeout))]
    fn send(
        &self,
        py: Python<'_>,
        argv: Vec<Vec<u8>>,
        payload: Vec<u8>,
        timeout: f64,
    ) -> PyResult<(i32, Py<PyBytes>)> {
        let socket = self.socket()?;
        let timeout = duration(Some(timeout))?.unwrap_or_default();
        let message = Message {
            argv,
            cwd: std::env::current_dir()
                .map(|d| d.into_os_string().into_vec())
                .unwrap_or_default(),
            payload,
        };
        let reply = py
            .detach(|| socket.send(&message, timeout))
            .map_err(raise)?;
        Ok((reply.status, PyBytes::new(py, &reply.payload).unbind()))
    }

    /// Asks the holder to stop.
    fn request_stop(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let socket = self.socket()?;
        let timeout = duration(Some(timeout))?.unwrap_or_default();
        py.detach(|| socket.request_stop(timeout)).map_err(raise)
    }

    fn __str__(&self) -> String {
        self.lock.to_string()
    }
}

impl Lock {
    fn socket(&self) -> PyResult<&abslock::Lock> {
        self.lock.socket().ok_or_else(|| {
            raise(Error::Unsupported(format!(
                "{} is a lock file alone; messages need a socket name (add file= to keep the file)",
                self.lock
            )))
        })
    }
}

/// A held lock. Released by `release()`, or when garbage-collected.
#[pyclass(module = "abslock._abslock", frozen)]
struct Guard {
    guard: Mutex<Option<AnyGuard>>,
}

impl Guard {
    fn new(guard: AnyGuard) -> Guard {
        Guard {
            guard: Mutex::new(Some(guard)),
        }
    }
}

#[pymethods]
impl Guard {
    /// Releases the lock; nothing if it was released already.
    fn release(&self) {
        if let Ok(mut guard) = self.guard.lock() {
            guard.take();
        }
    }

    #[getter]
    fn held(&self) -> bool {
        self.guard.lock().is_ok_and(|g| g.is_some())
    }

    /// The holder's request stream (messages and stop requests).
    fn requests(&self) -> PyResult<RequestStream> {
        let guard = self
            .guard
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the guard is poisoned"))?;
        let socket = guard
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("the lock was released"))?
            .socket()
            .ok_or_else(|| {
                raise(Error::Unsupported(
                    "a lock file alone takes no messages; use a socket name".into(),
                ))
            })?;
        Ok(RequestStream {
            requests: Mutex::new(socket.requests()),
        })
    }
}

/// Waiting without blocking, for an event loop (see `abslock::Waiter`).
#[pyclass(module = "abslock._abslock")]
struct Waiter {
    waiter: abslock::Waiter,
}

#[pymethods]
impl Waiter {
    #[new]
    fn new() -> PyResult<Waiter> {
        Ok(Waiter {
            waiter: abslock::Waiter::new().map_err(raise)?,
        })
    }

    fn fileno(&self) -> i32 {
        self.waiter.as_fd().as_raw_fd()
    }

    /// The guard if taken now, else None (wait for fileno or retry_after).
    fn poll(&mut self, lock: &Lock) -> PyResult<Option<Guard>> {
        Ok(self.waiter.poll(&lock.lock).map_err(raise)?.map(Guard::new))
    }

    fn retry_after(&self) -> Option<f64> {
        self.waiter.retry_after().map(|d| d.as_secs_f64())
    }
}

/// The requests sent to a held lock.
#[pyclass(module = "abslock._abslock", frozen)]
struct RequestStream {
    requests: Mutex<Requests>,
}

impl RequestStream {
    fn requests(&self) -> PyResult<std::sync::MutexGuard<'_, Requests>> {
        self.requests
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the request stream is poisoned"))
    }
}

#[pymethods]
impl RequestStream {
    /// A descriptor that polls readable when a request may be waiting.
    fn fileno(&self) -> PyResult<Option<i32>> {
        Ok(self.requests()?.readiness().map(|fd| fd.as_raw_fd()))
    }

    /// The next request: waits at most `timeout` seconds (None: forever);
    /// None on timeout or once the lock is released.
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Request>> {
        use std::sync::mpsc::RecvTimeoutError;
        let deadline = duration(timeout)?.and_then(|t| Instant::now().checked_add(t));
        // In slices, so that a signal's handler runs within one.
        let slice = Duration::from_millis(50);
        loop {
            let step = deadline.map_or(slice, |d| {
                d.saturating_duration_since(Instant::now()).min(slice)
            });
            let got = py.detach(|| self.requests().map(|r| r.recv_timeout(step)))?;
            match got {
                Ok(incoming) => return Ok(Some(Request::new(incoming))),
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
                Err(RecvTimeoutError::Timeout) => {
                    py.check_signals()?;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The next request if one is waiting, else None; never blocks.
    fn try_next(&self) -> PyResult<Option<Request>> {
        Ok(self.requests()?.try_recv().ok().map(Request::new))
    }
}

/// A message or a stop request. Unanswered, a message is answered with
/// status 0 and no payload, and a stop request is accepted, when the
/// request is garbage-collected.
#[pyclass(module = "abslock._abslock", frozen)]
struct Request {
    kind: &'static str,
    incoming: Mutex<Option<Incoming>>,
}

impl Request {
    fn new(incoming: Incoming) -> Request {
        let kind = match &incoming {
            Incoming::Message(_) => "message",
            _ => "stop",
        };
        Request {
            kind,
            incoming: Mutex::new(Some(incoming)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&Incoming) -> T) -> PyResult<T> {
        let incoming = self
            .incoming
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the request is poisoned"))?;
        incoming
            .as_ref()
            .map(f)
            .ok_or_else(|| PyRuntimeError::new_err("the request was answered already"))
    }

    fn take(&self) -> PyResult<Incoming> {
        self.incoming
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the request is poisoned"))?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the request was answered already"))
    }
}

fn message_of(incoming: &Incoming) -> Option<&Received> {
    match incoming {
        Incoming::Message(m) => Some(m),
        _ => None,
    }
}

#[pymethods]
impl Request {
    /// "message" or "stop".
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// The sender's (pid, uid, gid), as the kernel reported them.
    #[getter]
    fn peer(&self) -> PyResult<(Option<u32>, u32, u32)> {
        self.with(|i| {
            let peer = match i {
                Incoming::Message(m) => m.peer(),
                Incoming::Stop(s) => s.peer(),
                _ => abslock::Peer {
                    pid: None,
                    uid: u32::MAX,
                    gid: u32::MAX,
                },
            };
            (peer.pid, peer.uid, peer.gid)
        })
    }

    /// A message's argv, as bytes.
    #[getter]
    fn argv(&self, py: Python<'_>) -> PyResult<Vec<Py<PyBytes>>> {
        self.with(|i| {
            message_of(i)
                .map(|m| {
                    m.message()
                        .argv
                        .iter()
                        .map(|a| PyBytes::new(py, a).unbind())
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// A message's payload.
    #[getter]
    fn payload(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        self.with(|i| {
            PyBytes::new(py, message_of(i).map_or(&[][..], |m| &m.message().payload)).unbind()
        })
    }

    /// The sender's working directory, as bytes.
    #[getter]
    fn cwd(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        self.with(|i| {
            PyBytes::new(
                py,
                message_of(i).map_or(&[][..], |m| m.cwd().as_os_str().as_bytes()),
            )
            .unbind()
        })
    }

    /// Answers a message with an exit status and a payload.
    fn reply(&self, status: i32, payload: Vec<u8>) -> PyResult<()> {
        match self.take()? {
            Incoming::Message(m) => m.reply(status, &payload).map_err(raise),
            other => {
                *self
                    .incoming
                    .lock()
                    .map_err(|_| PyRuntimeError::new_err("poisoned"))? = Some(other);
                Err(PyRuntimeError::new_err(
                    "a stop request takes accept() or refuse(), not reply()",
                ))
            }
        }
    }

    /// Accepts a stop request (the sender is told the holder is stopping).
    fn accept(&self) -> PyResult<()> {
        match self.take()? {
            Incoming::Stop(s) => {
                s.accept();
                Ok(())
            }
            other => {
                *self
                    .incoming
                    .lock()
                    .map_err(|_| PyRuntimeError::new_err("poisoned"))? = Some(other);
                Err(PyRuntimeError::new_err(
                    "a message takes reply(), not accept()",
                ))
            }
        }
    }

    /// Refuses the request with a reason the sender sees.
    fn refuse(&self, reason: &str) -> PyResult<()> {
        match self.take()? {
            Incoming::Message(m) => m.refuse(reason).map_err(raise),
            Incoming::Stop(s) => refuse_stop(s, reason),
            _ => Ok(()),
        }
    }
}

fn refuse_stop(s: StopRequest, reason: &str) -> PyResult<()> {
    s.refuse(reason).map_err(raise)
}

/// One bound name for `abslock.bound_names`: (address as `abslock list`
/// shows it, lock name, system scope, the per-user name's uid, listening,
/// the processes that have it open).
type BoundTuple = (
    String,
    Option<String>,
    bool,
    Option<u32>,
    bool,
    Vec<HolderTuple>,
);

/// The locks of this network namespace (`abslock list`).
#[pyfunction]
#[pyo3(signature = (all = false))]
fn bound_names(py: Python<'_>, all: bool) -> PyResult<Vec<BoundTuple>> {
    let names = py.detach(|| abslock::bound_names(all)).map_err(|source| {
        raise(Error::Io {
            context: "listing Unix sockets",
            source,
        })
    })?;
    Ok(names
        .into_iter()
        .map(|b| {
            let (name, system, uid) = match b.lock_name() {
                Some((abslock::Scope::User(uid), name)) => (Some(name), false, Some(uid)),
                Some((abslock::Scope::System, name)) => (Some(name), true, None),
                _ => (None, false, None),
            };
            let processes = b
                .processes
                .into_iter()
                .map(|p| (Some(p.pid), Some(p.uid), argv(p)))
                .collect();
            let address = format!("@{}", abslock::display_address(&b.address));
            (address, name, system, uid, b.listening, processes)
        })
        .collect())
}

#[pymodule]
fn _abslock(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("RawError", m.py().get_type::<RawError>())?;
    m.add_class::<Lock>()?;
    m.add_class::<Guard>()?;
    m.add_class::<Waiter>()?;
    m.add_class::<RequestStream>()?;
    m.add_class::<Request>()?;
    m.add_function(wrap_pyfunction!(bound_names, m)?)?;
    Ok(())
}
