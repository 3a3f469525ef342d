"""Evaluation through paddle's inference engine (oneDNN kernels) instead of the dynamic graph.

On a CPU, dynamic-graph paddle runs its own im2col + MKL kernels; the inference engine runs oneDNN's,
and fuses batch norm into the convolution before it: faster evaluation with the same predictions, at
the price of an export and a predictor build at every evaluation (bench/eval_engine.py measures
both; the numbers are in docs/performance.md). Training never goes through the engine.

paddle.Model.evaluate calls `network(x)` batch by batch; for the length of one evaluation the
callback runner.run.callbacks.InferenceEvaluation points the network's `forward` at a predictor
built here, so fit, its metrics, callbacks and the gathering of outputs across processes all stay
paddle's own.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import paddle


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
    if bfloat16:  # only bench/eval_engine.py asks for it: measured and rejected, it moves results (docs/performance.md)
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
