"""Classification's part of the report and the model card: per-class scores, confusion matrix, mistakes, labels."""

from __future__ import annotations

from .labels import MULTI, REGRESSION, SINGLE

KINDS = {SINGLE: "text classifier", MULTI: "multi-label text classifier", REGRESSION: "text regression model"}
LOSS_NAMES = {SINGLE: "cross-entropy", MULTI: "binary cross-entropy", REGRESSION: "mean squared error"}
EXAMPLE = "Forest fire near La Ronge Sask. Canada"
SHOWN_LABELS = 20  # the one-line summary names at most this many


def card_facts(task) -> dict:
    """`ClassificationTask.card()`: see `textune.tasks.protocol.Task.card` for the keys."""
    from .heads import DEFAULT_HEAD, head_code_outside_textune
    from .serving import MINIMAL_APP_TEMPLATE

    labels = task.labels
    problem = labels.problem_type
    names = list(labels.display_names) if problem != REGRESSION else []
    if problem == REGRESSION:
        outputs, detail = "one number per text", "One number per text (regression)."
    else:
        outputs = (f"{len(names)} labels: " + ", ".join(f"`{name}`" for name in names[:SHOWN_LABELS])
                   + (" ..." if len(names) > SHOWN_LABELS else ""))
        detail = "\n".join(f"- `{index}`: {name}" for index, name in enumerate(names))
    minimal_problem = None
    if task.head != DEFAULT_HEAD:
        minimal_problem = f"transformers' pipeline cannot build textune's --head {task.head}"
    elif problem == REGRESSION:
        minimal_problem = "a regression model has no labels to show probabilities for"
    module = head_code_outside_textune(task.head)
    needs_code = None
    if module is not None:
        where = "not registered in this process" if module == "unknown" else f"defined in {module}"
        needs_code = (f"uses the head {task.head!r} ({where}), whose code is not part of textune (a built-in "
                      "--head avoids that)")
    limitations = [f"- Texts longer than {task.max_seq_length} tokens are truncated to their first "
                   f"{task.max_seq_length} tokens."]
    if len(task.columns.text) > 1 or task.columns.text_pair or task.preprocess:
        limitations.append("- Trained on joined columns or preprocessed text: the transformers pipeline above feeds "
                           "the text as it is; textune's Predictor applies the same preparation as training.")
    return {
        "kind": KINDS[problem], "pipeline_tag": "text-classification", "tags": ["text-classification", problem],
        "outputs": outputs, "outputs_list": detail, "example": EXAMPLE, "pipeline_kwargs": {"top_k": None},
        "loss": LOSS_NAMES[problem], "limitations": limitations,
        "minimal_app": None if minimal_problem else MINIMAL_APP_TEMPLATE, "minimal_app_problem": minimal_problem,
        "needs_code": needs_code,
    }
