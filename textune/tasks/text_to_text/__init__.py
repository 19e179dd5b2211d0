"""Text to text with sequence-to-sequence models: summarization, translation and the general text2text."""

from .arguments import SummarizationArguments, TextToTextArguments, TranslationArguments
from .task import SummarizationTask, TextToTextTask, TranslationTask

__all__ = ["SummarizationArguments", "TextToTextArguments", "TranslationArguments", "SummarizationTask",
           "TextToTextTask", "TranslationTask"]
