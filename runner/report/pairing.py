"""Which finished runs may be compared image by image, decided from their data fingerprints.

A paired statistic (McNemar's test, DeLong's, an ensemble's average of probabilities, anything added
later) is computed only between runs scored on the same images in the same order with the same
labels: runs whose fingerprints share `val.digest` (runner/store/fingerprint.py). Never from a count or a
setting: two sweeps of 400 validation images each may hold other images. A run recorded by an
older runner has no fingerprint and is compared with nothing: which images it was scored on is not
known, and is not guessed. Everything here reads the rows of runner/report/comparison.py and returns reasons
in words where a comparison is refused.
"""
from __future__ import annotations

import numpy as np

from runner.store.fingerprint import short, train_digest, val_digest

NO_FINGERPRINT = "no data fingerprint (written by an older runner): which images it was scored on is not known"
NOT_MATCHING = "its predictions.npz does not hold the labels its data fingerprint records"


def data_of(row: dict) -> dict | None:
    return row["result"].get("data")


def val_key(row: dict) -> str | None:
    """What two runs must share to be compared image by image (None: no fingerprint)."""
    return val_digest(data_of(row))


def same_predictions(a: dict, b: dict) -> bool:
    """Both runs' saved validation labels agree, image by image: what a shared fingerprint promises,
    checked before any paired number is computed from the arrays."""
    la, lb = a["predictions"].get("labels"), b["predictions"].get("labels")
    return la is not None and lb is not None and np.array_equal(la, lb)


def best_on_same_images(row: dict, rows: list[dict]) -> tuple[dict | None, str | None]:
    """(the best of `rows` scored on the images `row` was, or None; why it is compared with none).
    `rows` are best first; the best may be `row` itself, alone on its images among other runs."""
    if row["correct"] is None:
        return None, row["predictions_problem"]
    key = val_key(row)
    if key is None:
        return None, NO_FINGERPRINT
    peers = [r for r in rows if val_key(r) == key]
    if peers[0]["correct"] is None:  # "differs from the best" cannot be answered: never from the second best
        return None, (f"the best run on its validation images, {peers[0]['result']['run_id']}, has no usable "
                      f"predictions ({peers[0]['predictions_problem']})")
    if peers[0] is not row and not same_predictions(peers[0], row):
        return None, NOT_MATCHING
    alone = f"no other run was scored on its validation images (fingerprint {short(key)})"
    return peers[0], (alone if len(peers) == 1 and len(rows) > 1 else None)


def image_sets(rows: list[dict]) -> list[str | None]:
    """The distinct validation fingerprints of `rows`, in order (None for runs without one)."""
    return list(dict.fromkeys(val_key(r) for r in rows))


def set_name(key: str | None) -> str:
    return "no fingerprint" if key is None else short(key)


def group_data(members: list[dict], folds: int) -> dict:
    """How many training and validation sets a seed group's members saw, and a note where they
    differ (`folds`: the group's number of k-fold folds, 0 if none)."""
    fingerprints = [data_of(m) for m in members]
    missing = sum(f is None for f in fingerprints)
    if missing:
        return {"train_sets": None, "val_sets": None,
                "data_note": f"{missing} of {len(members)} runs have no data fingerprint (written by an older runner)"}
    train = len({train_digest(f) for f in fingerprints})
    val = len({val_digest(f) for f in fingerprints})
    note = None
    if folds and val == folds:
        note = f"cross-validation: each of the {folds} folds is trained and scored on other images"
    elif train > 1 or val > 1:
        note = "its runs saw different data: " + ", ".join(
            f"{n} {what} sets" for n, what in ((train, "training"), (val, "validation")) if n > 1)
    return {"train_sets": train, "val_sets": val, "data_note": note}


def group_signature(members: list[dict]) -> frozenset | None:
    """The validation sets a seed group was scored on; groups are compared (Welch) only where these
    are the same (None: a member has no fingerprint)."""
    keys = [val_key(m) for m in members]
    return None if None in keys else frozenset(keys)


def welch_note(group: dict, groups: list[dict]) -> str | None:
    """Why a seed group is compared with no other group (Welch), or None."""
    signature = group_signature(group["members"])
    if signature is None:
        return NO_FINGERPRINT
    peers = [g for g in groups if group_signature(g["members"]) == signature]
    if len(peers) == 1 and len(groups) > 1:
        return "no other group was scored on the same validation images"
    return None


def ensemble_problem(members: list[dict], folds: int) -> str | None:
    """Why the members' probabilities may not be averaged image by image, or None."""
    keys = image_sets(members)
    if None in keys:
        return NO_FINGERPRINT.replace("it was", "its runs were")
    if len(keys) > 1:
        return (f"its runs were scored on {len(keys)} different sets of validation images"
                + (f" ({folds} folds of cross-validation are not an ensemble)" if folds else ""))
    if not all(same_predictions(members[0], m) for m in members[1:]):
        return NOT_MATCHING.replace("its", "a run's")
    return None
