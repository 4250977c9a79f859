"""Engine overhead: the trial engine's training pass vs a bare PyTorch loop, measured in one run.

Same model, data, optimizer, batch size and thread count; both loops are timed alternately after a
warm-up epoch, and the engine's full epoch (training pass + the training-set diagnostics pass +
val/test evaluation) is reported beside it. Prints ratios, not absolute claims:

    .venv/bin/python benchmarks/engine_overhead.py [CONFIG.yaml] [--set key=value ...] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from trainables.config import load_trial_config
from trainables.engine import MEAN, STD, Trainer, prepare_data


def raw_epoch(model, optimizer, images_u8, labels, batch_size, mean, std, gen) -> None:
    model.train()
    order = torch.randperm(len(images_u8), generator=gen)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        x = (images_u8[idx].permute(0, 3, 1, 2).float() / 255 - mean) / std
        loss = F.cross_entropy(model(x), labels[idx].long(), ignore_index=255)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", default="examples/synthetic.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = load_trial_config(args.config, args.overrides)
    trainer = Trainer(cfg, prepare_data(cfg))
    data = trainer.data
    from trainables.models import create_model

    raw_model = create_model(cfg.model, trainer.k)
    raw_opt = torch.optim.AdamW(raw_model.parameters(), lr=cfg.train.lr) if cfg.train.optimizer == "adamw" \
        else torch.optim.SGD(raw_model.parameters(), lr=cfg.train.lr, momentum=cfg.train.momentum)
    gen = torch.Generator().manual_seed(0)

    def time_raw() -> float:
        t = time.perf_counter()
        raw_epoch(raw_model, raw_opt, data.images["train"], data.noisy, cfg.train.batch_size, MEAN, STD, gen)
        return time.perf_counter() - t

    def time_engine_train() -> float:
        t = time.perf_counter()
        trainer.train_epoch(trainer.epoch, progress=False)
        return time.perf_counter() - t

    def time_engine_epoch() -> float:
        t = time.perf_counter()
        trainer.run_epoch()
        return time.perf_counter() - t

    time_raw(), time_engine_train()  # warm-up (allocator, oneDNN kernels)
    raw, eng, full = [], [], []
    for _ in range(args.repeats):
        raw.append(time_raw())
        eng.append(time_engine_train())
        full.append(time_engine_epoch())
    n = len(data.noisy)
    r, e, f = statistics.median(raw), statistics.median(eng), statistics.median(full)
    print(f"config {args.config} ({cfg.method.name}, {n} training images, threads {torch.get_num_threads()})")
    print(f"raw PyTorch loop     {n / r:7.1f} img/s")
    print(f"engine training pass {n / e:7.1f} img/s   ratio engine/raw time = {e / r:.3f}")
    print(f"engine full epoch    {n / f:7.1f} img/s   ratio full epoch/raw training = {f / r:.3f} "
          f"(adds the training-set diagnostics pass and val/test evaluation)")


if __name__ == "__main__":
    main()
