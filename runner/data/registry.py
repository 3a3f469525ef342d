"""Datasets found by name, like models: a decorator and a dict."""
from __future__ import annotations

import os
from pathlib import Path

from runner.errors import ConfigError, DataError, close_matches
from runner.store.layout import resolve_data_root

_DATASETS: dict[str, type] = {}
FOLDER_PREFIX = "folder:"


def register_dataset(name: str):
    def wrap(cls):
        _DATASETS[name] = cls
        return cls

    return wrap


def list_datasets() -> list[str]:
    return list(_DATASETS) + [FOLDER_PREFIX + "<path>"]


def is_known_dataset(name: str) -> bool:
    return name in _DATASETS or name.startswith(FOLDER_PREFIX)


def unknown_dataset_message(name: str) -> str:
    hint = close_matches(name, _DATASETS)
    return (f"unknown dataset {name!r}" + (f"; did you mean {hint}?" if hint else "") +
            f" Known: {', '.join(list_datasets())}")


def open_dataset(name: str, data_root: str | os.PathLike | None = None):
    """The DataSource for `name` under the data root (or the folder a `folder:` name gives)."""
    if name.startswith(FOLDER_PREFIX):
        from runner.data.folder import ImageFolder

        return ImageFolder(Path(name[len(FOLDER_PREFIX):]).expanduser())
    if name not in _DATASETS:
        raise ConfigError(unknown_dataset_message(name))
    root = resolve_data_root(data_root)
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist; pass --data-root DIR or set RUNNER_DATA_ROOT "
                        f"to the folder that holds {name}/")
    return _DATASETS[name](root / name)
