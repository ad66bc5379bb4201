"""The training loop: pre-training with pixel losses, then adversarial training, with
TensorBoard logs, validation against bicubic, checkpoints with exact resume, and export.

A run folder holds ``config.yaml`` (the resolved configuration), ``summary.txt``,
``scaling.json`` (how values are scaled for the network, fixed at the first start),
``checkpoints/``, ``logs/`` (TensorBoard) and, at the end, ``model/`` (the exported
SavedModel). Running again on the same folder resumes from the last checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xsr4rs.exceptions import ModelError
from xsr4rs.training import config as config_mod
from xsr4rs.training.config import ConfigError, TrainConfig


@dataclass
class TrainResult:
    """What a run left: its folder, last step, exported model and last validation."""

    run_dir: Path
    step: int
    model_path: Path | None
    interrupted: bool = False
    validation: dict[str, float] = field(default_factory=dict)
    skipped_patches: int = 0
    terminated: bool = False  # by SIGTERM (the CLI turns it into an interruption)


def train(
    config: TrainConfig | dict | str | os.PathLike[str],
    *,
    progress: bool = True,
    stop_after: int | None = None,
    export_only: bool = False,
) -> TrainResult:
    """Train a generator as ``config`` says and export it to ``RUN_DIR/model``.

    ``config`` is a `TrainConfig`, a nested dict of sections or a YAML/TOML path. When
    the run folder has checkpoints the run resumes from the last one (the configuration
    must then be the same, except the keys in `xsr4rs.training.config.RESUMABLE`).
    ``stop_after`` ends the process's work after that many steps (with a checkpoint),
    as an interruption would. ``export_only`` trains nothing: it exports the last
    checkpoint of the run to ``RUN_DIR/model`` (on demand, e.g. during a long run).
    """
    if isinstance(config, dict):
        cfg = config_mod.from_dict(config)
    elif isinstance(config, TrainConfig):
        cfg = config_mod.from_dict(config.to_dict())  # validated again
    else:
        cfg = config_mod.load(config)
    run = _Run(cfg, progress=progress)
    if export_only:
        return run.export_checkpoint()
    return run.run(stop_after)


# ---------------------------------------------------------------------------------------------


class _Run:
    def __init__(self, cfg: TrainConfig, progress: bool) -> None:
        from xsr4rs._tf import import_tf

        self.cfg, self.progress = cfg, progress
        self._shown = 0.0  # when the progress line was last written
        self.tf = tf = import_tf()
        import keras

        self.keras = keras
        self.dir = Path(cfg.run.out)
        self.ckpt_dir, self.log_dir = self.dir / "checkpoints", self.dir / "logs"
        self._check_resume()
        self.dir.mkdir(parents=True, exist_ok=True)
        config_mod.dump(cfg, self.dir / "config.yaml")
        if cfg.run.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(cfg.data.seed)

        from xsr4rs.training.sampler import PatchSampler, cache_decision, make_sources

        d = cfg.data
        sources = make_sources(
            pairs=[(p["lr"], p["hr"]) for p in d.pairs],
            images=d.images,
            scale=d.scale,
            lr_bands=d.lr_bands,
            hr_bands=d.hr_bands,
            nodata=d.nodata,
        )
        self.cached = cache_decision(d.cache, sources)
        self.sampler = PatchSampler(
            sources,
            patch=d.patch,
            batch_size=d.batch_size,
            seed=d.seed,
            sampling=d.sampling,
            max_nodata=d.max_nodata,
            val_fraction=d.val_fraction,
            val_block=d.val_block,
            max_val_blocks=d.max_val_blocks,
            cache=self.cached,
            flips=d.flips,
            gain=tuple(d.gain) if d.gain else None,
        )
        self.scale, self.bands = self.sampler.scale, self.sampler.bands
        self.band_names = self._band_names(sources)
        self.scaling = self._scaling()
        self.sampler.fill = np.asarray(self.scaling["fill"], np.float32)
        self.offset = tf.constant(self.scaling["offset"], tf.float32)
        self.factor = tf.constant(self.scaling["factor"], tf.float32)
        self.validation_set = self.sampler.validation()
        self.strategy = self._strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        if d.batch_size % self.replicas:
            raise ConfigError(
                f"data.batch_size {d.batch_size} must be a multiple of the {self.replicas} "
                "devices training in parallel"
            )
        self._build()

    # -- set-up ---------------------------------------------------------------------------------
    def _check_resume(self) -> None:
        saved = self.dir / "config.yaml"
        if not self._resuming() or not saved.is_file():
            return
        old = config_mod.load(saved).flat()
        new = self.cfg.flat()
        diff = [k for k in new if k not in config_mod.RESUMABLE and old.get(k) != new[k]]
        if diff:
            changes = "; ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in diff)
            raise ConfigError(
                f"{self.dir} holds checkpoints of a run with another configuration ({changes}): "
                "resume with the same configuration, or give a new run.out (--out)"
            )

    def _band_names(self, sources: list) -> list[str]:
        names = self.cfg.data.band_names
        if names is not None:
            if len(names) != self.bands:
                raise ConfigError(
                    f"data.band_names names {len(names)} bands, the data has {self.bands}"
                )
            return [str(n) for n in names]
        found = sources[0].hr.attrs.get("long_name")
        if isinstance(found, list | tuple) and len(found) == self.bands:
            return [str(n) for n in found]
        return [f"band_{i + 1}" for i in range(self.bands)]

    def _resuming(self) -> bool:
        from xsr4rs.training.checkpoints import list_checkpoints

        return bool(list_checkpoints(self.ckpt_dir))

    def _scaling(self) -> dict[str, list[float]]:
        """Offset and factor of ``(x - offset) / factor``, fill values and the PSNR range,
        computed at the first start and read back when the run resumes from a checkpoint
        (a folder left without checkpoints gets them computed again, from this config)."""
        path = self.dir / "scaling.json"
        if path.is_file() and self._resuming():
            return json.loads(path.read_text())
        m = self.cfg.model
        if m.init_from:
            prov = self._init_metadata().provenance
            scaling = dict(prov["scaling"])
        else:
            low, median, high = self.sampler.statistics()
            if m.scaling == "fixed":
                offset, factor = (self._per_band(k) for k in ("offset", "factor"))
            else:
                offset, factor = low, np.maximum(high - low, 1e-6)
            scaling = {
                "offset": [float(v) for v in offset],
                "factor": [float(v) for v in factor],
                "fill": [float(v) for v in median],
                "low": [float(v) for v in low],
                "high": [float(v) for v in high],
            }
        if any(len(v) != self.bands for v in scaling.values()):
            raise ConfigError(
                f"model.init_from: its scaling has other than {self.bands} bands: "
                "fine-tune a model of the same bands"
            )
        path.write_text(json.dumps(scaling, indent=2))
        return scaling

    def _per_band(self, key: str) -> np.ndarray:
        """``model.offset`` or ``model.factor`` as one value per band."""
        values = np.atleast_1d(np.asarray(getattr(self.cfg.model, key), float))
        if len(values) not in (1, self.bands):
            raise ConfigError(
                f"model.{key} has {len(values)} values: give 1 or {self.bands} (one per band)"
            )
        return np.broadcast_to(values, (self.bands,))

    def _strategy(self) -> Any:
        tf = self.tf
        mode = self.cfg.run.distribute
        gpus = tf.config.list_logical_devices("GPU")
        if mode == "none" or (mode == "auto" and len(gpus) < 2):
            return tf.distribute.get_strategy()
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)

    def _arch_kwargs(self) -> dict[str, int]:
        m = self.cfg.model
        return {k: v for k, v in (("filters", m.filters), ("blocks", m.blocks)) if v is not None}

    def _init_metadata(self) -> Any:
        from xsr4rs.model import load_model

        meta = load_model(self.cfg.model.init_from).metadata
        train = meta.provenance.get("training")
        if not train or "scaling" not in meta.provenance:
            raise ModelError(
                f"model.init_from: {self.cfg.model.init_from} was not exported by the xsr4rs "
                "trainer (its metadata has no training record), so it cannot be fine-tuned; "
                "SavedModels of other tools, SR4RS's included, are not (docs/from-sr4rs.md "
                "says why)"
            )
        return meta

    def _build(self) -> None:
        from xsr4rs.training.archs import ARCHITECTURES, build_discriminator
        from xsr4rs.training.losses import VGGFeatures

        tf, keras, cfg = self.tf, self.keras, self.cfg
        arch = ARCHITECTURES[cfg.model.arch]
        self.arch = arch
        o = cfg.optim

        def optimizer(rate: float) -> Any:
            schedule = keras.optimizers.schedules.ExponentialDecay(
                rate, o.decay_steps, o.decay, staircase=True
            )
            return keras.optimizers.Adam(schedule, beta_1=o.beta1, beta_2=o.beta2)

        with self.strategy.scope():
            self.gen = arch.build(self.bands, **self._arch_kwargs())
            self.ema = arch.build(self.bands, **self._arch_kwargs()) if o.ema > 0 else None
            self.gan = cfg.loss.gan > 0
            self.disc = (
                build_discriminator(self.bands, filters=cfg.model.disc_filters)
                if self.gan
                else None
            )
            self.g_opt = optimizer(o.learning_rate)
            self.g_opt.build(self.gen.trainable_variables)
            self.d_opt = None
            if self.disc is not None:
                self.d_opt = optimizer(o.disc_learning_rate or o.learning_rate)
                self.d_opt.build(self.disc.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.vgg = (
            VGGFeatures(cfg.loss.vgg_weights, cfg.loss.vgg_layers) if cfg.loss.vgg > 0 else None
        )
        parts: dict[str, Any] = {"generator": self.gen, "g_opt": self.g_opt, "step": self.step}
        if self.ema is not None:
            parts["ema"] = self.ema
        if self.disc is not None:
            parts.update(discriminator=self.disc, d_opt=self.d_opt)
        self.ckpt = tf.train.Checkpoint(**parts)
        from xsr4rs.training.checkpoints import restore_newest_intact

        restored = restore_newest_intact(self.ckpt, self.ckpt_dir)
        self.manager = tf.train.CheckpointManager(
            self.ckpt, str(self.ckpt_dir), max_to_keep=cfg.run.keep_checkpoints
        )
        if restored is not None:
            self.resumed_from = int(self.step.numpy())
        else:
            self.resumed_from = None
            if cfg.model.init_from:
                self._load_exported_weights()
            if self.ema is not None:
                self.ema.set_weights(self.gen.get_weights())
        # the (EMA) generator between the scalings: validated and previewed; the export
        # carries the same in its inference form (`_exported`)
        self.product = self._wrapped(self.ema if self.ema is not None else self.gen)

    def _wrapped(self, generator: Any) -> Any:
        from xsr4rs.training.archs import wrap_for_export

        bound = self.cfg.model.bound
        return wrap_for_export(
            generator,
            self.scaling["offset"],
            self.scaling["factor"],
            bound=tuple(bound) if bound else None,
            factor=self.scale,
        )

    def _exported(self) -> Any:
        """The product in the form an export carries: same weights and outputs, less
        memory per call (`archs.for_inference`)."""
        from xsr4rs.training.archs import for_inference

        generator = self.ema if self.ema is not None else self.gen
        lean = for_inference(generator, self.cfg.model.arch, **self._arch_kwargs())
        return self.product if lean is generator else self._wrapped(lean)

    def _load_exported_weights(self) -> None:
        meta = self._init_metadata()
        train = meta.provenance["training"]
        mine = {"arch": self.cfg.model.arch, **self._arch_kwargs()}
        theirs = {k: train.get(k) for k in mine}
        if theirs != mine or meta.scale != self.scale or meta.n_input_bands != self.bands:
            raise ConfigError(
                f"model.init_from: {self.cfg.model.init_from} is {train.get('arch')} "
                f"(filters {train.get('filters')}, blocks {train.get('blocks')}), x{meta.scale} on "
                f"{meta.n_input_bands} bands; this run builds {mine}, x{self.scale} on "
                f"{self.bands} bands: set model.arch/filters/blocks to match"
            )
        # the export archive keeps the wrapped generator's variables in its weights' order
        loaded = self.tf.saved_model.load(self.cfg.model.init_from)
        found = list(getattr(loaded, "variables", []))
        shapes = [tuple(v.shape) for v in found]
        if shapes != [tuple(w.shape) for w in self.gen.weights]:
            raise ModelError(
                f"model.init_from: the weights of {self.cfg.model.init_from} do not match the "
                f"{self.cfg.model.arch} generator of this run ({len(found)} arrays found, "
                f"{len(self.gen.weights)} expected)"
            )
        for w, v in zip(self.gen.weights, found, strict=True):
            w.assign(v.numpy())

    # -- steps ----------------------------------------------------------------------------------
    def _make_step(self, adversarial: bool) -> Any:
        from xsr4rs.training import losses as L

        tf, lw = self.tf, self.cfg.loss
        gen, disc, replicas = self.gen, self.disc, self.replicas

        def replica_step(lr: Any, hr: Any, mask: Any, step: Any) -> dict[str, Any]:
            ctx = tf.distribute.get_replica_context()
            with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
                lr_n = (lr - self.offset) / self.factor
                hr_n = (hr - self.offset) / self.factor
                outs = gen(lr_n, training=True)
                terms = {}
                terms["l1"], terms["l2"] = L.pixel_losses(outs, hr_n, mask)
                if lw.sam > 0 and self.bands > 1:
                    terms["sam"] = L.sam_loss(outs[-1], hr_n, mask, self.offset, self.factor)
                if lw.consistency > 0:
                    terms["consistency"] = L.consistency_loss(outs[-1], lr_n, mask, self.scale)
                if self.vgg is not None:
                    terms["vgg"] = self.vgg(outs[-1], hr_n, mask)
                d_loss = tf.constant(0.0)
                if adversarial:
                    real = L.pyramid(hr_n, len(outs))
                    masks = L.mask_pyramid(mask, len(outs))
                    fake = [
                        f * m + r * (1 - m) for f, r, m in zip(outs[::-1], real, masks, strict=True)
                    ]
                    d_real, d_fake = disc(real, training=True), disc(fake, training=True)
                    d_loss, terms["gan"] = L.gan_losses(
                        d_real, d_fake, lw.gan_type, lw.relativistic
                    )
                    if lw.gan_type == "wgan-gp":
                        seed = tf.stack([step, tf.cast(ctx.replica_id_in_sync_group, tf.int64)])
                        gp = L.gradient_penalty(
                            disc, real, [tf.stop_gradient(f) for f in fake], seed
                        )
                        d_loss += lw.gp_weight * gp + lw.drift * tf.reduce_mean(tf.square(d_real))
                total = tf.add_n([getattr(lw, k) * v for k, v in terms.items()])
                # gradients are summed over devices: each replica's share is its mean / replicas
                g_share, d_share = total / replicas, d_loss / replicas
            g_grads = g_tape.gradient(g_share, gen.trainable_variables)
            d_grads = d_tape.gradient(d_share, disc.trainable_variables) if adversarial else []
            return {**terms, "total": total, "discriminator": d_loss}, g_grads, d_grads

        def apply(optimizer: Any, grads: Any, variables: list) -> None:
            """Sum the replicas' gradients onto the variables' devices, then update them
            (in cross-replica context: one reduction per step, no per-device collectives
            whose order could differ between devices)."""
            strategy = self.strategy
            pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
            summed = strategy.extended.batch_reduce_to(
                tf.distribute.ReduceOp.SUM, [(g, v.value) for g, v in pairs]
            )
            optimizer.apply_gradients(zip(summed, [v for _, v in pairs], strict=True))

        @tf.function(reduce_retracing=True)
        def step_fn(batch: Any, step: Any) -> dict[str, Any]:
            out, g_grads, d_grads = self.strategy.run(replica_step, args=(*batch, step))
            # both updates use gradients taken at the same weights (simultaneous update)
            apply(self.g_opt, g_grads, gen.trainable_variables)
            if adversarial:
                apply(self.d_opt, d_grads, disc.trainable_variables)
            out = {k: self.strategy.reduce("MEAN", v, axis=None) for k, v in out.items()}
            if self.ema is not None:
                m = self.cfg.optim.ema
                for e, w in zip(self.ema.weights, gen.weights, strict=True):
                    e.assign(m * e + (1 - m) * w)
            self.step.assign_add(1)
            return out

        return step_fn

    # -- the loop -------------------------------------------------------------------------------
    def run(self, stop_after: int | None) -> TrainResult:
        tf, cfg = self.tf, self.cfg
        total, start = cfg.run.steps, int(self.step.numpy())
        self._summary(start)
        writer = tf.summary.create_file_writer(str(self.log_dir))
        steps = {False: self._make_step(False), True: self._make_step(True) if self.gan else None}
        end = total if stop_after is None else min(total, start + stop_after)
        data = self.strategy.experimental_distribute_dataset(
            self.sampler.dataset(start, end, cfg.data.workers)
        )
        validation: dict[str, float] = {}
        interrupted = terminated = False
        t0, step = time.perf_counter(), start
        try:
            with writer.as_default():
                if start == 0:  # the starting point of the curves
                    self._preview(0)
                    self._validate(0)
                for batch in data:
                    adversarial = self.gan and step >= cfg.run.pretrain_steps
                    out = steps[adversarial](batch, tf.constant(step, tf.int64))
                    step += 1
                    values = {k: float(v) for k, v in out.items()}
                    for k, v in values.items():
                        if k != "discriminator" or adversarial:
                            tf.summary.scalar(f"loss/{k}", v, step=step)
                    tf.summary.scalar("learning_rate", float(self.g_opt.learning_rate), step=step)
                    tf.summary.scalar("data/skipped_patches", self.sampler.skipped, step=step)
                    if step % cfg.run.preview_every == 0:
                        self._preview(step)
                    if step % cfg.run.steps_per_epoch == 0 or step == total:
                        validation = self._validate(step)
                    if (
                        step % cfg.run.checkpoint_every == 0
                        or step % cfg.run.steps_per_epoch == 0
                        or step == end
                    ):
                        self.manager.save(checkpoint_number=step)
                    self._progress(step, start, total, t0, values, validation)
        except KeyboardInterrupt as err:
            interrupted = True
            terminated = type(err).__name__ == "Terminated"
            self.manager.save(checkpoint_number=int(self.step.numpy()))
            self._say(
                f"\ninterrupted at step {int(self.step.numpy())}: checkpoint saved in "
                f"{self.ckpt_dir}; run the same command again to resume"
            )
        finally:
            writer.flush()
        if self.progress:
            sys.stderr.write("\n")
        step = int(self.step.numpy())
        model_path = None
        if step >= total and cfg.run.export and not interrupted:
            model_path = self.export(self.dir / "model", validation)
        return TrainResult(
            self.dir,
            step,
            model_path,
            interrupted or step < total,
            validation,
            self.sampler.skipped,
            terminated,
        )

    # -- monitoring -----------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def _summary(self, start: int) -> None:
        cfg, s = self.cfg, self.sampler
        mode = "Wald (LR = degraded HR)" if cfg.data.images else "paired LR/HR"
        n_params = sum(int(np.prod(w.shape)) for w in self.gen.trainable_weights)
        lines = [
            f"run folder     {self.dir}",
            f"data           {mode}, {len(s.sources)} source(s), x{self.scale}, "
            f"{self.bands} bands {self.band_names}",
            f"patches        {cfg.data.patch} LR px ({cfg.data.patch * self.scale} HR), "
            f"batch {cfg.data.batch_size}, {cfg.data.sampling} windows, "
            f"{'cached in memory' if self.cached else 'read lazily'}",
            f"validation     {len(self.validation_set)} blocks of {cfg.data.val_block} LR px "
            f"(never inside a training patch)",
            f"scaling        offset {np.round(self.scaling['offset'], 4).tolist()}, "
            f"factor {np.round(self.scaling['factor'], 4).tolist()}",
            f"generator      {cfg.model.arch} {self._arch_kwargs() or '(defaults)'}: "
            f"{n_params:,} weights, receptive radius {self._radius()} LR px",
            "losses         "
            + ", ".join(
                f"{k} {getattr(cfg.loss, k)}"
                for k in config_mod.LOSS_TERMS
                if getattr(cfg.loss, k) > 0
            )
            + (f" ({cfg.loss.gan_type})" if self.gan else ""),
            f"steps          {cfg.run.steps} ({cfg.run.pretrain_steps} pre-training), "
            f"{self.replicas} device(s)",
        ]
        if start:
            lines.append(f"resuming       from step {start} ({self.manager.latest_checkpoint})")
        text = "\n".join(lines)
        (self.dir / "summary.txt").write_text(text + "\n")
        self._say(text)

    def _radius(self) -> int:
        return self.arch.receptive_radius(**self._arch_kwargs())

    def _progress(self, step, start, total, t0, values, validation) -> None:  # noqa: ANN001
        now = time.perf_counter()
        if not self.progress or (now - self._shown < 0.5 and step < total):
            return
        self._shown = now
        rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
        eta = (total - step) / rate if rate > 0 else math.inf
        losses = "  ".join(
            f"{k} {values[k]:.4g}"
            for k in ("total", "l1", "gan", "discriminator")
            if k in values and (k != "discriminator" or "gan" in values)
        )
        val = (
            f"  val PSNR {validation['psnr']:.2f} (bicubic {validation['psnr_bicubic']:.2f})"
            if validation
            else ""
        )
        eta_s = time.strftime("%H:%M:%S", time.gmtime(eta)) if math.isfinite(eta) else "--"
        sys.stderr.write(
            f"\rstep {step}/{total}  {losses}{val}  {rate:.2f} steps/s  ETA {eta_s}   "
        )
        sys.stderr.flush()

    def _predict(self, lr: np.ndarray) -> np.ndarray:
        """The product in the data's units: what the exported model computes."""
        return np.asarray(self.product(lr, training=False))

    def _bicubic(self, lr: np.ndarray) -> np.ndarray:
        h, w = lr.shape[1] * self.scale, lr.shape[2] * self.scale
        return np.asarray(self.tf.image.resize(lr, (h, w), method="bicubic"))

    def _validate(self, step: int) -> dict[str, float]:
        """PSNR, SSIM, SAM and L1 of the model and of bicubic on the validation blocks."""
        from xsr4rs import metrics

        tf = self.tf
        if not self.validation_set:
            return {}
        rng = float(np.max(self.scaling["high"]) - np.min(self.scaling["low"]))
        b = 4 * self.scale
        acc: dict[str, list[float]] = {}
        for batch in self.validation_set:
            hr = np.moveaxis(batch.hr[0], -1, 0)[:, b:-b, b:-b]
            mask = batch.mask[0, b:-b, b:-b, 0] > 0
            if not mask.any():
                continue
            for name, est in (("", self._predict(batch.lr)), ("_bicubic", self._bicubic(batch.lr))):
                e = np.moveaxis(est[0], -1, 0)[:, b:-b, b:-b]
                acc.setdefault("psnr" + name, []).append(
                    float(metrics.psnr(hr, e, data_range=rng, mask=mask).mean())
                )
                acc.setdefault("ssim" + name, []).append(
                    float(metrics.ssim(hr, e, data_range=rng, mask=mask).mean())
                )
                if self.bands > 1:
                    acc.setdefault("sam" + name, []).append(metrics.sam(hr, e, mask=mask))
                factor = np.asarray(self.scaling["factor"], np.float32)
                l1 = np.abs(hr - e)[:, mask] / factor[:, None]
                acc.setdefault("l1" + name, []).append(float(l1.mean()))
        result = {k: float(np.mean(v)) for k, v in acc.items()}
        for k, v in result.items():
            tf.summary.scalar(f"validation/{k}", v, step=step)
        result["data_range"] = rng
        return result

    def _preview(self, step: int) -> None:
        """LR, output, HR and bicubic of the first validation block, one common stretch."""
        from xsr4rs.quicklook import stretch, stretch_limits

        if not self.validation_set:
            return
        batch = self.validation_set[0]
        s = self.scale
        hr = np.moveaxis(batch.hr[0], -1, 0)[:3]
        limits = stretch_limits(hr)
        lr_big = np.repeat(np.repeat(batch.lr, s, 1), s, 2)
        images = {
            "lr": lr_big,
            "output": self._predict(batch.lr),
            "hr": batch.hr,
            "bicubic": self._bicubic(batch.lr),
        }
        for name, img in images.items():
            rgb = stretch(np.moveaxis(img[0], -1, 0)[:3], limits=limits)
            rgb = np.moveaxis(rgb if rgb.shape[0] == 3 else np.repeat(rgb[:1], 3, 0), 0, -1)
            self.tf.summary.image(f"preview/{name}", rgb[None], step=step)

    def export_checkpoint(self) -> TrainResult:
        """Export the last checkpoint, with validation scores computed now."""
        from xsr4rs.exceptions import InputError

        if self.resumed_from is None:
            raise InputError(f"{self.ckpt_dir} holds no checkpoint to export: train first")
        validation = self._validate(self.resumed_from)
        path = self.export(self.dir / "model", validation)
        self._say(f"exported step {self.resumed_from} to {path}")
        return TrainResult(self.dir, self.resumed_from, path, False, validation)

    # -- export ---------------------------------------------------------------------------------
    def export(self, path: Path, validation: dict[str, float] | None = None) -> Path:
        """Export the (EMA) generator with its scaling and full metadata to ``path``."""
        from xsr4rs.model.export import export_model

        cfg = self.cfg
        sources = [s.name for s in self.sampler.sources]
        export_model(
            self._exported(),
            path,
            scale=self.scale,
            bands=self.band_names,
            units=cfg.data.units,
            scale_factor=cfg.data.scale_factor,
            add_offset=cfg.data.add_offset,
            nodata=cfg.data.nodata,
            bound=tuple(cfg.model.bound) if cfg.model.bound else None,
            value_range=(float(np.min(self.scaling["low"])), float(np.max(self.scaling["high"]))),
            halo=self._radius(),
            fill_values=self.scaling["fill"],
            name=cfg.run.name or f"{cfg.model.arch}-x{self.scale}",
            description=cfg.run.description,
            provenance={
                "training": {
                    "arch": cfg.model.arch,
                    **self._arch_kwargs(),
                    "mode": "wald" if cfg.data.images else "paired",
                    "data": sources,
                    "steps": int(self.step.numpy()),
                    "losses": {k: getattr(cfg.loss, k) for k in config_mod.LOSS_TERMS},
                    "gan_type": cfg.loss.gan_type if self.gan else None,
                    "ema": cfg.optim.ema,
                    "validation": validation or {},
                    "config": cfg.plain(),
                },
                "scaling": self.scaling,
            },
            overwrite=True,
        )
        return path


__all__ = ["TrainResult", "train"]
