"""head = "sigmoid": the course's one logit and binary cross-entropy, behind the runner's two-class interface."""
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from conftest import DATA_ROOT, TINY, write_toml
from runner.config import load_experiment
from runner.errors import ConfigError, RunnerError
from runner.store.layout import SweepLayout
from runner.models import SigmoidHead, build_network
from runner.run.objectives import ClassificationLoss
from runner.predict import predict
from runner.run.train import train_run


def test_two_logits_from_one_give_binary_cross_entropy_and_the_sigmoid():
    z = paddle.to_tensor([[-3.0], [-0.2], [0.0], [1.5], [4.0]])
    label = paddle.to_tensor([[0], [1], [1], [0], [1]])
    logits = SigmoidHead.two_logits(z)
    bce = F.binary_cross_entropy_with_logits(z, label.astype("float32"))
    # by hand: -log(1 - s) for label 0, -log(s) for label 1, averaged
    s = 1 / (1 + np.exp(-z.numpy()[:, 0]))
    by_hand = -np.mean([np.log(1 - s[0]), np.log(s[1]), np.log(s[2]), np.log(1 - s[3]), np.log(s[4])])
    assert float(ClassificationLoss()(logits, label)) == pytest.approx(by_hand, rel=1e-6)
    assert float(bce) == pytest.approx(by_hand, rel=1e-6)
    np.testing.assert_allclose(F.softmax(logits, axis=-1).numpy()[:, 1], s, rtol=1e-6)


def test_a_sigmoid_head_network_has_one_output_row_and_answers_two_logits():
    paddle.seed(0)
    network = build_network("alexnet", 2, 64, head="sigmoid")
    assert isinstance(network, SigmoidHead) and network.body.fc3.weight.shape == [4096, 1]
    network.eval()
    out = network(paddle.randn([3, 3, 64, 64]))
    assert out.shape == [3, 2] and not out.numpy()[:, 0].any()
    # GoogLeNet trains with its auxiliary heads: each gets the same two-logit form
    network = build_network("googlenet", 2, 64, head="sigmoid")
    network.train()
    outs = network(paddle.randn([2, 3, 64, 64]))
    assert len(outs) == 3 and all(o.shape == [2, 2] and not o.numpy()[:, 0].any() for o in outs)


def test_a_sigmoid_head_is_refused_for_many_classes_and_misspelled_heads(tmp_path):
    with pytest.raises(RunnerError, match="two-class"):
        build_network("lenet", 10, 32, head="sigmoid")
    path = write_toml(tmp_path, TINY.format(name="heads", epochs=1) + '[[runs]]\nmodel = "lenet"\nhead = "sigmod"\n')
    with pytest.raises(ConfigError, match="head = 'sigmod'; allowed: softmax, sigmoid"):
        load_experiment(path)


def test_the_default_head_keeps_the_run_ids_recorded_before_it_existed(tmp_path):
    text = TINY.format(name="heads", epochs=1) + '[[runs]]\nmodel = "lenet"\n'
    plain = load_experiment(write_toml(tmp_path, text, "a.toml")).runs[0]
    spelled = load_experiment(write_toml(tmp_path, text + 'head = "softmax"\n', "b.toml")).runs[0]
    sigmoid = load_experiment(write_toml(tmp_path, text + 'head = "sigmoid"\n', "c.toml")).runs[0]
    assert plain.run_id == spelled.run_id != sigmoid.run_id
    assert "sigmoid-head" in sigmoid.display_name


def test_a_sigmoid_head_run_trains_evaluates_on_the_engine_and_predicts(tmp_path, outputs):
    text = TINY.format(name="sigmoid", epochs=2) + '[[runs]]\nmodel = "alexnet"\nhead = "sigmoid"\n'
    path = write_toml(tmp_path, text, "sigmoid.toml")
    spec = load_experiment(path).runs[0]
    layout = SweepLayout.for_experiment("sigmoid").run(spec.run_id)
    notes = []
    result = train_run(spec, layout, DATA_ROOT, tmp_path / "cache",
                       lambda event, **details: notes.append(details) if event == "note" else None)
    assert notes == []  # no fallback: the head exports to the inference engine with the network
    assert result["epochs_run"] == 2 and 0.0 <= result["final"]["acc"] <= 1.0
    with np.load(layout.predictions) as z:
        final, best = z["final"], z["best"]
    assert final.shape == (32, 2)
    np.testing.assert_allclose(final.sum(1), 1.0, rtol=1e-5)
    # the checkpoint is built again as a sigmoid-head network and predicts what evaluation saw
    # (V0001 is the first of the 32 evenly spaced validation images; predict uses the best epoch)
    image = DATA_ROOT / "ichallenge-pm" / "PALM-Validation400" / "V0001.jpg"
    [answer] = predict(layout.checkpoints, [image])
    assert list(answer["probabilities"].values()) == pytest.approx(best[0].tolist(), abs=1e-3)
