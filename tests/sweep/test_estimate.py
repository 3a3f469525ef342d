"""The time estimate, from what this machine measured: a network measured here is estimated from its
own fixed part and epochs, one not yet measured from the machine's pace and its multiply-accumulates,
the sweep's runs are laid out on its cores as the loop starts them, and a running sweep learns from
its own epochs and runs. Records are constructed: nothing here trains or times anything."""
import pytest

from runner.config import RunSpec, with_defaults
from runner.store.registry import RunRegistry
from runner.store.layout import SweepPaths
from runner.store.runfiles import write_json_atomic
from runner.sweep.estimate import (CORRUPTING_SECONDS_PER_MEGAPIXEL, EXTRA_CORE_GAIN, GFLOPS_PER_PROCESS,
                                   GROUPED_PACE_SHARE, HEAD_SECONDS, INFERENCE_EVAL_GAIN, TAIL_SECONDS, MachineTimings,
                                   image_counts, makespan, work_units)
from runner.sweep.plan import PlannedRun, sets_to_score
from runner.sweep.progress import SweepProgress
from runner.zoo import forward_macs

LENET = with_defaults({"model": "lenet", "image_size": 64, "epochs": 3, "eval_engine": "dygraph"})


def finished_row(config, train=30.0, evaluation=6.0, epochs=3, setup=8.0, finish=10.0, wall=None, host="here"):
    """A registry row of a run finished in one go; `wall`: its worker's start to its end."""
    wall = setup + train + evaluation + finish if wall is None else wall
    return {"config": config, "attempts": 1, "started_at": 1000.0, "finished_at": 1000.0 + wall,
            "metrics": {"train_seconds": train, "eval_seconds": evaluation, "epochs_run": epochs,
                        "setup_seconds": setup, "finish_seconds": finish, "host": host,
                        "flops": forward_macs(config["model"], config["image_size"], config["model_args"])}}


def test_a_network_measured_here_costs_its_fixed_part_and_its_epochs():
    timings = MachineTimings()
    # 2 s of its wall time are in none of its records (the worker's exit): they count in the tail
    timings.add_finished(finished_row(LENET, wall=8 + 36 + 10 + 2))
    cost = timings.cost(LENET)
    assert (cost.head, cost.epoch, cost.epochs, cost.tail, cost.source) == pytest.approx((8, 12, 3, 12, "measured"))
    assert cost.seconds == pytest.approx(56)  # its wall time: the same run again takes as long
    assert timings.cost({**LENET, "epochs": 5}).seconds == pytest.approx(8 + 5 * 12 + 12)
    assert timings.cost(LENET, epochs_done=2).seconds == pytest.approx(8 + 12 + 12)  # a resumed run
    # the same network on half the training images: its epochs cost its work, its fixed part stays
    half = {**LENET, "train_limit": 200}
    assert timings.cost(half).epoch == pytest.approx(12 * work_units(half) / work_units(LENET))
    assert work_units(half) == 3 * 200 + 400 and timings.cost(half).head == 8


def test_a_run_trained_under_load_is_counted_at_its_cpu_time_where_that_measures_it():
    # 30 s of wall time of which the one-thread training had the core for 18 (the rest: other work)
    loaded = finished_row(LENET, wall=8 + 36 + 10)
    loaded["metrics"]["train_cpu_seconds"] = 18.0
    timings = MachineTimings()
    timings.add_finished(loaded)
    cost = timings.cost(LENET)
    assert cost.epoch == pytest.approx((18 + 6) / 3) and cost.tail == pytest.approx(10)  # the wait is in neither
    # two threads, two processes (which wait for each other without CPU time) or a GPU: CPU time
    # does not measure the wall time, the wall time counts
    for config in ({**LENET, "threads": 2}, {**LENET, "nproc": 2}, {**LENET, "device": "gpu"}):
        row = finished_row(config)
        row["metrics"]["train_cpu_seconds"] = 18.0
        timings = MachineTimings()
        timings.add_finished(row)
        assert timings.cost(config).epoch == pytest.approx(12)


