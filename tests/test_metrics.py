import math

import numpy as np
import pytest

from runner import metrics


def probs_for(scores):
    scores = np.asarray(scores, float)
    return np.stack([1 - scores, scores], axis=1)


def test_auc_counts_ties_as_half():
    # positives score 0.9, 0.5; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.5=0.5, 0.5>0.1) = 3.5 / 4
    assert metrics.roc_auc(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0])) == pytest.approx(0.875)
    assert math.isnan(metrics.roc_auc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_binary_scores_by_hand():
    labels = np.array([1, 1, 1, 0, 0])
    probs = probs_for([0.9, 0.8, 0.2, 0.7, 0.1])  # TP 2, FN 1, FP 1, TN 1
    out = metrics.summarize(probs, labels)
    assert out["acc"] == pytest.approx(3 / 5)
    assert out["sensitivity"] == pytest.approx(2 / 3)
    assert out["specificity"] == pytest.approx(1 / 2)
    assert out["f1"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert out["auc"] == pytest.approx(5 / 6)  # 5 of 6 positive/negative pairs ordered


def test_top5_and_confusion():
    probs = np.array([
        [.91, .01, .01, .01, .01, .01, .01, .01, .01, .01],  # label 0 ranked first
        [.05, .30, .05, .20, .05, .15, .05, .05, .05, .05],  # label 5 ranked third
        [.30, .20, .01, .10, .09, .05, .08, .07, .05, .05],  # label 2 ranked last
    ])
    labels = np.array([0, 5, 2])
    assert metrics.accuracy(probs, labels) == pytest.approx(1 / 3)
    assert metrics.topk_accuracy(probs, labels, 5) == pytest.approx(2 / 3)
    cm = metrics.confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    assert cm.tolist() == [[1, 1], [0, 1]]


def test_wilson_interval_by_hand():
    # 376 of 400 correct (94%): Wilson 95% interval, computed by hand
    low, high = metrics.wilson_interval(376, 400)
    assert low == pytest.approx(0.91228, abs=1e-5) and high == pytest.approx(0.95935, abs=1e-5)
    low, high = metrics.wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.27753, abs=1e-4)


def test_mcnemar_exact_by_hand():
    # A right and B wrong on 8 images, the opposite on 2: p = 2 * P(X <= 2 | n=10, 1/2) = 2 * 56/1024
    a = np.array([1] * 8 + [0] * 2 + [1] * 5, bool)
    b = np.array([0] * 8 + [1] * 2 + [1] * 5, bool)
    only_a, only_b, p = metrics.mcnemar(a, b)
    assert (only_a, only_b) == (8, 2)
    assert p == pytest.approx(2 * 56 / 1024)
    assert metrics.mcnemar(a, a)[2] == 1.0


def test_mean_std_interval_by_hand():
    mean, std, low, high = metrics.mean_std_interval([0.90, 0.92, 0.94])
    assert mean == pytest.approx(0.92) and std == pytest.approx(0.02)
    half = 4.302653 * 0.02 / math.sqrt(3)  # t(0.975, 2) from tables, to 7 digits
    assert low == pytest.approx(0.92 - half) and high == pytest.approx(0.92 + half)


def test_roc_curve_endpoints():
    fpr, tpr = metrics.roc_curve(np.array([0.9, 0.6, 0.4, 0.1]), np.array([1, 0, 1, 0]))
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc(np.array([0.9, 0.6, 0.4, 0.1]), np.array([1, 0, 1, 0])))


