"""Masked event modeling with Accelerate: ``treasure pretrain`` and ``scripts/pretrain.py``.

Runs unchanged on one CPU, one GPU or under ``accelerate launch`` on several GPUs and nodes
(data parallel; ``--mixed-precision bf16``; ``--gradient-accumulation-steps``). Every
``--save-steps`` the full state (model, optimizer, scheduler, random generators, position in the
data) is written in safetensors + JSON to ``OUT/checkpoints/step-N`` (:mod:`.checkpoint`; no
pickle); ``--resume`` loads the latest and skips
the batches already seen, so an interrupted run ends with the weights of an uninterrupted one.
The shuffling order is a function of (seed, epoch); masks and dropout are drawn after seeding
torch with (seed, batch number, process), so they too repeat after a resume.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..data.atomic import write_json
from ..errors import ArgumentError
from .arguments import PretrainArguments
from .checkpoint import CHECKPOINTS, checkpoints, load_checkpoint, save_checkpoint
from .common import (
    available_trackers,
    check_compatible,
    check_output,
    claim_output,
    dataset_description,
    load_tokenized,
    load_tokenizer,
    new_config,
)

logger = logging.getLogger(__name__)

OBJECTIVE_TEXT = {
    "codes": "the masked objects' token ids predicted, cross-entropy",
    "continuous": "the masked objects' kinematics regressed, MSE (continuous targets, MPMv2)",
    "codes+continuous": "token ids (cross-entropy) and kinematics (MSE) of the masked objects",
}
"""How the card and ``training_summary.json`` describe each ``--objective``."""


@dataclass
class PretrainResult:
    """What a pretraining run gives back (the model is saved to ``out`` once it is complete)."""

    out: Path
    model: Any
    history: list[dict[str, float]]
    steps: int


def pretrain(args: PretrainArguments, *, data: Any = None, tokenizer: Any = None) -> PretrainResult:
    """Pretrain and save the model, its tokenizer and ``training_summary.json`` to ``args.out``.
    ``data``: a ``DatasetDict`` in memory instead of ``args.data``; ``tokenizer``: the
    EventTokenizer instead of loading it."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, set_seed
    from torch.utils.data import DataLoader
    from transformers import get_scheduler

    from ..data.atomic import follow_umask
    from ..hf.batches import ArrowBatches
    from ..hf.collators import EventPaddingCollator, MaskedEventCollator
    from ..hf.remote_code import add_remote_code
    from ..modeling import EventTransformerForMaskedEventModeling

    out = Path(args.out)
    check_output(out, "pretrain", args)
    trackers = available_trackers(args.report_to)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        cpu=args.cpu,
        log_with=trackers or None,
        project_dir=str(out),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
    )
    set_seed(args.seed)
    tokenizer_path = args.tokenizer or "(given)"
    if tokenizer is None:
        tokenizer, tokenizer_path = load_tokenizer(args.data, args.tokenizer)
    with accelerator.main_process_first():
        ds = data if data is not None else load_tokenized(args.data)
    if args.split not in ds:
        raise ValueError(f"{args.data} has no split {args.split!r} (it has {sorted(ds)})")
    train = ds[args.split]
    if args.model:
        model = EventTransformerForMaskedEventModeling.from_pretrained(args.model)
        check_compatible(model, tokenizer, args.model, tokenizer_path)
        if model.config.masked_objective != args.objective:
            raise ArgumentError(
                "--objective",
                f"{args.model} was pretrained with the objective {model.config.masked_objective}, not {args.objective}",
            )
    else:
        model = EventTransformerForMaskedEventModeling(new_config(tokenizer, args, masked_objective=args.objective))
    continuous = args.objective != "codes"
    original_kinematics = continuous and "kinematics" in train.column_names
    decoded = model.config.input_kind == "ids+decoded"
    masker = MaskedEventCollator.from_config(
        model.config,
        mask_rate=args.mask_rate,
        mask_fraction=args.mask_fraction,
        random_fraction=args.random_fraction,
        kinematics_decoder=tokenizer.decode_kinematics if decoded and model.config.uses_kinematics else None,
        features_decoder=tokenizer.decode_features if decoded and model.config.variant == "hierarchical" else None,
    )
    padder = EventPaddingCollator(
        model.config.token_id_ranges,
        max_length=args.max_length,
        keep=(),
        sequence_columns={"kinematics": len(model.config.kinematics_names)} if original_kinematics else {},
    )
    # one Arrow table per batch into the collator's vectorised path (see benchmarks/dataloader.py)
    batches = ArrowBatches(train, ("input_ids", "token_type_ids", *(("kinematics",) if original_kinematics else ())))
    loader = DataLoader(
        batches,
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=padder,
        num_workers=args.num_workers,
        drop_last=len(train) >= args.batch_size,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = get_scheduler(
        "linear", optimizer, num_warmup_steps=args.warmup_steps, num_training_steps=args.max_steps
    )
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    if trackers:
        accelerator.init_trackers(
            "pretrain",
            config={k: v for k, v in dataclasses.asdict(args).items() if isinstance(v, (int, float, str, bool))},
        )

    step = micro = 0  # optimizer steps done, batches consumed
    if args.resume:
        found = checkpoints(out)
        if found:
            path = found[-1][1]
            state = load_checkpoint(accelerator, path, model=model, optimizer=optimizer, scheduler=scheduler)
            step, micro = int(state["step"]), int(state["micro_batches"])
            logger.info("resuming from %s (step %d)", path, step)
        else:
            logger.warning("--resume: no checkpoint in %s, starting afresh", out / CHECKPOINTS)
    batches_per_epoch = len(loader)
    if batches_per_epoch == 0:
        raise ValueError(f"the {args.split} split of {args.data} is empty")
    stop = min(args.max_steps, args.stop_at_step or args.max_steps)
    if accelerator.is_main_process:
        claim_output(out, "pretrain")
    model.train()
    history: list[dict[str, float]] = []
    bar = tqdm(
        total=stop,
        initial=step,
        desc="pretrain",
        unit="step",
        disable=not accelerator.is_local_main_process or not args.progress,
    )
    t0, events, running = time.perf_counter(), 0, []
    while step < stop:
        epoch, skip = divmod(micro, batches_per_epoch)
        loader.set_epoch(epoch)
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        for batch in epoch_loader:
            # masks and dropout depend on (seed, batch number, process) only: a resumed run repeats them
            torch.manual_seed(args.seed * 1_000_003 + micro * accelerator.num_processes + accelerator.process_index)
            if continuous:  # the targets: the objects' kinematics before masking
                batch["target_kinematics"] = (
                    batch.pop("kinematics")
                    if original_kinematics
                    else torch.as_tensor(tokenizer.decode_kinematics(batch["input_ids"].cpu()), dtype=torch.float32).to(
                        batch["input_ids"].device
                    )
                )
            batch = masker.mask(batch)
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            micro += 1
            events += batch["input_ids"].shape[0]
            running.append(loss.detach().float())
            if not accelerator.sync_gradients:
                continue
            step += 1
            bar.update(1)
            if step % args.logging_steps == 0 or step == stop:
                mean = accelerator.gather(torch.stack(running).mean()[None]).mean().item()
                record = {
                    "step": step,
                    "loss": mean,
                    "lr": scheduler.get_last_lr()[0],
                    "events_per_s": events * accelerator.num_processes / (time.perf_counter() - t0),
                }
                history.append(record)
                accelerator.log(record, step=step)
                logger.info("step %d: loss %.4f", step, mean)
                running = []
            if (args.save_steps and step % args.save_steps == 0) or step == stop:
                save_checkpoint(
                    accelerator,
                    out,
                    step,
                    model=model,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    micro_batches=micro,
                    limit=args.save_total_limit,
                )
            if step >= stop:
                break
    bar.close()
    if step >= args.max_steps and accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        add_remote_code(out)  # loads with trust_remote_code where treasure_hf is not installed
        write_json(
            out / "training_summary.json",
            default=str,
            obj={
                "task": "masked event modeling",
                "data": dataset_description(args.data, ds),
                "tokenizer": tokenizer_path,
                "args": {k: v for k, v in dataclasses.asdict(args).items() if not isinstance(v, dict)},
                "model_shape": dataclasses.asdict(args.shape),
                "history": history,
                "eval_results": [],
                "num_processes": accelerator.num_processes,
                "objective": args.objective,
                "procedure_text": (
                    f"Masked event modeling ({OBJECTIVE_TEXT[args.objective]}"
                    f"{', original continuous kinematics' if original_kinematics else ''}): "
                    f"{args.mask_rate:.0%} of the objects of each event selected, "
                    f"{args.mask_fraction:.0%} of them set to [MASK], {args.random_fraction:.0%} to random "
                    f"ids; {args.max_steps} steps of {args.batch_size} events x "
                    f"{args.gradient_accumulation_steps} accumulation x {accelerator.num_processes} "
                    f"processes, AdamW lr {args.lr}, {args.mixed_precision} precision."
                ),
            },
        )
        follow_umask(out)  # safetensors writes its files readable by their owner alone
    accelerator.wait_for_everyone()
    model = accelerator.unwrap_model(model).eval()
    accelerator.end_training()  # last: it destroys the process group
    return PretrainResult(out, model, history, step)