def test_a_network_not_measured_yet_runs_at_the_machines_pace_by_its_macs():
    timings = MachineTimings()
    timings.add_finished(finished_row(LENET))
    alexnet = {**LENET, "model": "alexnet"}
    cost = timings.cost(alexnet)
    ratio = forward_macs("alexnet", 64) / forward_macs("lenet", 64)
    assert cost.source == "paced" and cost.epoch == pytest.approx(12 * ratio)
    assert (cost.head, cost.tail) == (8, 10)  # the machine's measured fixed part
    # two threads: EXTRA_CORE_GAIN more of the pace
    assert timings.cost({**alexnet, "threads": 2}).epoch == pytest.approx(12 * ratio / (1 + EXTRA_CORE_GAIN))


def test_a_network_not_measured_yet_takes_the_pace_of_those_nearest_in_macs_on_its_dataset():
    # a small network runs a core far below its peak, a large one near it: here LeNet at a tenth of
    # GoogLeNet's pace
    timings = MachineTimings()
    big = {**LENET, "model": "googlenet"}
    timings.add_finished(finished_row(LENET, train=30.0, evaluation=6.0))
    lenet_pace = timings.pace[0].macs_per_second
    big_seconds = 36.0 * forward_macs("googlenet", 64) / forward_macs("lenet", 64) / 10
    timings.add_finished(finished_row(big, train=big_seconds * 5 / 6, evaluation=big_seconds / 6))
    big_pace = timings.pace[1].macs_per_second
    assert big_pace == pytest.approx(10 * lenet_pace)
    # a much faster run on other data does not count while this dataset has runs of its own
    timings.add_finished(finished_row({**big, "dataset": "cifar10", "image_size": 64}, train=1.0, evaluation=0.2))
    alexnet = {**LENET, "model": "alexnet"}  # nearer GoogLeNet's size: its pace, not LeNet's or a median of the three
    assert forward_macs("alexnet", 64) > 15 * forward_macs("lenet", 64)
    cost = timings.cost(alexnet)
    assert cost.source == "paced"
    assert cost.epoch == pytest.approx(forward_macs("alexnet", 64) * work_units(alexnet) / big_pace)
    assert timings.pace_for(forward_macs("lenet", 64) * 1.5, "ichallenge-pm") == pytest.approx(lenet_pace)
    # a dataset nothing was measured on takes the pace of every run's nearest
    assert timings.pace_for(forward_macs("lenet", 64), "folder:x") == pytest.approx(lenet_pace)


def test_a_network_with_depthwise_convolutions_takes_the_pace_of_its_kind():
    # depthwise convolutions hold few of a MobileNet's MACs but much of its time: measured here, a
    # MobileNetV2 at a third of the pace of a dense network of similar MACs (AlexNet)
    from runner.zoo import grouped_shares_of

    mobilenet, shufflenet, lenet, resnet18 = ({**LENET, "model": m} for m in (
        "paddle.vision/mobilenet_v2", "paddle.vision/shufflenet_v2_x1_0", "lenet", "paddle.vision/resnet18"))
    macs = {c["model"]: forward_macs(c["model"], 64) for c in (mobilenet, shufflenet, lenet, resnet18)}
    shares = grouped_shares_of([(c["model"], 64, {}) for c in (mobilenet, shufflenet, lenet, resnet18)])
    assert shares[0] > 0.01 and shares[1] > 0.01 and shares[2] == shares[3] == 0.0
    # the case only the kind tells apart: ShuffleNet nearer LeNet in MACs than the MobileNet,
    # ResNet-18 nearer the MobileNet than LeNet
    assert macs["lenet"] < macs[shufflenet["model"]] < macs[mobilenet["model"]] < macs[resnet18["model"]]
    assert macs[shufflenet["model"]] / macs["lenet"] < macs[mobilenet["model"]] / macs[shufflenet["model"]]
    timings = MachineTimings()
    for config, pace in ((lenet, 3e9), (mobilenet, 1e9)):
        seconds = macs[config["model"]] * work_units(config) / pace  # an epoch; 3 of them
        timings.add_finished(finished_row(config, train=seconds * 3 * 5 / 6, evaluation=seconds * 3 / 6))
    assert sorted(round(p.macs_per_second / 1e9, 6) for p in timings.pace) == [1, 3]
    assert timings.cost(shufflenet).epoch == pytest.approx(macs[shufflenet["model"]] * work_units(shufflenet) / 1e9)
    assert timings.cost(resnet18).epoch == pytest.approx(macs[resnet18["model"]] * work_units(resnet18) / 3e9)
    # with no network of its kind measured, the other kind's nearest in MACs, converted: a grouped
    # network a quarter of a dense one's pace, a dense network four times a grouped one's
    dense_only = MachineTimings()
    dense_only.add_finished(finished_row(lenet))
    assert dense_only.cost(shufflenet).source == "paced"
    assert dense_only.pace_for(1, "ichallenge-pm", ("paddle.vision/shufflenet_v2_x1_0", 64, "{}")) == \
        pytest.approx(GROUPED_PACE_SHARE * dense_only.pace[0].macs_per_second)
    grouped_only = MachineTimings()
    grouped_only.add_finished(finished_row(mobilenet))
    assert grouped_only.pace_for(1, "ichallenge-pm", ("lenet", 64, "{}")) == \
        pytest.approx(grouped_only.pace[0].macs_per_second / GROUPED_PACE_SHARE)
    # and before anything was measured, the default pace converted alike
    nothing = MachineTimings()
    assert nothing.cost(mobilenet).source == "default"
    assert nothing.cost(mobilenet).epoch == pytest.approx(nothing.cost(resnet18).epoch / GROUPED_PACE_SHARE
                                                          * macs[mobilenet["model"]] / macs[resnet18["model"]])


