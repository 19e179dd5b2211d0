"""The `textune` command: a thin dispatcher from arguments to library functions.

Usage:
    textune train --model_name_or_path minilm --train_file train.csv --validation_file val.csv \
        --test_file test.csv --output_dir experiments/   # plus the task's flags (columns), as run_*.py take them
    textune train --task question-answering --train_file train.json --version_2_with_negative --output_dir qa/
    textune train args.json                      # one JSON file of run_classification.py-style arguments
    textune train --config configs/disaster_tweets.yaml --num_train_epochs 3   # flags override the file
    textune predict --model experiments/ --input new.csv --output preds.csv
    textune evaluate --model experiments/ --input labelled.csv
    textune export experiments/ --format onnx [--quantize int8]   # then predict/evaluate/serve use ONNX Runtime
    textune push experiments/ --repo user/name   # the model, its card (README.md) and metrics, to the Hub
    textune merge lora-run/ --to merged/          # a --use_peft run's adapter merged into a standalone model
    textune generate --model smollm2 --prompt "What is a flood?"   # or --input prompts.jsonl --output out.jsonl
    textune chat --model smollm2 --system "You are a helpful assistant."
"""

# Start-up: only the standard library and light textune modules load at import time. Each command parses its flags
# and checks its input first, then imports its implementation (torch and transformers take seconds), so --help,
# `textune models` and bad input answer at once.

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .config_files import expand_config_flag, resolve_config_keys
from .errors import TextuneError, TrainingInterrupted
from .training.command_line import (chosen_task, flag_value, refuse_other_task_flags, task_arguments_to_pass,
                                    train_parser)

logger = logging.getLogger("textune")


def _setup_logging() -> None:
    from .training.distributed import is_main_process

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    # under torchrun / accelerate launch the other processes would repeat every line
    logging.getLogger("textune").setLevel(logging.INFO if is_main_process() else logging.WARNING)


def _setup_transformers_logging() -> None:
    """transformers' warnings only, and no progress bars outside the main process (for commands that train)."""
    import transformers

    from .training.distributed import is_main_process

    transformers.utils.logging.set_verbosity_warning()
    if not is_main_process():
        transformers.utils.logging.disable_progress_bar()


def _with_defaults(argv: list[str]) -> list[str]:
    """Fill in what a bare `textune train` needs: a run folder (every stage runs when none is named: the
    arguments' own default)."""
    argv = list(argv)
    given = {arg.split("=")[0] for arg in argv if arg.startswith("--")}
    if "--output_dir" not in given:
        train_file = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--train_file"), None)
        argv += ["--output_dir", str(Path("runs") / (Path(train_file).stem if train_file else "demo"))]
    if not given & {"--train_file", "--dataset_name"}:
        from .models.packaged import DEMO_DATA

        for name, value in DEMO_DATA.recommended_args:
            if f"--{name}" not in given:
                argv += [f"--{name}", value]
    return argv


DATA_FILE_FLAGS = ("--train_file", "--validation_file", "--test_file")


def check_data_flags(argv: list[str]) -> None:
    """Reject a missing or unreadable data file named on the command line before torch and transformers load.

    The run reads the same files again (with the same check) and also those named in --config or a JSON file.
    """
    from .data.tables import check_data_file

    if "-h" in argv or "--help" in argv:
        return
    for flag in DATA_FILE_FLAGS:
        path = flag_value(argv, flag)
        if path and not (flag == "--train_file" and flag_value(argv, "--dataset_name")):
            check_data_file(path, flag)


