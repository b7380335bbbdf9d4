"""One module per fine-tuning method, each the implementation (a ``torch.nn.Module``) of the
declaration of the same name in ``params/``; both register with ``trainables.registry``."""