def test_before_anything_is_measured_the_defaults_count_training_evaluation_engine_and_cores():
    timings = MachineTimings()
    base = with_defaults({"model": "lenet", "image_size": 64, "epochs": 2, "eval_engine": "dygraph"})
    macs = forward_macs("lenet", 64)
    # 400 training images forward + backward (3 forward passes), 400 validation images forward
    epoch = 2 * macs * (3 * 400 + 400) / (GFLOPS_PER_PROCESS * 1e9)
    cost = timings.cost(base)
    assert cost.source == "default" and cost.epoch == pytest.approx(epoch)
    assert cost.seconds == pytest.approx(HEAD_SECONDS + 2 * epoch + TAIL_SECONDS)
    engine = timings.cost({**base, "eval_engine": "inference"}).epoch
    assert engine == pytest.approx(2 * macs * (3 * 400 + 400 / INFERENCE_EVAL_GAIN) / (GFLOPS_PER_PROCESS * 1e9))
    assert timings.cost({**base, "threads": 2}).epoch == pytest.approx(epoch / (1 + EXTRA_CORE_GAIN))
    # a 20 % holdout trains on 320 images and evaluates 80
    holdout = timings.cost({**base, "validation": "holdout:0.2"}).epoch
    assert holdout == pytest.approx(2 * macs * (3 * 320 + 80) / (GFLOPS_PER_PROCESS * 1e9))
    # the limits cut the split's own images, after the holdout or fold is taken (as select_images does)
    cifar = with_defaults({"model": "lenet", "dataset": "cifar10", "image_size": 32, "validation": "holdout:0.2"})
    assert image_counts(cifar) == (40000, 10000)
    assert image_counts({**cifar, "train_limit": 1000}) == (1000, 10000)
    assert image_counts({**cifar, "val_limit": 500}) == (40000, 500)
    assert image_counts({**cifar, "validation": "kfold:5", "train_limit": 1000, "train_fraction": 0.5}) == (500, 10000)
    # train_fraction = 0.25 trains on a quarter of the 400 and evaluates all 400
    assert work_units({**base, "train_fraction": 0.25}) == 3 * 100 + 400
    # model arguments change the network and so its cost: GoogLeNet's stride-2 stem quarters it
    googlenet = with_defaults({"model": "googlenet", "image_size": 64, "epochs": 1})
    assert timings.cost({**googlenet, "model_args": {"stem_stride": 2}}).epoch == \
        pytest.approx(timings.cost(googlenet).epoch / 4, rel=0.1)


