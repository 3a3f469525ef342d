"""Evaluation through paddle's inference engine (oneDNN kernels) instead of the dynamic graph.

On a CPU, dynamic-graph paddle runs its own im2col + MKL kernels; the inference engine runs oneDNN's,
and fuses batch norm into the convolution before it. On trained checkpoints, one
thread (bench/eval_engine.py): 1.6-2.2x faster evaluation (AlexNet 23.6 -> 41.4 images/s,
ResNet-50 6.8 -> 10.7), class probabilities within 1e-5 and no prediction changed. The price is an
export of the network and a predictor build at every evaluation (0.3-2.3 s). Training never goes
through the engine.

paddle.Model.evaluate calls `network(x)` batch by batch; for the length of one evaluation the
network's `forward` is pointed at the predictor, so fit, its metrics, callbacks and the gathering
of outputs across processes all stay paddle's own.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import paddle
from paddle.callbacks import Callback

from runner.cpu import set_math_threads
from runner.run.tta import TTANetwork, TTAOnLastEpoch


@contextlib.contextmanager
def native_stderr_without(noise: str):
    """Drop the lines holding `noise` that paddle's C++ core writes to stderr (file descriptor 2)
    while the block runs; every other line passes through."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = b"".join(line for line in capture if noise.encode() not in line)
            if kept:
                os.write(2, kept)


def build_predictor(network: paddle.nn.Layer, image_size: int, threads: int, folder: Path, bfloat16: bool = False,
                    in_channels: int = 3):
    """A oneDNN predictor computing what `network` computes in eval mode, with its current weights."""
    from paddle import inference

    network.eval()
    spec = [paddle.static.InputSpec([None, in_channels, image_size, image_size], "float32", "image")]
    prefix = str(folder / "network")
    with native_stderr_without("not support input out tensor"):  # paddle's own note on tracing, every time
        paddle.jit.save(network, prefix, input_spec=spec)  # traces forward; `network` itself is left as it was
    graph = prefix + ".json" if Path(prefix + ".json").exists() else prefix + ".pdmodel"
    config = inference.Config(graph, prefix + ".pdiparams")
    config.disable_gpu()
    config.enable_onednn()
    if bfloat16:  # only bench/eval_engine.py asks for it: measured and rejected, it moves results (README)
        config.enable_onednn_bfloat16()
    config.set_cpu_math_library_num_threads(threads)
    config.disable_glog_info()
    return inference.create_predictor(config)


class PredictorForward:
    """Stands in for a network's forward: numpy in, the predictor's outputs back as tensors."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.input = predictor.get_input_handle(predictor.get_input_names()[0])
        self.outputs = [predictor.get_output_handle(name) for name in predictor.get_output_names()]

    def __call__(self, x):
        self.input.reshape(list(x.shape))
        self.input.copy_from_cpu(x.numpy())
        self.predictor.run()
        outs = [paddle.to_tensor(handle.copy_to_cpu()) for handle in self.outputs]
        return outs[0] if len(outs) == 1 else outs


class InferenceEvaluation(Callback):
    """Runs each of fit's evaluations on the inference engine. If the network cannot be exported
    (a layer the static graph does not support), it says so once and evaluates in the dynamic graph."""

    def __init__(self, image_size: int, threads: int, on_fallback=None, tta: TTAOnLastEpoch | None = None):
        super().__init__()
        self.image_size, self.threads, self.tta = image_size, threads, tta
        self.on_fallback = on_fallback or (lambda message: None)
        self.failed = False

    def on_eval_begin(self, logs=None):
        if self.failed:
            return
        network = self.model.network
        try:
            with tempfile.TemporaryDirectory(prefix="runner-eval-") as tmp:
                level = self.tta.level_now() if self.tta else 0
                exported = TTANetwork(network, level) if level else network
                predictor = build_predictor(exported, self.image_size, self.threads, Path(tmp))
        except Exception as err:  # noqa: BLE001 - any export failure has the same remedy
            self.failed = True
            first_line = (str(err).strip().splitlines() or [""])[0][:200]
            self.on_fallback(f"evaluating in the dynamic graph: the network could not be exported to paddle's "
                             f"inference engine ({type(err).__name__}: {first_line}); "
                             "set eval_engine = \"dygraph\" to skip the attempt")
            return
        # an instance attribute shadows the class's forward; Layer.__call__ looks it up per call
        object.__setattr__(network, "forward", PredictorForward(predictor))

    def on_eval_end(self, logs=None):
        self.model.network.__dict__.pop("forward", None)
        # The predictor re-configures the math library's threads for itself; left so, training with
        # threads = 2 ran 1.5x slower afterwards and summed in another order (other losses).
        set_math_threads(self.threads)
