"""Evaluation through paddle's inference engine: training untouched, evaluation alike, a clear
fallback when a network cannot be exported."""
import numpy as np
import paddle
import pytest

from conftest import DATA_ROOT, TINY, write_toml
from runner.config import load_experiment
from runner.store.layout import SweepLayout
from runner.models import register_model
from runner.run.train import train_run


def run(tmp_path, monkeypatch, model: str, engine: str, notes: list | None = None, threads: int = 1):
    monkeypatch.setenv("RUNNER_OUTPUT_ROOT", str(tmp_path / engine))
    text = (TINY.format(name="engines", epochs=3) +
            f'[[runs]]\nmodel = "{model}"\neval_engine = "{engine}"\nthreads = {threads}\n')
    experiment = load_experiment(write_toml(tmp_path, text, f"{engine}.toml"), ["val_limit=48"])
    spec = experiment.runs[0]
    layout = SweepLayout.for_experiment(experiment.name).run(spec.run_id)

    def report(event, **details):
        if event == "note" and notes is not None:
            notes.append(details["message"])

    result = train_run(spec, layout, DATA_ROOT, tmp_path / "cache", report)
    with np.load(layout.predictions) as z:
        return result, z["final"]


# googlenet: three outputs while training, one in eval mode; resnet18: batch norm, which the
# engine folds into the convolutions; two math threads: the engine resets the math library's
# threading, which training must get back (or it runs slower and sums in another order)
@pytest.mark.parametrize("model,threads", [("googlenet", 1), ("paddle.vision/resnet18", 2)])
def test_inference_engine_leaves_training_alone_and_evaluates_alike(tmp_path, monkeypatch, model, threads):
    dygraph, dygraph_probs = run(tmp_path, monkeypatch, model, "dygraph", threads=threads)
    engine, engine_probs = run(tmp_path, monkeypatch, model, "inference", threads=threads)
    # training never goes through the engine, so it is the same to the last bit
    assert [h["train"] for h in engine["history"]] == [h["train"] for h in dygraph["history"]]
    assert engine_probs.shape == dygraph_probs.shape == (48, 2)
    np.testing.assert_allclose(engine_probs, dygraph_probs, atol=2e-3)
    for ours, theirs in zip(engine["history"], dygraph["history"]):
        assert ours["val"]["loss"] == pytest.approx(theirs["val"]["loss"], abs=2e-3)
    flips = (engine_probs.argmax(1) != dygraph_probs.argmax(1)).sum()
    assert flips <= 1  # only an image sitting on the decision boundary may change side


class NotExportable(paddle.nn.Layer):
    """Stands for a network with an operation that exists only in the dynamic graph (a custom op,
    a numpy round trip): tracing it into a static graph fails."""

    def __init__(self, num_classes: int = 2, image_size: int = 32):
        super().__init__()
        self.fc = paddle.nn.Linear(3 * image_size * image_size, num_classes)

    def forward(self, x):
        if not paddle.in_dynamic_mode():
            raise NotImplementedError()  # no message: the note must still be whole
        return self.fc(paddle.flatten(x, 1))


@register_model("test/not-exportable", summary="a network the inference engine cannot take")
def not_exportable(num_classes: int = 2, image_size: int = 32, **kwargs):
    return NotExportable(num_classes, image_size)


def test_a_network_that_cannot_be_exported_is_evaluated_in_the_dynamic_graph(tmp_path, monkeypatch):
    notes = []
    engine, engine_probs = run(tmp_path, monkeypatch, "test/not-exportable", "inference", notes)
    dygraph, dygraph_probs = run(tmp_path, monkeypatch, "test/not-exportable", "dygraph")
    fallback = [n for n in notes if "evaluating in the dynamic graph" in n]
    assert len(fallback) == 1 and "could not be exported" in fallback[0] and 'eval_engine = "dygraph"' in fallback[0]
    # its cost to run cannot be measured on the inference engine either, nor its Grad-CAM (it has no
    # image-shaped stage): each said once, and the run is not failed for it
    others = sorted(n.split(" not measured")[0] for n in notes if n not in fallback)
    assert others == ["Grad-CAM", "cost to run"]
    assert engine.get("latency_ms") is None
    assert [h["val"] for h in engine["history"]] == [h["val"] for h in dygraph["history"]]
    np.testing.assert_array_equal(engine_probs, dygraph_probs)
