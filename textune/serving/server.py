"""Running the app: `serve` in the foreground (the CLI, a Space's app.py), `BackgroundServer` in a thread.

Shutdown is graceful: on SIGINT/SIGTERM the server stops accepting connections, `/readyz` turns 503,
in-flight requests finish (up to `graceful_timeout_s`), then the batcher drains and stops.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from pathlib import Path

import uvicorn

from ..errors import TextuneError
from .api import build_app
from .config import ServeConfig
from .service import ModelService

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server, marking the app as draining the moment shutdown starts (so /readyz says so)."""

    def handle_exit(self, sig, frame) -> None:
        self.config.app.state.draining = True
        super().handle_exit(sig, frame)


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0: a free one), created with proto=IPPROTO_TCP.

    asyncio turns on TCP_NODELAY only for sockets whose proto is IPPROTO_TCP; uvicorn's own `bind_socket` leaves
    it 0, and then Nagle's algorithm plus the client's delayed ACK add ~40 ms to every response.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         proto=socket.IPPROTO_TCP)[0]
    sock = socket.socket(family, kind, proto)
    # Windows' SO_REUSEADDR lets a second server bind a port that is in use (and take its requests);
    # SO_EXCLUSIVEADDRUSE is the Windows way to get POSIX's "fail if busy, reuse after TIME_WAIT".
    exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR if exclusive is None else exclusive, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        if error.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", None)):
            raise TextuneError(f"--port {port} is in use on {host} (another server, or a textune serve still "
                               "running); pass --port 0 for a free port, or another --port") from None
        raise
    sock.set_inheritable(True)
    return sock


def make_server(app, config: ServeConfig, log_level: str = "info") -> tuple[_Server, socket.socket]:
    """A uvicorn server for `app` and its socket, already bound (so port 0 resolves to a real port)."""
    uv_config = uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level,
                               access_log=config.access_log, timeout_graceful_shutdown=config.graceful_timeout_s)
    return _Server(uv_config), bind_socket(config.host, config.port)


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def serve(run_dir: str | Path, config: ServeConfig | None = None) -> int:
    """Load a run folder and serve it until interrupted: demo at `/`, API at `/v1/predict`, docs at `/docs`.

    Args:
        run_dir: A run folder written by `textune train` (or an exported Space's `model/` folder).
        config: Address, batching and limits.

    Returns:
        0 once the server has shut down cleanly.

    Raises:
        TextuneError: The run folder is missing or incomplete.

    Example:
        >>> serve("experiments/", ServeConfig(port=8000))
    """
    config = config or ServeConfig()
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)  # process-wide: only the process entry point sets it
    service = ModelService.from_run(run_dir, batch_size=config.forward_batch_size, allow_pickle=config.allow_pickle,
                                    name=config.title, backend=config.backend)
    server, sock = make_server(build_app(service, config), config)
    url = url_of(sock, config.host)
    print(f"Serving {service.info.name} on {url}  (demo: {url}/  API: POST {url}/v1/predict  docs: {url}/docs)",
          flush=True)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("listening on %s: the server is reachable from other machines", config.host)
    server.run(sockets=[sock])
    return 0


class BackgroundServer:
    """Serve an app from a daemon thread, e.g. in a notebook, a test or a benchmark.

    Example:
        >>> with BackgroundServer(build_app(service, ServeConfig(port=0))) as server:
        ...     httpx.post(server.url + "/v1/predict", json={"texts": ["hello"]})
    """

    def __init__(self, app, config: ServeConfig | None = None, log_level: str = "warning"):
        self.app = app
        self.config = config or getattr(app.state, "config", None) or ServeConfig(port=0)
        self.server, self._socket = make_server(app, self.config, log_level)
        self.url = url_of(self._socket, self.config.host)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]},
                                        name="textune-server", daemon=True)

    def start(self, timeout: float = 120.0) -> "BackgroundServer":
        """Start, and return once the app has finished starting (model warmed up)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server stopped while starting; see the log above")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {timeout} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Shut down gracefully (as on SIGTERM) and wait for the thread."""
        self.server.handle_exit(None, None)
        self._thread.join(timeout)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

