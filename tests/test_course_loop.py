"""The runner's training is the course's hand-written loop: the same network, fed the same batches
with the same dropout draws, reaches the same losses to the last bit through paddle.Model.fit and
every callback the runner adds. What differs between a runner run and ../shared/bench/seed_recipe.py
is then only which random numbers are drawn (initial weights, batch order, dropout masks)."""
import numpy as np
import paddle
import paddle.nn.functional as F

from conftest import DATA_ROOT, write_toml
from runner.run.callbacks import EpochSeeder, seed_everything
from runner.config import load_experiment
from runner.run.conv_bias import use_matmul_bias
from runner.data import load_splits
from runner.run.distributed import ShardedBatchSampler
from runner.store.layout import SweepLayout
from runner.models import build_network
from runner.run.train import train_run

EPOCHS, BATCH, IMAGES = 2, 10, 40


def course_loop(config: dict, cache) -> list[float]:
    """train_pm as the course writes it: forward, loss, backward, step, clear, batch after batch."""
    seed_everything(config["seed"])
    splits = load_splits(config["dataset"], config["image_size"], DATA_ROOT, None, "official", IMAGES, 20, cache)
    network = build_network(config["model"], 2, config["image_size"], **config["model_args"])
    use_matmul_bias(network)  # the runner's CPU bias kernel: same sums, gradient summed in its own order
    optimizer = paddle.optimizer.Adam(learning_rate=config["optimizer"]["learning_rate"],
                                      parameters=network.parameters())
    # the runner's draws, from the runner's own pieces: generators reseeded per epoch, batches cut
    # from a permutation of (seed, epoch)
    sampler = ShardedBatchSampler(IMAGES, BATCH, shuffle=True, seed=config["seed"])
    seeder = EpochSeeder(config["seed"], samplers=[sampler])
    losses = []
    for epoch in range(EPOCHS):
        network.train()
        seeder.on_epoch_begin(epoch)
        for indices in sampler:
            batch = [splits.train[i] for i in indices]
            x = paddle.to_tensor(np.stack([image for image, _ in batch]))
            y = paddle.to_tensor(np.array([[int(np.asarray(label).reshape(-1)[0])] for _, label in batch]))
            loss = F.cross_entropy(network(x), y)
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            losses.append(float(loss))
    return losses


def test_fit_trains_to_the_same_losses_as_the_course_loop(tmp_path, outputs):
    path = write_toml(tmp_path, f"""
        name = "course-loop"
        [defaults]
        dataset = "ichallenge-pm"
        image_size = 64
        epochs = {EPOCHS}
        batch_size = {BATCH}
        train_limit = {IMAGES}
        val_limit = 20
        seed = 3
        optimizer = {{ name = "adam", learning_rate = 0.001 }}
        [[runs]]
        model = "alexnet"
    """)
    spec = load_experiment(path).runs[0]
    layout = SweepLayout.for_experiment("course-loop").run(spec.run_id)
    runner_losses = []
    train_run(spec, layout, DATA_ROOT, tmp_path / "cache",
              lambda event, **d: runner_losses.append(d["loss"]) if event == "step" else None)
    assert len(runner_losses) == EPOCHS * IMAGES // BATCH
    assert runner_losses == course_loop(spec.config, tmp_path / "cache")