def parse_train_args(argv: list[str]):
    """Parse `textune train` arguments into (ModelArguments, DataArguments, the task's arguments,
    TextuneTrainingArguments); the task is --task's, or the one the train file's columns show."""
    task_class = chosen_task(argv)
    refuse_other_task_flags(argv, task_class)
    parser = train_parser(task_class)
    try:
        if len(argv) == 1 and argv[0].lower().endswith(".json"):
            path = Path(argv[0])
            if not path.is_file():
                raise TextuneError(f"arguments file {path}: no such file")
            try:
                values = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise TextuneError(f"arguments file {path} is not valid JSON ({error.msg} at line {error.lineno})") from None
            if not isinstance(values, dict):
                raise TextuneError(f"arguments file {path} must hold a JSON object of flag names to values")
            values = resolve_config_keys(values, parser, f"arguments file {path}")  # names as on the command line
            values.setdefault("output_dir", str(Path("runs") / Path(values.get("train_file") or "demo").stem))
            return parser.parse_dict(values)
        argv = expand_config_flag(argv, parser)
        return parser.parse_args_into_dataclasses(args=_with_defaults(argv))
    except (ValueError, TypeError) as error:
        if isinstance(error, TextuneError):
            raise
        raise TextuneError(str(error).strip().splitlines()[0]) from None


def command_train(argv: list[str]) -> int:
    check_data_flags(argv)
    model_args, data_args, task_args, training_args = parse_train_args(argv)
    _setup_transformers_logging()
    from .training.distributed import is_main_process
    from .training.train import train

    result = train(model_args, data_args, training_args, task_arguments_to_pass(data_args, task_args))
    if not is_main_process():  # under torchrun the main process reports for all
        return 0
    lines = [f"Run folder: {result.output_dir}"]
    if "eval" in result.metrics:
        shown = {k: round(v, 4) for k, v in result.metrics["eval"].items()
                 if isinstance(v, float) and not k.endswith(("runtime", "per_second"))}
        lines.append(f"Validation: {shown}")
    for name, path in result.files.items():
        lines.append(f"  {name:<16} {path}")
    print("\n".join(lines))
    return 0


def _io_parser(prog: str, description: str) -> argparse.ArgumentParser:
    from .data.table_chunks import CHUNK_ROWS

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--model", required=True, help="A run folder written by `textune train` (its --output_dir).")
    parser.add_argument("--input", required=True, help="A csv, tsv, json, jsonl or parquet file.")
    parser.add_argument("--batch_size", type=int, default=32,
                        help="Features (texts, or a question's context windows) per forward pass.")
    parser.add_argument("--encoding", default=None, help="Text encoding of --input (default utf-8).")
    parser.add_argument("--allow_pickle", action="store_true", help="Allow pickle weights (unsafe).")
    parser.add_argument("--chunk_rows", type=int, default=CHUNK_ROWS,
                        help="Rows read and predicted at a time; memory grows with it, not with the file.")
    _add_backend_flag(parser)
    _add_generation_flags(parser)
    return parser


def _add_generation_flags(parser: argparse.ArgumentParser) -> None:
    from .inference.generation import add_generation_flags

    add_generation_flags(parser.add_argument_group("generation (tasks that generate text; default: the run's own "
                                                   "settings)"))


def _generation_flags(args):
    from .inference.generation import GenerationSettings

    return GenerationSettings.from_values(vars(args))


def _generation_overrides(args, predictor) -> None:
    """Put the generation flags given over the run's settings; a task that does not generate refuses them."""
    overrides = args.generation
    if not overrides.given():
        return
    if not hasattr(predictor.task, "with_generation"):  # optional in the task protocol
        flag = next(iter(overrides.given()))
        raise TextuneError(f"--{flag}: the {predictor.task.name} task does not generate text; leave it out")
    predictor.task = predictor.task.with_generation(overrides)


def _add_backend_flag(parser: argparse.ArgumentParser) -> None:
    from .inference.backends import BACKENDS, backend_names
    from .inference.causal_engines import ENGINES, engine_names

    parser.add_argument("--backend", default="auto", choices=list(dict.fromkeys(backend_names() + engine_names())),
                        help="Inference backend. auto: the one training chose (backend.json), else the run's ONNX "
                        "export when its parity check passed, else torch. "
                        + "; ".join(f"{name}: {spec.description}" for name, spec in BACKENDS.items())
                        + ". Text generation (generate, chat, a text-generation run): auto is ctranslate2 where it is "
                        "installed and gives torch's greedy outputs on a few prompts, else torch; "
                        + "; ".join(f"{name}: {spec.description}" for name, spec in ENGINES.items() if name != "torch"))


