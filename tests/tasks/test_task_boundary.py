"""The engine knows tasks only through their protocol: outside textune/tasks/, no module names what one task predicts.

A word here is a classification concept; finding one in a generic module (training, inference, serving, report,
data, models, the CLI) means a branch on one task has crept into the engine, which every new task would then
have to work around. Identifiers and string literals are checked (flags and column names are strings);
comments are not.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "textune"
CONCEPTS = re.compile(
    r"problem_type|single_label|multi_label|regression|LabelSpec|ClassificationTask|ColumnSpec|label_names|"
    r"label_column|label2id|id2label|num_labels|logits|softmax|sigmoid|argmax|prob_|threshold|class_weights|focal|"
    r"text_pair|EncoderClassifier|SequenceClassification",
    re.IGNORECASE,
)


# Known and allowed: each (module, word) with the reason it is not a task's concept leaking into the engine.
ALLOWED = {
    ("textune/__init__.py", "*"): "the public API re-exports every task's public names (it only maps names to modules)",
    ("textune/training/arguments.py", "label_names"): "transformers' own TrainingArguments field (the batch keys "
                                                      "holding targets), taken out of the parser",
}


def concept_mentions(path: Path) -> list[str]:
    name = str(path.relative_to(PACKAGE.parent))
    found = []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    for token in tokens:
        if token.type in (tokenize.NAME, tokenize.STRING) and (match := CONCEPTS.search(token.string)):
            if (name, "*") not in ALLOWED and (name, match.group(0)) not in ALLOWED:
                found.append(f"{name}:{token.start[0]}: {match.group(0)}")
    return found


def test_no_module_outside_tasks_names_a_classification_concept():
    generic = [path for path in sorted(PACKAGE.rglob("*.py")) if "tasks" not in path.relative_to(PACKAGE).parts]
    mentions = [line for path in generic for line in concept_mentions(path)]
    assert not mentions, "move these into the task (textune/tasks/<task>/):\n" + "\n".join(mentions)


def test_the_check_finds_a_concept_where_there_is_one(tmp_path):
    module = PACKAGE / "tasks" / "classification" / "task.py"
    assert concept_mentions(module)


def test_no_task_package_imports_another_task():
    """What two tasks share lives in a neutral module of textune/tasks/ (e.g. text_metrics.py), so removing or
    changing one task never breaks another."""
    import ast

    packages = {path.name for path in (PACKAGE / "tasks").iterdir() if (path / "__init__.py").is_file()}
    crossing = set()
    for package in sorted(packages):
        for path in sorted((PACKAGE / "tasks" / package).rglob("*.py")):
            here = list(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])  # the module's package
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom):
                    base = (here[:len(here) - node.level + 1] if node.level else []) + (node.module or "").split(".")
                    base = [part for part in base if part]
                    names = [base] + [base + [alias.name] for alias in node.names]
                elif isinstance(node, ast.Import):
                    names = [alias.name.split(".") for alias in node.names]
                else:
                    continue
                for parts in names:
                    if parts[:2] == ["textune", "tasks"] and len(parts) > 2 and parts[2] in packages - {package}:
                        crossing.add(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {parts[2]}")
    assert not crossing, ("move what tasks share into a neutral module of textune/tasks/:\n"
                          + "\n".join(sorted(crossing)))
