"""Serving and deployment: a batched JSON API and Gradio demo on a run folder, and Hugging Face Spaces bundles.

Everything here sits on `textune.inference.prediction.Predictor`; nothing loads a model another way.
"""

from .batching import MicroBatcher, QueueFull, RequestTimeout, ShuttingDown
from .config import ServeConfig

__all__ = [
    "BackgroundServer",
    "MicroBatcher",
    "ModelInfo",
    "ModelService",
    "QueueFull",
    "RequestTimeout",
    "ServeConfig",
    "ShuttingDown",
    "build_app",
    "export_space",
    "push_space",
    "serve",
]


def __getattr__(name: str):
    # FastAPI, uvicorn and Gradio load only when a server or a Space is built (Gradio alone takes seconds), and the
    # model service (torch, through Predictor) only when used, so `textune serve --help` reads ServeConfig alone.
    if name in ("ModelInfo", "ModelService"):
        from . import service

        return getattr(service, name)
    if name in ("build_app",):
        from .api import build_app

        return build_app
    if name in ("serve", "BackgroundServer"):
        from . import server

        return getattr(server, name)
    if name in ("export_space", "push_space"):
        from . import space

        return getattr(space, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