def _predictor(args):
    """The run's Predictor on --backend (predict_file and evaluate_file take a ready one as well as a folder).

    The run folder and the input file are checked before the model code loads, so a typo fails at once.
    """
    from .data.tables import check_data_file
    from .run_folder import read_run_file

    read_run_file(args.model)
    check_data_file(args.input, "--input")
    from .inference.prediction import Predictor

    return Predictor.from_run(args.model, args.batch_size, args.allow_pickle, backend=args.backend, batch_job=True)


def command_predict(argv: list[str]) -> int:
    parser = _io_parser("textune predict", "Predict every row of a file with a trained run (streamed in chunks).")
    parser.add_argument("--output", default=None, help="Where to write the predictions CSV "
                        "(default: <input>.predictions.csv next to the input).")
    args = parser.parse_args(argv)
    args.generation = _generation_flags(args)  # a value out of range fails here, before the run loads
    predictor = _predictor(args)
    _generation_overrides(args, predictor)
    from .inference.batch_predict import predict_file

    written = predict_file(predictor, args.input, args.output, chunk_rows=args.chunk_rows,
                           encoding=args.encoding)
    print(f"Predictions for {written.rows} rows: {written.output}")
    return 0


def command_evaluate(argv: list[str]) -> int:
    parser = _io_parser("textune evaluate", "Score a trained run on a file with references, e.g. labels or answers "
                        "(streamed in chunks).")
    parser.add_argument("--output", default=None, help="Also write the metrics to this JSON file.")
    parser.add_argument("--metric_name", default=None, help="The metric to compute (instead of the run's own): a registered name or a metric script "
                        "(.py). A metric script the run was trained with is never run from the run folder: pass it "
                        "here to compute it.")
    args = parser.parse_args(argv)
    args.generation = _generation_flags(args)  # a value out of range fails here, before the run loads
    predictor = _predictor(args)
    _generation_overrides(args, predictor)
    if args.metric_name:
        if not hasattr(predictor.task, "with_metric"):  # optional in the task protocol
            raise TextuneError(f"--metric_name: the {predictor.task.name} task computes its own metrics; leave it out")
        predictor.task = predictor.task.with_metric(args.metric_name)  # a bad name fails here, before the file is read
    from .inference.batch_predict import evaluate_file

    metrics = evaluate_file(predictor, args.input, chunk_rows=args.chunk_rows, encoding=args.encoding)
    text = json.dumps(metrics, indent=2)
    if args.output:
        from .atomic import write_text_atomically

        write_text_atomically(args.output, text + "\n")
    print(text)
    return 0


def command_export(argv: list[str]) -> int:
    from .inference.export import DEFAULT_MIN_AGREEMENT, DEFAULT_PARITY_ROWS, export_onnx

    parser = argparse.ArgumentParser(prog="textune export", description="Export a run's model to ONNX, checked "
                                     "against PyTorch on the run's validation rows before it is written.")
    parser.add_argument("run_dir", help="A run folder written by `textune train` (its --output_dir).")
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="Export format.")
    parser.add_argument("--quantize", default=None, choices=["int8"], help="Dynamic int8 quantization (smaller, "
                        "faster on CPUs, changes a few borderline predictions).")
    parser.add_argument("--output", default=None, help="The .onnx file to write (default: model.onnx or "
                        "model_int8.onnx in the run folder, where --backend auto finds it).")
    parser.add_argument("--min_agreement", type=float, default=DEFAULT_MIN_AGREEMENT, help="Refuse the export "
                        "if it gives PyTorch's answer on fewer rows than this share.")
    parser.add_argument("--parity_rows", type=int, default=DEFAULT_PARITY_ROWS, help="Validation rows compared.")
    parser.add_argument("--allow_pickle", action="store_true", help="Allow pickle weights (unsafe).")
    args = parser.parse_args(argv)
    result = export_onnx(args.run_dir, args.output, args.quantize, min_agreement=args.min_agreement,
                         parity_rows=args.parity_rows, allow_pickle=args.allow_pickle)
    parity = result.parity
    print(f"ONNX model: {result.model}\nParity with PyTorch fp32 on {parity['rows']} {parity['source']} rows: "
          f"agreement {parity['agreement']:.2%}, max {parity['compared']} difference "
          f"{parity['max_abs_diff']:.2e} ({result.parity_file})")
    for name, values in parity.get("metrics", {}).items():
        print(f"  {name:<9} " + ", ".join(f"{key} {value:.4f}" for key, value in values.items()))
    return 0


