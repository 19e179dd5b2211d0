"""Main: glue the data module and the model module together, train, evaluate, and try the model.

    python examples/tutorial/main.py                      # packaged MiniLM on the packaged tweets, 1 epoch
    python examples/tutorial/main.py --train_file my.csv --backbone path/to/model --max_steps 50
"""

from __future__ import annotations

import argparse

import data
import model

from textune import DataArguments, Predictor, TextuneTrainingArguments, train


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_file", default=None)
    parser.add_argument("--backbone", default=None)
    parser.add_argument("--max_steps", type=int, default=-1)
    parser.add_argument("--output_dir", default="runs/tutorial")
    args = parser.parse_args(argv)

    train_rows, validation_rows = data.split(data.load_tweets(args.train_file))
    result = train(
        model.model_arguments(args.backbone),
        DataArguments(),
        TextuneTrainingArguments(output_dir=args.output_dir, overwrite_output_dir=True, num_train_epochs=1,
                                 max_steps=args.max_steps, per_device_train_batch_size=32, learning_rate=5e-5,
                                 do_train=True, do_eval=True),
        model.task_arguments(text_column_names="text", label_column_name="target", max_seq_length=64),
        train_data=train_rows, validation_data=validation_rows,
    )
    print("validation:", {k: round(v, 3) for k, v in result.metrics["eval"].items() if k.endswith(("accuracy", "f1"))})

    predictor = Predictor.from_run(args.output_dir)  # what predict and serve use: the folder is enough
    print(predictor.predict([data.clean("Forest fire near La Ronge Sask. Canada"),
                             data.clean("What a lovely sunny day for a picnic")]))


if __name__ == "__main__":
    main()
