"""What a run was computed on: the fingerprint of its training and validation images.

    {"version": 1, "dataset": "ichallenge-pm", "class_names": [...], "validation": "holdout:0.2",
     "train": {"images": 320, "ids": [...], "ids_digest": ..., "labels_digest": ..., "content_digest": ...,
               "digest": ...},
     "val": {...}, "digest": ...}

A split holds a digest of its images' ids in the order the run used them (a file's path under the
dataset's folder, or `train/17` for the 18th training image of the Cifar10 archive) and, for a split
of up to LISTED_IDS images, the ids themselves, so that a refusal can name an image added or removed
(Cifar10's 50 000 would make every kept result.json a megabyte), a digest of their labels
in that order, and a digest of their content: every file's bytes, or the archive members the images
come from. A holdout's or a fold's validation split lists the training images it holds. Two runs
whose `val.digest` is the same were scored on the same images, in the same order, with the same
labels: only such runs are compared image by image (McNemar, DeLong, an ensemble).

The run id hashes the settings only, so it stays stable while nothing changes; the data is checked
against this fingerprint instead (runner/sweep/plan.py), so a run on changed data is found stale rather than
silently kept. Pure functions: no paddle, no files.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

VERSION = 1
SPLIT_NAMES = {"train": "training", "val": "validation"}
SHORT = 12  # hex digits of a digest shown to people
LISTED_IDS = 5000  # a split of more images keeps only the digest of its ids


def digest_strings(values) -> str:
    """SHA-256 of a list of strings (as JSON: no two lists share a digest)."""
    return hashlib.sha256(json.dumps(list(values), ensure_ascii=False).encode()).hexdigest()


def digest_labels(labels) -> str:
    return hashlib.sha256(np.asarray(labels, "<i8").tobytes()).hexdigest()


def digest_predictions(probs) -> str:
    """SHA-256 of a run's final validation probabilities as float32 (shape included), which
    result.json records: any change to them shows, a reordering among images of one label included,
    which keeps every count, accuracy and confusion matrix the same."""
    probs = np.ascontiguousarray(probs, "<f4")
    return hashlib.sha256(repr(probs.shape).encode() + probs.tobytes()).hexdigest()


def split_fingerprint(ids: list[str], labels, content_digest: str) -> dict:
    ids = [str(i) for i in ids]
    out = {"images": len(ids), **({"ids": ids} if len(ids) <= LISTED_IDS else {}), "ids_digest": digest_strings(ids),
           "labels_digest": digest_labels(labels), "content_digest": content_digest}
    out["digest"] = digest_strings([out["ids_digest"], out["labels_digest"], content_digest])
    return out


def data_fingerprint(dataset: str, class_names: list[str], validation: str, train: dict, val: dict) -> dict:
    return {"version": VERSION, "dataset": dataset, "class_names": list(class_names), "validation": validation,
            "train": train, "val": val,
            "digest": digest_strings([str(VERSION), *class_names, train["digest"], val["digest"]])}


def without_ids(fingerprint: dict | None) -> dict | None:
    """The fingerprint without its id lists, for the report (result.json keeps them)."""
    if not fingerprint:
        return None
    return {"digest": fingerprint["digest"], "validation": fingerprint.get("validation"),
            **{split: {k: v for k, v in fingerprint[split].items() if k != "ids"} for split in SPLIT_NAMES}}


def val_digest(fingerprint: dict | None) -> str | None:
    """What two runs must share to be compared image by image; None for a run without a fingerprint."""
    return fingerprint["val"]["digest"] if fingerprint else None


def train_digest(fingerprint: dict | None) -> str | None:
    return fingerprint["train"]["digest"] if fingerprint else None


def what_changed(old: dict, new: dict) -> str | None:
    """What differs between two fingerprints of a run's data, in words; None if nothing does."""
    if old.get("digest") == new.get("digest"):
        return None
    changes = []
    if old.get("class_names") != new.get("class_names"):
        changes.append(f"classes {old.get('class_names')} then, {new.get('class_names')} now")
    for split, name in SPLIT_NAMES.items():
        a, b = old.get(split) or {}, new.get(split) or {}
        if a.get("digest") == b.get("digest"):
            continue
        if a.get("ids_digest") != b.get("ids_digest"):
            if "ids" in a and "ids" in b:
                changes.append(f"{name} images {id_change(a['ids'], b['ids'])}")
            else:
                changes.append(f"{name} images changed (another selection or order): {b.get('images', '?')} now, "
                               f"{a.get('images', '?')} then; ids are listed only for up to {LISTED_IDS} images")
            continue
        if a.get("labels_digest") != b.get("labels_digest"):
            changes.append(f"labels of the {a.get('images', '?')} {name} images changed")
        if a.get("content_digest") != b.get("content_digest"):
            changes.append(f"content of the {name} images changed (the bytes of a file, or an archive member)")
    return "; ".join(changes) or f"data fingerprint {short(old.get('digest'))} then, {short(new.get('digest'))} now"


def id_change(then: list[str], now: list[str]) -> str:
    """'2 added (e.g. V0011.jpg), 1 removed (e.g. V0003.jpg): 11 now, 10 then', or a change of order."""
    before, after = set(then), set(now)
    added = [i for i in now if i not in before]
    removed = [i for i in then if i not in after]
    parts = [f"{len(added)} added (e.g. {added[0]})"] if added else []
    parts += [f"{len(removed)} removed (e.g. {removed[0]})"] if removed else []
    if not parts:
        return f"in another order ({len(now)} images)"
    return ", ".join(parts) + f": {len(now)} now, {len(then)} then"


def short(digest: str | None) -> str:
    return (digest or "?")[:SHORT]



RETRAIN_HINT = ("run again with --retrain-stale to train {them} afresh on the data now (the old files are moved to "
                "{stale}/, nothing is deleted), or restore the data to keep {them}")
