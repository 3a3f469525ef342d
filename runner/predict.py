"""`runner predict`: class probabilities for new images from a saved checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle

from runner.data.images import decode, resize
from runner.data.transforms import scale_to_unit_range
from runner.errors import RunnerError
from runner.models import build_network


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
    try:
        network.set_state_dict(paddle.load(str(prefix) + ".pdparams"))
    except Exception as err:
        raise RunnerError(f"cannot read checkpoint {prefix}.pdparams ({type(err).__name__}: {err})") from None
    network.eval()
    return network, config, class_names


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