def test_seed_groups_join_runs_recorded_before_and_after_new_settings():
    from runner.report.comparison import seed_groups
    from runner.report.tables import group_table

    old = {"model": "alexnet", "dataset": "ichallenge-pm", "image_size": 224, "epochs": 5, "seed": 0, "label": ""}
    new = {**old, "seed": 1, "device": "cpu", "nproc": 1, "amp": False, "label": "alexnet again"}
    other = {**new, "seed": 2, "image_size": 128}  # a different setting: its own group
    rows = [{"result": {"config": c, "final": {"acc": acc, "auc": auc}}}
            for c, acc, auc in ((old, 0.90, 0.95), (new, 0.80, 0.93), (other, 0.70, 0.90))]
    groups = seed_groups(rows)
    assert [(g["image_size"], g["seeds"]) for g in groups] == [(224, 2), (128, 1)]
    mean, std, low, high = groups[0]["acc"]
    assert mean == pytest.approx(0.85) and std == pytest.approx(math.sqrt(0.005))
    half = 12.706205 * math.sqrt(0.005) / math.sqrt(2)  # t(0.975, 1)
    assert low == pytest.approx(0.85 - half) and high == pytest.approx(0.85 + half)
    header, body = group_table(groups)
    row = dict(zip(header, body[0]))
    assert row["final acc mean ± std"] == "85.00 ± 7.07%"
    assert row["95% interval"] == "21.47%–100.00%"  # the t-interval (21.5 %, 148.5 %) shown within bounds
    assert row["AUC mean ± std"] == "0.940 ± 0.014"
    assert row["course (text)"] == "94.00%" and row["course (its saved run)"] == "92.50%"


def test_a_group_says_how_many_of_its_seeds_have_no_accuracy_its_mean_is_over_the_others():
    from runner.report.comparison import seed_groups
    from runner.report.tables import group_table

    config = {"model": "alexnet", "dataset": "ichallenge-pm", "image_size": 64, "epochs": 5, "label": ""}
    rows = [{"result": {"config": {**config, "seed": seed}, "final": {"acc": acc, "auc": 0.9}}}
            for seed, acc in ((0, 0.90), (1, None), (2, 0.80))]
    (group,) = seed_groups(rows)
    assert group["seeds"] == 3 and group["seeds_without_acc"] == 1
    assert group["acc"][0] == pytest.approx(0.85)  # the two runs with an accuracy
    header, body = group_table([group])
    assert dict(zip(header, body[0]))["seeds"] == "3 (1 without accuracy)"
    assert group_table(seed_groups(rows[::2]))[1][0][header.index("seeds")] == "2"  # a full group: its count


def test_a_group_of_one_run_is_drawn_with_its_wilson_interval_not_from_0_to_100():
    from runner.metrics import wilson_interval
    from runner.report.comparison import accuracy_intervals, seed_groups

    base = {"model": "alexnet", "dataset": "ichallenge-pm", "image_size": 224, "epochs": 5, "label": ""}
    rows = [{"result": {"config": {**base, "seed": s}, "final": {"acc": acc}}, "ci": (None, None)}
            for s, acc in ((0, 0.90), (1, 0.80))]
    rows.append({"result": {"config": {**base, "seed": 0, "model": "vgg16"}, "final": {"acc": 0.9725}},
                 "ci": wilson_interval(389, 400)})
    drawn = {label: rest for label, *rest in accuracy_intervals(seed_groups(rows))}
    mean, low, high, kind = drawn["vgg16"]
    assert kind == "wilson" and mean == pytest.approx(97.25)
    assert (low, high) == pytest.approx(tuple(100 * v for v in wilson_interval(389, 400)))
    assert 94 < low < 96 and 98 < high < 99.5
    mean, low, high, kind = drawn["alexnet"]  # two seeds: the t-interval, kept within 0-100 %
    assert kind == "t" and mean == pytest.approx(85.0) and low == pytest.approx(21.47, abs=0.01) and high == 100.0


def test_differs_from_best_never_prints_p_equal_to_zero():
    from runner.report.tables import differs

    assert differs(0.0) == "yes, p<0.0001"  # what McNemar's p underflows to on 10 000 test images
    assert differs(3e-5) == "yes, p<0.0001"
    assert differs(0.0075) == "yes, p=0.0075"
    assert differs(0.8) == "no, p=0.8"
    assert differs("best") == "— (best)" and differs(None) == "—"