def command_serve(argv: list[str]) -> int:
    from .dataclass_flags import add_dataclass_flags, dataclass_from_flags
    from .run_folder import is_run_folder, read_run_file
    from .serving import ServeConfig

    parser = argparse.ArgumentParser(prog="textune serve", description="Serve a run: Gradio demo at /, "
                                     "JSON API at /v1/predict, docs at /docs (a model that generates text: also "
                                     "the OpenAI-compatible API at /v1).")
    add_dataclass_flags(parser, ServeConfig)
    parser.add_argument("run_dir", metavar="RUN_OR_MODEL", help="A run folder written by `textune train` (its "
                        "--output_dir), or a causal language model to chat with as it is: an alias (smollm2), a "
                        "local folder, a .gguf file or a hub id.")
    args = parser.parse_args(argv)
    config = dataclass_from_flags(ServeConfig, args)
    if is_run_folder(args.run_dir):  # checked before the server's code loads: a mistake is reported at once
        read_run_file(args.run_dir, flag="textune serve")
    from .serving import serve

    return serve(args.run_dir, config)


def command_export_space(argv: list[str]) -> int:
    from .serving.space import TEMPLATES  # light: the Space code imports torch only to export

    parser = argparse.ArgumentParser(prog="textune export-space", description="Write a Gradio Space folder for a run.")
    parser.add_argument("run_dir", help="A run folder written by `textune train`.")
    parser.add_argument("--to", required=True, help="The Space folder to write (empty or absent).")
    parser.add_argument("--title", default=None, help="The Space's title (default: the run folder's name).")
    parser.add_argument("--license", default="apache-2.0", help="The Space's license identifier.")
    parser.add_argument("--overwrite", action="store_true", help="Replace a previous export in --to (only the "
                        "files it wrote, as listed in its .textune-space.json; other files are kept).")
    parser.add_argument("--template", default="full", choices=list(TEMPLATES), help="The app the Space runs: full "
                        "(app.py: textune's demo and JSON API) or minimal (app_minimal.py: a transformers pipeline "
                        "and gr.Interface, to edit). Both files are written.")
    args = parser.parse_args(argv)
    from .serving import export_space

    folder = export_space(args.run_dir, args.to, args.title, args.license, args.overwrite, args.template)
    print(f"Space folder: {folder}  (try it: cd {folder} && python {TEMPLATES[args.template]}; upload: textune "
          f"push-space {folder} --repo user/name)")
    return 0


def command_merge(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="textune merge", description="Merge a LoRA run's adapter into its base "
                                     "model: a standalone run folder that needs neither peft nor the base model.")
    parser.add_argument("run_dir", help="A run folder trained with --use_peft.")
    parser.add_argument("--to", required=True, help="The run folder to write (new, or empty).")
    args = parser.parse_args(argv)
    from .models.adapters import merge_run

    print(f"Merged run: {merge_run(args.run_dir, args.to)}")
    return 0


def _add_hub_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--repo", required=True, help=f"The {what}'s id on the Hub: user/name.")
    parser.add_argument("--private", action="store_true", help=f"Create the {what} as private (an existing public "
                        "one is refused, not changed).")
    parser.add_argument("--token", default=None, help="Only '-': read the Hub token from stdin (default: HF_TOKEN, "
                        "or the login of `hf auth login`). A token typed here would show in ps and shell history.")


