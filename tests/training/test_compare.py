"""`textune compare`: every candidate gets the same data, seed and budget; a broken one is reported, not fatal."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from textune.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def compare_argv(models, data_dir, output_dir, *extra):
    return [
        "compare", "--models", ",".join(str(m) for m in models), "--train_file", f"{data_dir}/train.csv",
        "--validation_file", f"{data_dir}/val.csv", "--text_column_name", "text", "--label_column_name", "target",
        "--max_steps", "2", "--per_device_train_batch_size", "16", "--learning_rate", "1e-3",
        "--latency_samples", "4", "--report_to", "none", "--output_dir", str(output_dir), *extra,
    ]


@pytest.fixture(scope="module")
def comparison(tiny_model_dir, tmp_path_factory):
    """Two copies of the tiny model with a missing model folder between them."""
    from conftest import toy_frame

    root = tmp_path_factory.mktemp("compare")
    data = root / "data"
    data.mkdir()
    toy_frame(48, seed=1).to_csv(data / "train.csv", index=False)
    toy_frame(16, seed=2).to_csv(data / "val.csv", index=False)
    first, second = root / "tiny-a", root / "tiny-b"
    shutil.copytree(tiny_model_dir, first)
    shutil.copytree(tiny_model_dir, second)
    bogus = root / "no-such-model"
    out = root / "leaderboard"
    code = main(compare_argv([first, bogus, second], data, out))
    return code, out, (first, bogus, second)


def test_compare_writes_a_leaderboard_with_a_row_per_candidate(comparison):
    code, out, (first, _, second) = comparison
    assert code == 0
    board = pd.read_csv(out / "compare.csv")
    ok = board[board["status"] == "ok"]
    assert sorted(ok["model"]) == sorted([str(first), str(second)])
    assert ok["rank"].tolist() == [1, 2]
    assert ok["eval_accuracy"].between(0, 1).all() and ok["eval_f1"].notna().all()
    assert (ok["train_seconds"] > 0).all() and (ok["latency_ms"] > 0).all()
    assert set(ok["backend"]) == {"torch"}  # each run's own choice: fp32 here, too few validation rows for more
    assert (ok["params_millions"] > 0).all() and ok["params_millions"].nunique() == 1  # the same tiny model twice
    # the same seed, data and budget: two copies of one model land on the same accuracy
    assert ok["eval_accuracy"].nunique() == 1
    for run_dir in ok["run_dir"]:
        assert (out / run_dir.split("/")[-1] / "report.html").is_file()
    md = (out / "compare.md").read_text()
    assert "tiny-a" in md and "tiny-b" in md and "seed 42" in md and "max_steps 2" in md
    png = (out / "compare.png").read_bytes()
    assert png[:8] == PNG_SIGNATURE and len(png) > 10_000


def test_a_broken_candidate_is_reported_as_failed_and_the_others_still_run(comparison):
    code, out, (_, bogus, second) = comparison
    board = pd.read_csv(out / "compare.csv", keep_default_na=False)
    failed = board[board["status"] == "failed"]
    assert failed["model"].tolist() == [str(bogus)]
    assert "no-such-model" in failed["reason"].iloc[0] and failed["rank"].iloc[0] == ""
    assert board["model"].iloc[-1] == str(bogus)  # failed rows come last
    assert str(second) in board["model"].tolist()  # the candidate after the broken one ran
    md = (out / "compare.md").read_text()
    assert "Failed:" in md and "no-such-model" in md.split("Failed:")[1]


def test_bad_data_stops_compare_before_any_candidate_trains(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(compare_argv([tiny_model_dir], tmp_path / "missing", out))
    assert code == 2
    assert "--train_file" in capsys.readouterr().err
    assert not out.exists()


def test_compare_with_only_failing_candidates_exits_1_with_the_reasons(tweets_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(compare_argv([tmp_path / "nope-1", tmp_path / "nope-2"], tweets_dir, out))
    assert code == 1
    board = pd.read_csv(out / "compare.csv")
    assert board["status"].tolist() == ["failed", "failed"]
    assert not (out / "compare.png").exists()


def test_compare_arguments_are_checked(tweets_dir, tmp_path, capsys):
    assert main(compare_argv(["a", "a"], tweets_dir, tmp_path / "out")) == 2
    assert "twice" in capsys.readouterr().err


def test_overwrite_removes_only_what_a_previous_comparison_wrote(tmp_path):
    from textune.training.compare import remove_comparison

    for name in ("compare.md", "compare.csv", "notes.txt", "01-tiny/config.json", "01-tiny/textune_run.json",
                 "01-tiny/checkpoint-2/trainer_state.json", "02-mine/model.safetensors", "02-mine/keep.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    remove_comparison(tmp_path)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["02-mine", "02-mine/keep.txt", "notes.txt"]


def test_compare_refuses_to_replace_the_current_folder(tweets_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    before = sorted(tmp_path.rglob("*"))
    assert main(compare_argv(["tiny"], tweets_dir, ".", "--overwrite_output_dir")) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("textune:")]
    assert len(errors) == 1 and "--output_dir . is the current folder" in errors[0]
    assert sorted(tmp_path.rglob("*")) == before


def test_a_qa_leaderboard_shows_the_tasks_headline_metrics_on_squads_0_to_100_axis(tmp_path):
    from textune.tasks import QuestionAnsweringTask
    from textune.training.compare import CandidateResult, Leaderboard, leaderboard_figure, leaderboard_frame

    results = [CandidateResult(f"m{i}", "ok", tmp_path / f"0{i}-m{i}", {"f1": f1, "exact_match": f1 - 10,
                                                                        "loss": 1.5, "HasAns_total": 40.0},
                               train_seconds=3.0, latency_ms=2.0) for i, f1 in enumerate((72.5, 64.0))]
    task = QuestionAnsweringTask
    board = Leaderboard(results, "f1", shown_metrics=task.headline_metrics, metric_scale=task.metric_scale)
    frame = leaderboard_frame(board)
    assert [c for c in frame.columns if c.startswith("eval_")] == ["eval_f1", "eval_exact_match", "eval_loss"]
    figure = leaderboard_figure(board)
    low, high = figure.axes[0].get_ylim()
    assert low < 0 and 100 <= high < 103  # SQuAD's points are on the axis, not above a 0-1 one
    assert figure.axes[0].get_ylabel() == "Validation score (0 to 100)"
    assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == [
        "validation f1", "validation exact_match"]
