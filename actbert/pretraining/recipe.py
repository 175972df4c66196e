"""Training recipes as files: ``actbert train --config configs/demo_stage1.json`` reads one.

A recipe is a JSON object whose keys are ``TrainConfig`` fields (``lr``, ``steps``, ``match_on``...);
keys starting with ``_`` are notes for the reader (``_about``: what the recipe is and how to launch
it) and are ignored. The data and the output folder are not part of a recipe: they come from the
command line (``--library``/``--corpus``, ``--out``), and any flag given there overrides the file.
"""

from __future__ import annotations

import json
import typing
from dataclasses import fields
from pathlib import Path

from .train import TrainConfig
from .verbs import read_stoplist

# Fields that belong to one run, not to a recipe.
NOT_IN_RECIPES = ("corpus", "out", "progress")


def recipe_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(TrainConfig) if f.name not in NOT_IN_RECIPES)


def _typed(name: str, value, hint) -> object:
    """``value`` as the field's type: a whole number for a float field becomes a float (so the run's
    train_config.json reads as with the flag), a list a tuple, a stop-list spec its verbs."""
    if name == "ignore_verbs" and isinstance(value, str):
        return read_stoplist(value)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, int) and not isinstance(value, bool) and hint in (float, float | None):
        return float(value)
    return value


def read_recipe(path: str | Path) -> dict:
    """The ``TrainConfig`` options of a recipe file; ``ValueError`` naming the file for anything
    that is not a JSON object of known fields."""
    path = Path(path)
    try:
        recipe = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(recipe, dict):
        raise ValueError(f"{path}: a recipe is a JSON object of TrainConfig fields")
    options = {k: v for k, v in recipe.items() if not k.startswith("_")}
    unknown = sorted(set(options) - set(recipe_fields()))
    if unknown:
        raise ValueError(f"{path}: unknown recipe keys {unknown} (known: {', '.join(recipe_fields())})")
    hints = typing.get_type_hints(TrainConfig)
    return {k: _typed(k, v, hints[k]) for k, v in options.items()}
