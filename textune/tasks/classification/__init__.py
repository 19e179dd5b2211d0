"""Text classification, regression and multi-label classification: the first task."""