def command_push_space(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="textune push-space", description="Upload the files export-space wrote "
                                     "in a Space folder to the Hub.")
    parser.add_argument("folder", nargs="?", default="space", help="A folder from export-space, or a run folder.")
    _add_hub_flags(parser, "Space")
    args = parser.parse_args(argv)
    from .hub import read_token
    from .serving import push_space

    print(f"Space: {push_space(args.folder, args.repo, read_token(args.token), args.private)}")
    return 0


def command_push(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="textune push", description="Upload a run's model, tokenizer, model card "
                                     "and metrics to a model repo on the Hub (no checkpoints, data or report).")
    parser.add_argument("run_dir", help="A run folder written by `textune train` (its --output_dir).")
    _add_hub_flags(parser, "model repo")
    args = parser.parse_args(argv)
    from .hub import push_run, read_token

    print(f"Model: {push_run(args.run_dir, args.repo, read_token(args.token), args.private)}")
    return 0


def command_report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="textune report", description="Rebuild the report of an existing run "
                                     "(report.html, report.md, plots/*.png) and its model card (README.md), e.g. "
                                     "after editing its data paths.")
    parser.add_argument("run_dir", help="A run folder written by `textune train` (its --output_dir).")
    parser.add_argument("--batch_size", type=int, default=32, help="Texts per forward pass on the validation split.")
    args = parser.parse_args(argv)
    from .run_folder import read_run_file

    read_run_file(args.run_dir, flag="run folder")
    from .report import write_report
    from .report.model_card import write_model_card

    files = write_report(args.run_dir, batch_size=args.batch_size)
    if card := write_model_card(args.run_dir):
        files["card"] = card
    print("\n".join(f"  {name:<24} {path}" for name, path in files.items()))
    return 0


def command_models(argv: list[str]) -> int:
    from .models.catalog import CATALOG_FILE, catalog_table, load_catalog

    parser = argparse.ArgumentParser(prog="textune models", description="Recommended backbones by task and "
                                     "language, and whether each is available offline on this machine.")
    parser.add_argument("--task", default=None, help="classification, question-answering, summarization, translation, "
                                                     "generation or chat.")
    parser.add_argument("--language", default=None, help="Language code, e.g. en or zh (multilingual models match all).")
    parser.add_argument("--markdown", action="store_true", help="Print a Markdown table.")
    parser.add_argument("--catalog", default=str(CATALOG_FILE), help="Another catalog file of the same format.")
    args = parser.parse_args(argv)
    print(catalog_table(load_catalog(args.catalog), args.task, args.language, markdown=args.markdown))
    return 0


def command_compare(argv: list[str]) -> int:
    check_data_flags(argv)
    from .training.compare import CompareArguments, compare_models, leaderboard_frame

    task_class = chosen_task(argv)
    refuse_other_task_flags(argv, task_class)
    parser = train_parser(task_class, before=(CompareArguments,), prog="textune compare",
                          description="Fine-tune each --models candidate with the same data, seed and budget (any "
                                      "`textune train` flag) and write a leaderboard.")
    if not any(arg.split("=")[0] == "--output_dir" for arg in argv):
        argv = [*argv, "--output_dir", str(Path("runs") / "compare")]
    try:
        compare_args, model_args, data_args, task_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as error:
        raise TextuneError(str(error).strip().splitlines()[0]) from None
    _setup_transformers_logging()
    board = compare_models(compare_args, model_args, data_args, training_args,
                           task_arguments_to_pass(data_args, task_args))
    print(leaderboard_frame(board).drop(columns=["run_dir"]).to_string(index=False))
    print("\n".join(f"  {name:<18} {path}" for name, path in board.files.items()))
    return 0 if any(result.status == "ok" for result in board.results) else 1


def _generation_parser(prog: str, description: str) -> argparse.ArgumentParser:
    from .inference.generation import add_generation_flags

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--model", required=True, help="A text-generation run folder (fine-tuned by textune "
                        "train), or any causal language model: an alias (smollm2), a local folder or a hub id.")
    parser.add_argument("--system", default=None, help="System prompt put first in the conversation (default: "
                        "the run's --system_prompt, else none).")
    parser.add_argument("--allow_pickle", action="store_true", help="Allow pickle weights (unsafe).")
    _add_backend_flag(parser)
    add_generation_flags(parser, ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k",
                                  "repetition_penalty", "seed"))
    return parser


