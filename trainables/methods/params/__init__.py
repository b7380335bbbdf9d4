"""Each method's declaration, importable without torch: its hyperparameters (a strict pydantic
model with the papers' defaults and ranges), the checks of their values against a model, its train
recipe and its paper. ``sweeper validate`` and ``sweeper methods`` read only these; the method's
``torch.nn.Module`` lives in ``trainables/methods/<name>.py`` beside this folder, under the same
module name."""
