"""One ScienceWorld simulator in its own Java process, started on first use.

The JVM is launched through py4j with ``--die-on-broken-pipe``: it watches its stdin and exits
when the pipe to this Python process breaks, so even a ``SIGKILL`` of the Python side leaves no
Java process behind. :meth:`JavaServer.close`, a :func:`weakref.finalize` hook (which also runs
at interpreter exit) and garbage collection all shut it down the same way.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import weakref
from collections.abc import Sequence
from typing import Any

from agemem_gym.errors import AgeMemError, MissingExtraError

logger = logging.getLogger(__name__)

#: JVM options: a bounded heap keeps one simulator near 0.5 GB of memory instead of a quarter
#: of the machine's RAM (the JVM default); the serial collector avoids one GC thread per core.
DEFAULT_JAVA_OPTIONS: tuple[str, ...] = ("-Xmx1g", "-XX:+UseSerialGC")

_SHUTDOWN_WAIT_S = 5.0


class JavaStartError(AgeMemError, RuntimeError):
    """The ScienceWorld JVM could not be started."""


def _shutdown(gateway: Any, proc: subprocess.Popen) -> None:
    """Stop a gateway and its Java process; wait for it, kill it if it lingers."""
    try:
        gateway.shutdown()
    except Exception:  # noqa: BLE001 - the JVM may already be gone
        logger.debug("py4j gateway shutdown failed", exc_info=True)
    try:
        if proc.stdin is not None:
            proc.stdin.close()  # EOF on stdin: the JVM exits (--die-on-broken-pipe)
    except OSError:
        pass
    try:
        proc.wait(timeout=_SHUTDOWN_WAIT_S)
    except subprocess.TimeoutExpired:
        logger.warning("ScienceWorld JVM (pid %d) did not exit; killing it", proc.pid)
        proc.kill()
        proc.wait(timeout=_SHUTDOWN_WAIT_S)


class JavaServer:
    """A lazily started ScienceWorld JVM with one simulator (``PythonInterface``) inside.

    Args:
        java_options: options passed to ``java`` (heap size, collector).
    """

    def __init__(self, java_options: Sequence[str] = DEFAULT_JAVA_OPTIONS) -> None:
        self.java_options = tuple(java_options)
        self._interface: Any = None
        self._proc: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def running(self) -> bool:
        """Whether the JVM has been started and is still alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the JVM, or None before the first use and after :meth:`close`."""
        return self._proc.pid if self._proc is not None else None

    @property
    def interface(self) -> Any:
        """The simulator object (py4j proxy of ScienceWorld's ``PythonInterface``)."""
        if self._interface is None or not self.running:
            self.close()
            self._start()
        return self._interface

    def _start(self) -> None:
        try:
            from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway
            from scienceworld.constants import BASEPATH, JAR_PATH
        except ImportError as e:
            raise MissingExtraError("the ScienceWorld engine", "sciworld") from e
        if shutil.which("java") is None:
            raise JavaStartError(
                "ScienceWorld needs a Java runtime (version 11 or newer) with `java` on PATH; "
                "none was found. Install one, e.g. `apt-get install openjdk-17-jre-headless`."
            )
        try:
            port, proc = launch_gateway(
                classpath=JAR_PATH,
                die_on_exit=True,
                cwd=BASEPATH,
                return_proc=True,
                javaopts=list(self.java_options),
            )
        except Exception as e:
            raise JavaStartError(f"could not start the ScienceWorld JVM: {e}") from e
        gateway = JavaGateway(
            gateway_parameters=GatewayParameters(auto_field=True, port=port), java_process=proc
        )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _shutdown, gateway, proc)
        try:
            self._interface = gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()
        except Exception as e:
            self.close()
            raise JavaStartError(f"the ScienceWorld JVM started but did not answer: {e}") from e
        logger.info("ScienceWorld JVM started (pid %d, port %d)", proc.pid, port)

    def close(self) -> None:
        """Stop the JVM (idempotent); the next use of :attr:`interface` starts a new one."""
        if self._finalizer is not None:
            self._finalizer()
        self._finalizer = None
        self._interface = None
        self._proc = None