def test_the_registries_of_the_output_root_are_what_this_machine_measured(tmp_path):
    for folder, host in (("quick", "here"), ("elsewhere", "a-cluster-node")):
        (tmp_path / folder).mkdir()
        registry = RunRegistry(tmp_path / folder / "runs.sqlite")
        registry.add("lenet-a", "lenet", LENET, 0)
        registry.mark_running("lenet-a")
        row = finished_row(LENET, train=45.0, host=host)
        registry.mark_done("lenet-a", {**row["metrics"], "final": {}, "best": {}})
        registry.db.execute("UPDATE runs SET started_at = 1000, finished_at = 1000 + 8 + 51 + 10")
        registry.record_sweep_timing(start_seconds=3.5, report_seconds=9.0, runs=3)
        registry.close()
    (tmp_path / "older").mkdir()  # a run of an older runner, which recorded no fixed part: its epochs count
    registry = RunRegistry(tmp_path / "older" / "runs.sqlite")
    registry.add("lenet-b", "lenet", LENET, 0)
    metrics = {k: v for k, v in finished_row(LENET, train=45.0)["metrics"].items()
               if k not in ("setup_seconds", "finish_seconds")}
    registry.mark_done("lenet-b", {**metrics, "final": {}, "best": {}})
    registry.close()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "runs.sqlite").write_text("not a registry")  # skipped, not fatal
    timings = MachineTimings.measured_in(tmp_path, host="here")
    assert timings.cost(LENET).seconds == pytest.approx(8 + 51 + 10)  # the other host's run is not here
    measured = timings.networks[next(iter(timings.networks))]
    assert len(measured.per_unit) == 2 and measured.head == [8.0]  # the older run: its epochs only
    assert timings.start_seconds() == 3.5 and timings.report_seconds(6) == pytest.approx(18.0)


def test_runs_are_laid_out_on_the_cores_as_the_loop_starts_them():
    assert makespan([], [(10, 1)] * 3, slots=2) == 20
    assert makespan([(5, 1)], [(10, 2)], slots=2) == 15  # a two-core run waits for both cores
    assert makespan([], [(10, 4)], slots=2) == 10  # one wider than every slot runs alone
    # the first run that fits starts: the one-core run fills the free core while the wide one waits
    assert makespan([(6, 1)], [(10, 2), (4, 1)], slots=2) == 16
    assert makespan([(7, 1)], [], slots=2) == 7 and makespan([], [], slots=2) == 0


def planned(models):
    return [PlannedRun(RunSpec("quick", {**LENET, "model": model, "seed": seed}), "new", "run")
            for seed, model in enumerate(models)]


def test_the_plan_is_the_sweeps_start_its_runs_on_its_cores_and_its_report():
    timings = MachineTimings()
    timings.add_finished(finished_row(LENET))  # 54 s a run
    timings.add_sweep(start_seconds=4.0, report_seconds=9.0, runs=3)
    progress = SweepProgress(parallel=2, timings=timings)
    line = progress.on_event("plan", planned=planned(["lenet"] * 3))
    assert progress.seconds_left() == pytest.approx(4 + 2 * 54 + 9)  # two runs one after the other
    assert line == "plan: 3 runs, 3 to train; about 2:01 at 2 at a time"


def test_a_running_sweep_learns_from_its_own_epochs_and_runs():
    progress = SweepProgress(parallel=1, timings=MachineTimings())  # nothing measured: the defaults
    first, second = planned(["lenet", "lenet"])
    progress.on_event("plan", planned=[first, second])
    assert progress.runs[second.spec.run_id].cost.source == "default"
    progress.on_event("started", planned=first)
    progress.on_event("epoch", planned=first, record={"epoch": 1, "val": {"acc": 0.5}, "seconds": 40.0})
    queued = progress.runs[second.spec.run_id].cost
    assert queued.source == "measured" and queued.epoch == pytest.approx(40.0)  # the first run's epoch
    # the running run: its two epochs to go at its own pace, then its tail (it has just finished one)
    assert progress.runs[first.spec.run_id].seconds_left(progress.runs[first.spec.run_id].last_epoch_at) == \
        pytest.approx(2 * 40 + TAIL_SECONDS)
    for epoch in (2, 3):
        progress.on_event("epoch", planned=first, record={"epoch": epoch, "val": {"acc": 0.5}, "seconds": 40.0})
    progress.on_event("finished", planned=first, status="done",
                      result={"epochs_run": 3, "final": {"acc": 0.5}, "train_seconds": 100.0,
                              "setup_seconds": 900.0, "finish_seconds": 1200.0})
    queued = progress.runs[second.spec.run_id].cost
    assert (queued.head, queued.epoch, queued.tail) == pytest.approx((900, 40, 1200))
    assert progress.seconds_left() == pytest.approx(900 + 3 * 40 + 1200 + progress.timings.report_seconds(2))


