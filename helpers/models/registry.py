"""The registry of model classes, by name: what `load_model` and the notebooks' MODELS entries look up.

Concrete classes register themselves with `@register` when their module is imported; `helpers.models`
imports every implementation module, so importing `helpers.models` (or anything from it) fills the
registry. This module imports no implementation.
"""
from __future__ import annotations

MODEL_CLASSES: dict[str, type] = {}
DEFAULT_MODEL = "collabnn"
TASK_SUFFIXES = ("rating", "implicit")


def register(cls):
    """Class decorator: make a Recommender loadable by its `name`."""
    MODEL_CLASSES[cls.name] = cls
    return cls


def is_neural(cls) -> bool:
    """Whether a registered class is trained by `helpers.training` (it has per-task defaults)."""
    return bool(getattr(cls, "defaults", None))


def neural_models() -> dict[str, type]:
    """{name: class} of the registered neural models (the ones `make_model` builds)."""
    return {name: cls for name, cls in MODEL_CLASSES.items() if is_neural(cls)}


def model_class(entry: str) -> tuple[type, str | None]:
    """(Recommender class, task or None) of a MODELS entry: "NAME" or "NAME_TASK" (e.g. "mf_rating")."""
    if entry in MODEL_CLASSES:
        return MODEL_CLASSES[entry], None
    name, _, task = entry.rpartition("_")
    if name in MODEL_CLASSES and task in TASK_SUFFIXES:
        return MODEL_CLASSES[name], task
    raise ValueError(f"unknown model {entry!r}; choose from {sorted(MODEL_CLASSES)}, optionally with a task "
                     "suffix for the neural models ('mf_rating', 'collabnn_implicit')")


def model_file_name(entry: str) -> str:
    """The file a MODELS entry is saved as and loaded from, named for its class and task: "collabnn" ->
    "collabnn_implicit.pth", "mf_rating" -> "mf_rating.pth", "bias" -> "bias_rating.pth". A neural entry without
    a task suffix is the implicit task (as `load_or_train` trains it); a baseline has the task of its class."""
    cls, task = model_class(entry)
    return f"{cls.name}_{task or cls.task}.pth"


def make_model(name: str | None = None, task: str = "implicit", **config):
    """A new, unfitted neural model by name ("collabnn" default, "mf", "neumf"); config keys validated.

    None values are ignored (the model's default is used), so callers can pass optional arguments through.
    """
    name = name or DEFAULT_MODEL
    models = neural_models()
    if name not in models:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(models)}")
    return models[name](task=task, **config)
