"""One module per fine-tuning method; each registers itself with ``trainables.registry``."""
