"""Which pretrained model to start from: the catalog, packaged offline models, and loading checks."""