def test_seed_groups_of_one_model_are_told_apart_by_the_settings_that_differ():
    from runner.report.comparison import seed_groups
    from runner.report.tables import group_table

    adam = {"model": "alexnet", "dataset": "ichallenge-pm", "image_size": 224, "epochs": 5, "seed": 0,
            "optimizer": {"name": "adam", "learning_rate": 0.001}}
    momentum = {**adam, "optimizer": {"name": "momentum", "learning_rate": 0.001, "momentum": 0.9}}
    sigmoid = {**adam, "head": "sigmoid"}  # the default head is left out of older configs
    holdout = {**adam, "model": "vgg16", "validation": "holdout:0.2"}
    googlenet = {**adam, "model": "googlenet"}
    no_aux = {**googlenet, "model_args": {"aux_heads": False}}
    rows = [{"result": {"config": c, "final": {"acc": acc, "auc": 0.9}}}
            for c, acc in ((adam, 0.90), (momentum, 0.89), (sigmoid, 0.88), (holdout, 0.87), (googlenet, 0.86),
                           (no_aux, 0.85))]
    header, body = group_table(seed_groups(rows))
    names = {line[0]: dict(zip(header, line)) for line in body}
    assert set(names) == {"alexnet (head=softmax, optimizer.name=adam)",
                          "alexnet (head=softmax, optimizer.momentum=0.9, optimizer.name=momentum)",
                          "alexnet (head=sigmoid, optimizer.name=adam)", "vgg16",
                          "googlenet (model_args.aux_heads=default)", "googlenet (model_args.aux_heads=False)"}
    # the course's figure is for its validation images: a holdout of the training images has none
    assert names["vgg16"]["course (text)"] == "—"
    assert names["alexnet (head=sigmoid, optimizer.name=adam)"]["course (text)"] == "94.00%"


def test_comparison_curves_draw_each_seed_group_in_one_colour_with_its_mean():
    from runner import plots
    from runner.report.comparison import plot_groups

    def run(model, seed, accs, image_size=224):
        config = {"model": model, "dataset": "ichallenge-pm", "image_size": image_size, "epochs": 3, "seed": seed}
        history = [{"epoch": e + 1, "val": {"acc": a}} for e, a in enumerate(accs)]
        return {"result": {"config": config, "history": history, "final": {"acc": accs[-1]}, "train_seconds": 60}}

    rows = [run("alexnet", 0, [0.5, 0.7, 0.9]), run("vgg16", 0, [0.6, 0.8, 0.95]), run("alexnet", 1, [0.7, 0.9, 0.7]),
            run("alexnet", 2, [0.6, 0.8], image_size=128)]  # stopped early, and at another size
    groups = plot_groups(rows)
    assert [(label, len(runs)) for label, runs in groups] == [("alexnet 224px", 2), ("vgg16 224px", 1),
                                                              ("alexnet 128px", 1)]
    ax = plots.curves_figure(groups, "acc", "val").axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["alexnet 224px (mean of 2 seeds)", "vgg16 224px", "alexnet 128px"]
    mean = next(line for line in ax.get_lines() if line.get_label() == legend[0])
    assert list(mean.get_xdata()) == [1, 2, 3] and list(mean.get_ydata()) == pytest.approx([0.6, 0.8, 0.8])
    seeds = [line for line in ax.get_lines() if line.get_label().startswith("_") and line.get_color() == mean.get_color()]
    assert len(seeds) == 2
    assert len({line.get_color() for line in ax.get_lines() if not line.get_label().startswith("_")}) == 3
    assert all(float(tick).is_integer() for tick in ax.get_xticks())


def test_welch_against_a_group_of_identical_seeds_prints_no_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's precision-loss warning would reach the terminal
        # three seeds that all answer one class for every image, against three that learn
        p = metrics.welch_p([0.4725] * 3, [0.90, 0.95, 0.97])
    assert p == pytest.approx(metrics.welch_p([0.4725, 0.4725, 0.4725 + 1e-9], [0.90, 0.95, 0.97]), rel=1e-3)
