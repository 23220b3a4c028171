"""A scorer for the runner's Ray test: it prints (to check where worker output goes) and takes
a fixed time per call (to check the progress lines), reporting half-way through, and names the
threads it was built and called on. Its "score" is the prompt's length."""

import threading
import time

import pyarrow as pa


class SlowScorer:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.built_on = threading.current_thread().name

    def __call__(self, batch: pa.Table, progress=None) -> pa.Table:
        print(f"slow scorer: {batch.num_rows} rows on {threading.current_thread().name}, "
              f"built on {self.built_on}")
        time.sleep(self.seconds / 2)
        if progress:
            progress(1, 2)
        time.sleep(self.seconds / 2)
        lens = [len(p) if p else None for p in batch["prompt"].to_pylist()]
        return pa.table({"id": batch["id"], "aspect": batch["aspect"],
                         "gap_len": pa.array([float(x or 0) for x in lens]),
                         "_error": pa.array([None if x else "field 'prompt': empty text"
                                             for x in lens], pa.string())})
