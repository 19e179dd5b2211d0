"""Running a trained run: batched prediction, prediction backends (PyTorch, ONNX Runtime), export and file jobs."""
