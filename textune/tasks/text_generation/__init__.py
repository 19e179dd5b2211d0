"""Text generation with decoder-only (causal) language models: supervised fine-tuning, perplexity, generation, chat."""

from .arguments import TextGenerationArguments
from .task import TextGenerationTask

__all__ = ["TextGenerationArguments", "TextGenerationTask"]
