"""Running the app: `serve` in the foreground (the CLI, a Space's app.py), `BackgroundServer` in a thread.

Shutdown is graceful: on SIGINT/SIGTERM the server stops accepting connections, `/readyz` turns 503,
in-flight requests finish (up to `graceful_timeout_s`), then the batcher drains and stops.
"""

from __future__ import annotations

import errno
import logging
import secrets
import socket
import threading
import time
from pathlib import Path

import uvicorn

from ..errors import TextuneError
from ..run_folder import is_run_folder, read_run_file
from .api import build_app
from .config import ServeConfig
from .generation_slots import generates
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
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def bind_port(config: ServeConfig) -> socket.socket:
    """`bind_socket` for the configured address, with a one-line TextuneError when the port is taken."""
    try:
        return bind_socket(config.host, config.port)
    except OSError as error:
        if error.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", None)):
            raise TextuneError(f"--port {config.port} is already in use on {config.host} (another server?); stop "
                               f"it, choose another port, or pass --port 0 to pick a free one") from None
        raise TextuneError(f"cannot listen on --host {config.host} --port {config.port}: {error.strerror}; "
                           f"try --port 0 (a free port) or --host 127.0.0.1") from None


def make_server(app, config: ServeConfig, log_level: str = "info",
                sock: socket.socket | None = None) -> tuple[_Server, socket.socket]:
    """A uvicorn server for `app` and its socket, already bound (so port 0 resolves to a real port)."""
    uv_config = uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level,
                               access_log=config.access_log, timeout_graceful_shutdown=config.graceful_timeout_s)
    return _Server(uv_config), sock or bind_port(config)


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def serve(run_dir: str | Path, config: ServeConfig | None = None) -> int:
    """Load a run folder (or a causal language model) and serve it until interrupted: demo at `/`, API at
    `/v1/predict`, docs at `/docs`.

    Args:
        run_dir: A run folder written by `textune train` (or an exported Space's `model/` folder), or a causal
            language model that is not a run (an alias such as smollm2, a folder, a .gguf file or a hub id),
            served with the text-generation task's defaults.
        config: Address, batching and limits.

    Returns:
        0 once the server has shut down cleanly.

    Raises:
        TextuneError: The run folder is missing or incomplete, or the port is taken.

    Example:
        >>> serve("experiments/", ServeConfig(port=8000))
    """
    config = config or ServeConfig()
    # Both checks come before loading the model, which takes seconds: a mistake is reported at once.
    is_run = is_run_folder(run_dir)
    if is_run:
        read_run_file(run_dir, flag="textune serve")
    sock = bind_port(config)
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)  # process-wide: only the process entry point sets it
    try:
        load = ModelService.from_run if is_run else ModelService.from_model
        service = load(str(run_dir), batch_size=config.forward_batch_size, allow_pickle=config.allow_pickle,
                       name=config.title, backend=config.backend)
    except BaseException:
        sock.close()
        raise
    server, sock = make_server(build_app(service, config), config, sock=sock)
    url = url_of(sock, config.host)
    print(f"Serving {service.info.name} on {url}  (demo: {url}/  API: POST {url}/v1/predict  docs: {url}/docs)",
          flush=True)
    if generates(service.task):
        print(f"OpenAI-compatible API: base URL {url}/v1 (POST /v1/chat/completions, /v1/completions)", flush=True)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("listening on %s: the server is reachable from other machines", config.host)
    if config.share:
        threading.Thread(target=share_when_started, args=(server, sock), name="textune-share", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        close_share_links()
    return 0


def share_when_started(server: _Server, sock: socket.socket) -> None:
    """Once the server answers, open a public link to it and print it (a failure is a warning, not an exit)."""
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.should_exit:
        return
    try:
        link = open_share_link("127.0.0.1", sock.getsockname()[1])
    except Exception as error:  # no network, blocked by a firewall, or Gradio's share service is down
        logger.warning("--share: no public link (%s); the server still runs locally", error)
        return
    print(f"Public link (temporary, anyone with it can use the demo and the API): {link}", flush=True)


def open_share_link(host: str, port: int) -> str:
    """A public https URL that forwards to host:port, through Gradio's share service (what `launch(share=True)`
    uses: `gradio.networking.setup_tunnel`, which also works for an app Gradio did not launch itself)."""
    from gradio import networking

    address = networking.setup_tunnel(local_host=host, local_port=port, share_token=secrets.token_urlsafe(32),
                                      share_server_address=None, share_server_tls_certificate=None)
    return "https://" + address.split("://", 1)[-1]


def close_share_links() -> None:
    """Stop the tunnel processes `open_share_link` started (Gradio's launch does the same on close)."""
    import sys

    tunneling = sys.modules.get("gradio.tunneling")  # imported only if a link was opened
    for tunnel in list(getattr(tunneling, "CURRENT_TUNNELS", [])):
        tunnel.kill()


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