def _load_generator(args, chat_template: bool | None = None, command: str = "textune generate"):
    from .inference.generation import GenerationSettings

    settings = GenerationSettings.from_values(vars(args))  # bad values fail here, before the model loads
    from .inference.causal_engines import check_engine_name

    check_engine_name(args.backend)
    from .tasks.text_generation.interactive import Generator

    return Generator.load(args.model, chat_template, args.system, settings, args.allow_pickle, args.backend,
                          command)


def command_generate(argv: list[str]) -> int:
    parser = _generation_parser("textune generate", "Generate text with a causal language model: one prompt, "
                                "streamed to the terminal, or a JSONL file of prompts in batches. Stops at the end "
                                "of the turn.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="One prompt; its completion is printed as it is generated.")
    source.add_argument("--input", help="A JSONL file, one {\"prompt\": ...} or {\"messages\": [...]} a line.")
    parser.add_argument("--output", default=None, help="Where --input's generations go (JSONL: each input line "
                        "plus \"generated\"; default: <input>.generated.jsonl).")
    parser.add_argument("--batch_size", type=int, default=8, help="Prompts generated together (--input).")
    template = parser.add_mutually_exclusive_group()
    template.add_argument("--chat_template", dest="chat_template", action="store_const", const=True, default=None,
                          help="Send prompts as a user message through the model's chat template. The default for "
                               "a chat model (its tokenizer has a template), unless --model is a run fine-tuned on "
                               "raw prompt/completion or text data.")
    template.add_argument("--raw", dest="chat_template", action="store_const", const=False,
                          help="Send prompts to the model as they are, without the chat template.")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        raise TextuneError(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.input is not None:
        from .tasks.text_generation.interactive import generate_file, read_prompts

        read_prompts(args.input)  # a bad file fails before the model loads
        output = args.output or str(Path(args.input).with_suffix("")) + ".generated.jsonl"
        count = generate_file(_load_generator(args, args.chat_template), args.input, output, args.batch_size)
        print(f"Generations for {count} prompts: {output}")
        return 0
    generator = _load_generator(args, args.chat_template)
    for piece in generator.stream(generator.as_input(args.prompt)):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def command_chat(argv: list[str]) -> int:
    parser = _generation_parser("textune chat", "Chat with a model in the terminal: replies stream as they are "
                                "generated and the conversation is kept (rendered with the model's chat template). "
                                "/reset clears it; /exit or Ctrl-D ends.")
    args = parser.parse_args(argv)
    generator = _load_generator(args, True, "textune chat")
    from .tasks.text_generation.interactive import chat_loop

    interactive = sys.stdin.isatty()
    if interactive:
        print("Chat with the model: /reset clears the conversation, /exit or Ctrl-D ends.", file=sys.stderr)

    def read() -> str:
        if interactive:
            return input("you> ")
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line

    chat_loop(generator, read, sys.stdout)
    return 0


COMMANDS = {
    "train": command_train,
    "predict": command_predict,
    "evaluate": command_evaluate,
    "serve": command_serve,
    "export": command_export,
    "export-space": command_export_space,
    "merge": command_merge,
    "push-space": command_push_space,
    "push": command_push,
    "report": command_report,
    "models": command_models,
    "compare": command_compare,
    "generate": command_generate,
    "chat": command_chat,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of `textune` and `python -m textune`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("TEXTUNE_DEBUG") == "1"
    argv = [arg for arg in argv if arg != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print(f"\nCommands: {', '.join(COMMANDS)}. `textune COMMAND --help` lists a command's flags.")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"textune: error: unknown command {command!r}; use one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    _setup_logging()
    try:
        return COMMANDS[command](rest)
    except TextuneError as error:
        if debug:
            raise
        print(f"textune: error: {error}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stop:
        print(f"textune: {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("textune: interrupted", file=sys.stderr)
        return 130
