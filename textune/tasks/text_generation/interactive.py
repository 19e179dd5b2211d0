"""Generating text outside a server: a model (a text-generation run, or any causal LM with the task's defaults)
answering one prompt as a stream, a file of prompts in batches, or an interactive chat that keeps its history.

`textune generate` and `textune chat` are thin wrappers around `Generator`, `generate_file` and `chat_loop`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, TextIO

from ...errors import TextuneError
from ...inference.generation import GenerationSettings
from .task import MESSAGES, TextGenerationTask


@dataclass
class Generator:
    """A causal LM with its tokenizer and text-generation task, and how it takes a plain prompt.

    Attributes:
        task: The run's task (or the defaults, for a model that was not fine-tuned by textune), with the generation
            settings and system prompt asked for.
        model: The PyTorch model, in evaluation mode.
        tokenizer: Its tokenizer.
        chat: Whether a plain prompt is sent as a user message through the chat template (else as is).

    Example:
        >>> generator = Generator.load("smollm2", settings=GenerationSettings(max_new_tokens=40))
        >>> print("".join(generator.stream(generator.as_input("What is a flood?"))))
    """

    task: TextGenerationTask
    model: object
    tokenizer: object
    chat: bool

    @classmethod
    def load(cls, model: str, chat_template: bool | None = None, system: str | None = None,
             settings: GenerationSettings = GenerationSettings(), allow_pickle: bool = False,
             backend: str = "torch", command: str = "textune generate") -> "Generator":
        """A run folder written by `textune train --task text-generation`, or a model name, folder or alias.

        Args:
            chat_template: True: plain prompts go through the chat template; False: as is; None: as the run was
                trained (raw for prompt/completion or text data), else through the template when the tokenizer has
                one.
            system: System prompt for conversations without one (default: the run's --system_prompt).
            settings: Generation settings over the run's own.
            backend: The engine generating the tokens (`textune.inference.causal_engines`: torch, ctranslate2,
                auto, ...), checked against the PyTorch model's greedy outputs.
            command: The command loading it, named in its errors (`textune chat` has no --raw to suggest).

        Raises:
            TextuneError: The run is not a text-generation run, the model cannot be found, or a chat template is
                asked for and the tokenizer has none.
        """
        from ...inference.causal_lm import open_causal_lm
        from ...inference.prediction import Predictor
        from ...run_folder import RUN_FILE

        if (Path(model).expanduser() / RUN_FILE).is_file():
            # the run's task, tokenizer and model (an adapter run: its base, merged), checked with the engine
            predictor = Predictor.from_run(model, allow_pickle=allow_pickle, backend=backend)
            task, tokenizer = predictor.task, predictor.tokenizer
            if not isinstance(task, TextGenerationTask):
                raise TextuneError(f"--model {model} is a {task.name} run; generate and chat need a text-generation "
                                   "run or a causal language model (e.g. smollm2)")
            network_model = predictor.model
            trained_raw = task.data_format != MESSAGES
        else:
            task, network_model, tokenizer, folder = open_causal_lm(model, allow_pickle)
            task = task.with_engine(backend, network_model, tokenizer, folder)
            trained_raw = False
        templated = bool(getattr(tokenizer, "chat_template", None))
        if chat_template and not templated:
            fix = ("use `textune generate --raw` for a base model" if command == "textune chat" else
                   "drop --chat_template, or pass --raw")
            raise TextuneError(f"{command}: the tokenizer of {model} has no chat template; {fix}")
        if system is not None:
            task = replace(task, settings=replace(task.settings, system_prompt=system))
        task = task.with_generation(settings)
        use_chat = templated and (chat_template if chat_template is not None else not trained_raw)
        return cls(task, network_model.eval(), tokenizer, use_chat)

    def as_input(self, prompt: str) -> str | dict:
        """A plain prompt as the task takes it: a one-message conversation (chat), or the string itself (raw)."""
        return {"messages": [{"role": "user", "content": prompt}]} if self.chat else prompt

    def stream(self, input: str | dict) -> Iterator[str]:
        """The generated text of one input, piece by piece."""
        return self.task.stream(self.model, self.tokenizer, input)

    def generate(self, inputs: list, batch_size: int = 8) -> list[str]:
        """The generated texts of many inputs, `batch_size` at a time (padded on the left together)."""
        texts = []
        for start in range(0, len(inputs), batch_size):
            contexts = [self.task.context_ids(given, self.tokenizer) for given in inputs[start:start + batch_size]]
            for ids in self.task.generate_ids(self.model, self.tokenizer, contexts):
                texts.append(self.tokenizer.decode(ids, skip_special_tokens=True).strip())
        return texts


def read_prompts(path: str | Path) -> list[dict]:
    """The lines of a JSONL file of {"prompt": ...} or {"messages": [...]} objects (other keys are kept).

    Raises:
        TextuneError: The file is missing, or a line is not such an object (naming the line).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise TextuneError(f"--input {path}: no such file; check the path")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise TextuneError(f"--input {path}: line {number} is not JSON ({error})") from None
        if not isinstance(row, dict) or not (isinstance(row.get("prompt"), str) or
                                             isinstance(row.get("messages"), list)):
            raise TextuneError(f"--input {path}: line {number} has neither a \"prompt\" string nor a \"messages\" "
                               "list; write one {\"prompt\": \"...\"} or {\"messages\": [...]} object a line")
        rows.append(row)
    if not rows:
        raise TextuneError(f"--input {path} has no prompts")
    return rows


def generate_file(generator: Generator, input_path: str | Path, output_path: str | Path,
                  batch_size: int = 8) -> int:
    """Generate for every line of a JSONL file of prompts; the output lines keep the input's fields and add
    "generated". Written atomically once all are done; returns the number of lines."""
    from ...atomic import write_text_atomically

    rows = read_prompts(input_path)
    inputs = [{"messages": row["messages"]} if isinstance(row.get("messages"), list) else
              generator.as_input(row["prompt"]) for row in rows]
    texts = generator.generate(inputs, batch_size)
    lines = [json.dumps(row | {"generated": text}, ensure_ascii=False) for row, text in zip(rows, texts)]
    write_text_atomically(output_path, "\n".join(lines) + "\n")
    return len(lines)


def chat_loop(generator: Generator, read: Callable[[], str], out: TextIO) -> int:
    """An interactive chat: each line read is a user turn, the reply is streamed to `out`; the history is kept.
    `/reset` clears it, `/exit` (or the end of input: `read` raising EOFError) ends. Returns the turns answered.

    Raises:
        TextuneError: The tokenizer has no chat template (a chat needs one).
    """
    if not generator.chat:
        raise TextuneError("chat needs a model whose tokenizer has a chat template; use `textune generate --raw` "
                           "for a base model")
    history: list[dict] = []
    turns = 0
    while True:
        try:
            line = read().strip()
        except EOFError:
            break
        if line == "/exit":
            break
        if line == "/reset":
            history = []
            out.write("(history cleared)\n")
            continue
        if not line:
            continue
        history.append({"role": "user", "content": line})
        pieces = []
        for piece in generator.stream({"messages": history}):
            pieces.append(piece)
            out.write(piece)
            out.flush()
        out.write("\n")
        history.append({"role": "assistant", "content": "".join(pieces).strip()})
        turns += 1
    return turns
