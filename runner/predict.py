"""`runner predict`: class probabilities for new images from a saved checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle

from runner.data.images import decode, resize
from runner.data.transforms import scale_to_unit_range
from runner.errors import RunnerError
from runner.models import build_network, dtype_name
from runner.store.safe_pickle import load_state_dict


def locate(checkpoint: Path) -> tuple[Path, Path]:
    """(run.json, model weights prefix) from a checkpoint folder, its run folder or a .pdparams file."""
    checkpoint = Path(checkpoint)
    if checkpoint.suffix == ".pdparams":
        prefix = checkpoint.with_suffix("")
    elif (checkpoint / "model.pdparams").exists():
        prefix = checkpoint / "model"
    elif (checkpoint / "best" / "model.pdparams").exists():
        prefix = checkpoint / "best" / "model"
    else:
        raise RunnerError(f"no checkpoint at {checkpoint}: give outputs/<name>/checkpoints/<run-id> "
                          "(its best epoch is used), one of its epoch folders, or a .pdparams file")
    for folder in (prefix.parent, prefix.parent.parent):
        if (folder / "run.json").exists():
            return folder / "run.json", prefix
    raise RunnerError(f"{prefix}.pdparams has no run.json beside it, so its network is unknown")


def load_trained_network(checkpoint: Path) -> tuple[paddle.nn.Layer, dict, list[str]]:
    """The network saved in `checkpoint` (see `locate`), in eval mode, with its run's config and class names."""
    run_file, prefix = locate(checkpoint)
    run = json.loads(run_file.read_text())
    config, class_names = run["config"], run["class_names"]
    network = build_network(config["model"], len(class_names), config["image_size"],
                            head=config.get("head", "softmax"), **config["model_args"])
    saved = load_state_dict(f"{prefix}.pdparams", "checkpoint")  # runs no code the file may hold
    problem = mismatch(network.state_dict(), saved)
    if problem:
        raise RunnerError(f"checkpoint {prefix}.pdparams does not fit the network of {run_file} "
                          f"({config['model']}): {problem}; give the checkpoint folder of the run that wrote it")
    network.set_state_dict(saved)
    network.eval()
    return network, config, class_names


def mismatch(own: dict, saved) -> str | None:
    """What keeps `saved` weights from filling a network exactly (paddle would skip such tensors
    with a warning and leave them random)."""
    if not isinstance(saved, dict):
        return "it holds no state dict"
    missing = [k for k in own if k not in saved]
    shapes = [k for k in own if k in saved and list(saved[k].shape) != list(own[k].shape)]
    dtypes = [k for k in own if k in saved and k not in shapes and dtype_name(saved[k]) != dtype_name(own[k])]
    extra = [k for k in saved if k not in own]
    if not (missing or shapes or dtypes or extra):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the network's {len(own)} tensors are not in it (e.g. {missing[0]})")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} {'tensor has' if len(shapes) == 1 else 'tensors have'} another shape (e.g. {k}: "
                     f"{list(saved[k].shape)} in the file, {list(own[k].shape)} in the network)")
    if dtypes:
        k = dtypes[0]
        parts.append(f"{len(dtypes)} {'tensor holds' if len(dtypes) == 1 else 'tensors hold'} another kind of number "
                     f"(e.g. {k}: {dtype_name(saved[k])} in the file, {dtype_name(own[k])} in the network)")
    if extra:
        parts.append(f"{len(extra)} of its tensors are not in the network (e.g. {extra[0]})")
    return "; ".join(parts)


def predict(checkpoint: Path, images: list[Path]) -> list[dict]:
    network, config, class_names = load_trained_network(checkpoint)
    out = []
    for path in images:
        image, problem = decode(Path(path)) if Path(path).is_file() else (None, f"{path}: no such file")
        if problem:
            out.append({"image": str(path), "error": problem})
            continue
        note = None
        if image.shape[0] != config["image_size"] or image.shape[1] != config["image_size"]:
            note = f"resized from {image.shape[1]}x{image.shape[0]} to {config['image_size']}x{config['image_size']}"
        x = scale_to_unit_range(resize(image, config["image_size"]))[None]
        with paddle.no_grad():
            probs = paddle.nn.functional.softmax(network(paddle.to_tensor(x)), axis=-1).numpy()[0]
        out.append({"image": str(path), "class": class_names[int(np.argmax(probs))],
                    "probabilities": {n: round(float(p), 4) for n, p in zip(class_names, probs)}, "note": note})
    return out