def test_a_running_sweeps_epoch_trained_under_load_counts_at_its_cpu_time_for_the_next_run():
    progress = SweepProgress(parallel=1, timings=MachineTimings())
    first, second = planned(["lenet", "lenet"])
    progress.on_event("plan", planned=[first, second])
    progress.on_event("started", planned=first)
    progress.on_event("epoch", planned=first, record={"epoch": 1, "val": {"acc": 0.5}, "seconds": 40.0,
                                                      "train_seconds": 36.0, "train_cpu_seconds": 20.0,
                                                      "eval_seconds": 4.0})
    assert progress.runs[second.spec.run_id].cost.epoch == pytest.approx(24.0)  # the next run: on a core of its own
    # the running run's own time left goes at its pace as it is now, the load included
    running = progress.runs[first.spec.run_id]
    assert running.seconds_left(running.last_epoch_at) == pytest.approx(2 * 40 + TAIL_SECONDS)


def test_robustness_is_scored_after_every_run_has_trained_and_the_first_of_a_size_makes_the_sets():
    timings = MachineTimings()
    timings.add_finished(finished_row(LENET))  # 54 s a run: head 8, 3 epochs of 12 s, tail 10
    timings.add_sweep(start_seconds=4.0, report_seconds=9.0, runs=3)
    robust = {**LENET, "robustness": True}
    runs = [PlannedRun(RunSpec("r", {**robust, "seed": seed, "image_size": size}), "new", "run", robustness_sets=sets)
            for seed, size, sets in ((0, 64, 75), (1, 64, 75), (2, 64, 0))]
    progress = SweepProgress(parallel=2, timings=timings)
    line = progress.on_event("plan", planned=runs)
    assert line.startswith("plan: 3 runs, 3 to train, 2 to score on corrupted images; about ")

    per_unit = 12 / work_units(LENET)
    evaluate = 8 + 76 * 400 * per_unit  # its worker's start, the clean images and 75 sets of 400, on dygraph
    making = 75 * 400 * 64 ** 2 / 1e6 * CORRUPTING_SECONDS_PER_MEGAPIXEL  # once for the size
    scores = {run_id: s.seconds for run_id, s in progress.scoring.items()}
    assert scores == pytest.approx({runs[0].spec.run_id: evaluate + making, runs[1].spec.run_id: evaluate})
    # the three runs train two at a time (108 s), then the two scorings side by side, then the report
    assert progress.seconds_left() == pytest.approx(4 + 2 * 54 + (evaluate + making) + 3 * 3)

    for p in runs:  # all trained: what is left is the scoring and the report
        progress.runs[p.spec.run_id].status, progress.runs[p.spec.run_id].started = "done", 1.0
    assert progress.seconds_left() == pytest.approx(evaluate + making + 9)
    progress.on_event("robustness", run_id=runs[0].spec.run_id, message="done: robustness.json", phase="ended")
    assert progress.seconds_left() == pytest.approx(evaluate + 9)
    progress.on_event("robustness", run_id=runs[1].spec.run_id, message="failed: …", phase="ended")
    assert progress.seconds_left() == 0.0


def test_the_plan_counts_the_corrupted_sets_a_run_still_lacks(tmp_path):
    sweep = SweepPaths(tmp_path / "r")
    config = {**LENET, "robustness": {"corruptions": ["fog", "contrast"], "severities": [1, 2, 3]}}
    spec = RunSpec("r", config)
    paths = sweep.run_paths(spec.run_id)
    assert sets_to_score(PlannedRun(spec, "new", "run"), paths) == 6
    paths.folder.mkdir(parents=True)
    write_json_atomic(paths.robustness, {"seed": 0, "sets": {"fog": {"1": {}, "3": {}}, "contrast": {"2": {}}}})
    assert sets_to_score(PlannedRun(spec, "done", "skip"), paths) == 3
    assert sets_to_score(PlannedRun(spec, "done", "retrain"), paths) == 6  # its files are set aside
    write_json_atomic(paths.robustness, {"seed": 1, "sets": {"fog": {"1": {}}}})  # scored under another seed
    assert sets_to_score(PlannedRun(spec, "done", "skip"), paths) == 6
    assert sets_to_score(PlannedRun(spec, "failed", "hold"), paths) == 0
    assert sets_to_score(PlannedRun(spec, "done", "skip", damaged="its predictions disagree"), paths) == 0
    assert sets_to_score(PlannedRun(RunSpec("r", LENET), "new", "run"), paths) == 0  # no robustness asked
    small = RunSpec("r", {**config, "image_size": 16})
    assert sets_to_score(PlannedRun(small, "new", "run"), sweep.run_paths(small.run_id)) == 0
