"""The vocabularies of an experiment file and of the results, each defined once.

Nothing here imports anything: the configuration, the networks, the training and the report all
read their allowed values and metric names from this module.
"""
from __future__ import annotations

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
# The keys each optimizer takes besides `name`: switching optimizer (by --set or [grid]) keeps only these.
OPTIMIZER_KEYS = {
    "sgd": ("learning_rate", "weight_decay", "decoupled"),
    "momentum": ("learning_rate", "weight_decay", "momentum", "nesterov", "decoupled"),
    "adam": ("learning_rate", "weight_decay", "beta1", "beta2"),
    "adamw": ("learning_rate", "weight_decay", "beta1", "beta2"),
}
# Keys every optimizer takes: the batch the learning rate is given for, and the batch-norm bias rate.
OPTIMIZER_KEYS = {name: tuple(keys) + ("reference_batch", "batch_rule", "norm_bias_lr")
                  for name, keys in OPTIMIZER_KEYS.items()}
BATCH_RULES = ("linear", "sqrt")  # how learning_rate scales from reference_batch to batch_size
SCHEDULERS = ("constant", "step", "cosine", "linear")
SCHEDULER_KEYS = {
    "constant": ("warmup_epochs",),
    "step": ("warmup_epochs", "step_size", "gamma"),
    "cosine": ("warmup_epochs", "min_lr"),
    "linear": ("warmup_share", "start_factor", "end_factor"),  # stepped per batch (runner/objectives.py)
}
MONITORS = ("acc", "loss", "auc")
EVAL_ENGINES = ("inference", "dygraph")  # see runner/run/inference_eval.py
HEADS = ("softmax", "sigmoid")  # one logit per class, or the course's one logit (runner/models/layers.py)

# The 15 corruptions of ImageNet-C (Hendrycks & Dietterich, ICLR 2019) in their four families, as the
# imagecorruptions package names them, and their severities; severity 0 is the image unchanged.
CORRUPTION_FAMILIES = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
CORRUPTIONS = tuple(name for family in CORRUPTION_FAMILIES.values() for name in family)
SEVERITIES = (1, 2, 3, 4, 5)
CORRUPTION_MIN_SIZE = 32  # pixels a side: imagecorruptions refuses smaller images
# What a run trained on a share of its training images (train_fraction < 1) keeps equal to a run on all
# of them: the epochs, or the images seen (epochs scaled by 1 / train_fraction, so about the same steps).
FRACTION_BUDGETS = ("same_epochs", "same_steps")

# Metrics by kind of task, in the table's order. Binary tasks: the positive class is label 1.
BINARY_METRICS = ("acc", "auc", "sensitivity", "specificity", "f1")
MULTICLASS_METRICS = ("acc", "top5")


def metric_names(num_classes: int) -> list[str]:
    if num_classes == 2:
        return list(BINARY_METRICS)
    return list(MULTICLASS_METRICS) if num_classes > 5 else ["acc"]


MAX_SEED = 2 ** 31 - 1  # the bound of a run's seed and of a search's final seeds


def epoch_seed(seed: int, epoch: int) -> int:
    """What every generator is seeded with at the start of `epoch` (counted from 0) of a run: data
    order, augmentation and dropout then depend on (seed, epoch) alone, so a resumed run draws what an
    uninterrupted one draws."""
    return seed * 100003 + epoch
