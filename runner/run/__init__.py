"""One run, in its worker process: training through paddle.Model, its callbacks and records, and the
measurements after it (cost to run, Grad-CAM)."""
