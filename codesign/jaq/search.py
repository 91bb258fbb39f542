"""JAQ's joint search of the network architecture, its per-channel weight bits and the accelerator: the run's
state (`SearchRun`: data, supernet, hardware candidates, budgets, checkpoint) and what its phases do.

The phases are named steps (`codesign.jaq.pipeline`, run by `codesign.steps.Flow`, each resumable from
``checkpoint.pt``, written atomically after every epoch and every phase):

1. ``warmup``: the supernet's shared weights in float, each step on the largest network and on a random one
   (the sandwich rule), so every subnet starts from usable weights (`SearchRun.warm_up`, through
   `codesign.quant.train.fit`).
2. ``search``: single-path differentiable search (`SearchRun.search`). Each step samples an architecture (hard
   Gumbel-softmax, `codesign.jaq.arch_logits`), runs it in the supernet's ``search`` mode (CSQ: the top
   ``csq_fraction`` channels by |gamma| carry the six weight-bit branches, mixed by Gumbel-softmax weights), and asks
   the hardware generation network (`codesign.jaq.hwgen`) for a distribution over the candidates. The loss is

       cross-entropy + w_lat E[cycles] / C_ref + w_energy E[energy] / E_ref
                     + w_area (E[PE LUTs] / A_ref + E[BRAMs] / B_ref) / 2
                     + 10 max(0, E[cycles] / max_cycles - 1)

   with the expectations from BatchTile over the sampled network and the hardware distribution
   (`codesign.jaq.search_cost`), the references being the largest network at 8 bits on the default hardware. One
   Adam optimizer trains the weights and LSQ steps, another the architecture, bit and generator logits, on the
   same batches (single-level, as JAQ's search does). Candidates over the LUT budget are masked out throughout:
   a hard budget, not a penalty.
3. ``derive`` (the end of each search): the most probable architecture and bits; the network is priced exactly on
   every candidate and the generator's choice is kept if it meets the budgets, else the cheapest candidate that
   does (the run says so); if none does, the run stops and reports the closest design instead of exporting one
   that violates them.
4. Baselines in the same run (`codesign.jaq.baselines`): the same search with the hardware fixed to the default
   configuration (``search_fixed_hw``), and random search with the same number of evaluated designs (``random``).
5. ``retrain``: each final network is extracted with its shared weights, fine-tuned in float briefly, then
   QAT-trained; the chosen design's network also at uniform 8-bit (w8a8) and uniform 4-bit weights (w4a8) on the
   same hardware. Accuracies are measured in integer mode, i.e. they are the exported integer models'.

Everything is seeded (data order per epoch, Gumbel noise from torch's generator, whose state the checkpoint keeps),
so a resumed run ends where an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from codesign.compiler.batchtile import Constants, HardwareBatch, load_constants
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.jaq.arch_logits import ArchLogits
from codesign.jaq.hwgen import HardwareGenerator, network_features
from codesign.jaq.hwspace import HardwareSpace, hardware_name
from codesign.jaq.search_cost import SearchCost, arch_layers, network_costs
from codesign.quant.datasets import DataSplit, ImageSet, load_digits
from codesign.quant.qmodel import QuantNet
from codesign.quant.quantizers import check_bits
from codesign.quant.supernet import DIGITS, ArchChoice, LayerBits, SuperNet, SupernetSpec, mean_weight_bits, sample_arch
from codesign.quant.train import FitState, accuracy, fit
from codesign.steps import Flow, Step

CHECKPOINT = "checkpoint.pt"
SEARCHES = ("search", "search_fixed_hw")      # the phases with a `Searcher`, in the order they run
# The settings the warm-up reads (with the data split, which the seed draws). Any other setting acts from the search
# on, so a checkpoint whose warm-up is finished can be rewound to the search's start when only those differ (new
# budgets, say): the warmed-up supernet and the random state at its end are the same as a fresh run's.
WARMUP_SETTINGS = frozenset({"seed", "warmup_epochs", "batch_size", "lr", "act_bits"})
BUDGET_PENALTY = 10.0
PROXY_QAT_EPOCHS = 1


class BudgetError(Exception):
    """No candidate design meets the hard budgets; ``closest`` describes the nearest one."""

    def __init__(self, message: str, closest: dict):
        super().__init__(message)
        self.closest = closest


@dataclass(frozen=True)
class SearchSettings:
    seed: int = 0
    warmup_epochs: int = 40
    search_epochs: int = 12
    retrain_fp_epochs: int = 5
    retrain_qat_epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    arch_lr: float = 0.05
    hw_lr: float = 0.005                # slower: the hardware distribution should follow the network, not lead it
    tau_start: float = 2.0
    tau_end: float = 0.3
    csq_fraction: float = 0.25
    csq_refresh: int = 10
    latency_weight: float = 1.5
    energy_weight: float = 0.2
    area_weight: float = 0.2
    max_luts: float | None = None       # hard budget on the PE array's LUTs (the PE table's estimate)
    max_cycles: float | None = None     # hard budget on the network's predicted cycles per batch
    latency: float = 20.0               # memory latency, cycles per burst
    batch: int = 32                     # images per accelerator run (`make verify` runs one such batch)
    act_bits: tuple[int, ...] = (8,)    # activation widths to search (the hardware runs all at its act_bits)
    baselines: bool = True
    device: str = "cpu"
    space: HardwareSpace = field(default_factory=HardwareSpace)

    def __post_init__(self) -> None:
        if not isinstance(self.batch, int) or not 1 <= self.batch <= 4096:
            raise InputError("batch", self.batch, "an integer from 1 to 4096 images")
        check_bits("act_bits", self.act_bits)
        for name in ("warmup_epochs", "search_epochs", "retrain_fp_epochs", "retrain_qat_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise InputError(name, value, "a non-negative integer")
        if self.search_epochs < 1:
            raise InputError("search_epochs", self.search_epochs, "at least 1")
        for name in ("lr", "arch_lr", "hw_lr", "tau_start", "tau_end", "batch_size"):
            if not getattr(self, name) > 0:
                raise InputError(name, getattr(self, name), "a positive number")
        if not 0 < self.csq_fraction <= 1:
            raise InputError("csq_fraction", self.csq_fraction, "a fraction in (0, 1]")
        for name in ("latency_weight", "energy_weight", "area_weight", "latency"):
            if getattr(self, name) < 0:
                raise InputError(name, getattr(self, name), "a non-negative number")
        for name in ("max_luts", "max_cycles"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(name, value, "a positive number (or none)")
        if self.device not in ("cpu", "cuda"):
            raise InputError("device", self.device, "'cpu' or 'cuda'")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise InputError("device", "cuda", "a machine where torch.cuda.is_available() (or --device cpu)")

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["space"] = self.space.to_dict()
        return data

    def fingerprint(self) -> str:
        """What a checkpoint must match to be resumed as it stands (the device may differ)."""
        return hashlib.sha256(json.dumps(self.resumable(), sort_keys=True).encode()).hexdigest()[:16]

    def resumable(self) -> dict:
        """The settings a checkpoint records and is compared by: all but the device."""
        return {k: v for k, v in self.to_dict().items() if k != "device"}

    def changes(self, saved: dict) -> dict[str, tuple]:
        """The settings that differ from a checkpoint's (``saved``, its `resumable`): name -> (then, now)."""
        saved, now = (json.loads(json.dumps(data)) for data in (saved, self.resumable()))     # tuples as lists
        return {k: (saved.get(k), now.get(k)) for k in sorted(set(now) | set(saved)) if saved.get(k) != now.get(k)}


@dataclass
class Searcher:
    """The trainable state of one search: the supernet, its architecture logits and the hardware generator."""

    net: SuperNet
    arch: ArchLogits
    gen: HardwareGenerator
    weights_opt: torch.optim.Optimizer
    arch_opt: torch.optim.Optimizer

    @classmethod
    def create(cls, net: SuperNet, candidates: int, settings: SearchSettings) -> Searcher:
        arch = ArchLogits(net.spec).to(settings.device)
        gen = HardwareGenerator(len(network_features(net, arch)), candidates).to(settings.device)
        logit_names = ("w_logits", "a_logits")
        logits = [p for n, p in net.named_parameters() if n.rsplit(".", 1)[-1] in logit_names]
        weights = [p for n, p in net.named_parameters() if n.rsplit(".", 1)[-1] not in logit_names]
        return cls(net, arch, gen, torch.optim.Adam(weights, lr=settings.lr * 0.3),
                   torch.optim.Adam([{"params": [*arch.parameters(), *logits]},
                                     {"params": list(gen.parameters()), "lr": settings.hw_lr}], lr=settings.arch_lr))

    def state_dict(self) -> dict:
        return {name: getattr(self, name).state_dict() for name in ("net", "arch", "gen", "weights_opt", "arch_opt")}

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            getattr(self, name).load_state_dict(value)


class SearchRun:
    """One `make search` run in ``out``: its state, checkpoints and results; ``steps`` (`codesign.jaq.pipeline`)
    are the phases `run` runs."""

    def __init__(self, settings: SearchSettings, out: str | Path, *, progress: bool = True,
                 data: DataSplit | None = None, spec: SupernetSpec = DIGITS, steps: Sequence[Step[SearchRun]] = ()):
        self.settings, self.out, self.progress = settings, Path(out), progress
        self.device = settings.device
        self.data = data or load_digits(seed=settings.seed)
        # The accelerator computes every activation at its act_bits: a narrower activation saves it nothing, so
        # the activation widths searched are the settings' (8 alone by default), not the spec's.
        self.spec = dataclasses.replace(spec, a_bits=settings.act_bits)
        self.constants: Constants = load_constants()
        self.configs = settings.space.candidates()
        self.hw = HardwareBatch.from_configs(self.configs, device=self.device)
        self.cost = SearchCost(self.hw, self.constants, latency=settings.latency, batch=settings.batch)
        self.state: dict = {"phase": "warmup", "epoch": 0, "history": {}, "results": {}}
        self._started, self._seconds_before = time.perf_counter(), 0.0      # wall seconds, summed over resumes
        torch.manual_seed(settings.seed)
        self.net = SuperNet(self.spec).to(self.device)
        self.searchers: dict[str, Searcher] = {}
        largest = [p.layer for p in arch_layers(self.net, ArchChoice.largest(self.spec), batch=settings.batch)]
        self.allowed = self._area_mask(largest)
        self.reference = self._reference(largest)
        self.flow = Flow(steps, self.state, checkpoint=self.checkpoint_path, dump=self._dump)
        self._warmup: dict | None = None         # the warm-up's training state while it runs (its checkpoints)
        self._warmed_rng: torch.Tensor | None = None     # torch's random state when the warm-up ended
        self.notes: list[str] = []               # what resuming did besides resuming (a rewind), for the user
        self._loaded = False

    # ---- budgets and references

    def _area_mask(self, largest: list) -> torch.Tensor:
        """The candidates within the LUT budget that the largest network fits."""
        luts = self.hw.t["area_luts"]
        allowed = torch.ones(len(self.configs), dtype=torch.bool, device=self.device)
        if self.settings.max_luts is not None:
            allowed &= luts <= self.settings.max_luts
        fits = network_costs(self.hw, largest, self.constants, latency=self.settings.latency)
        allowed &= fits["fits"].to(self.device)
        if not bool(allowed.any()):
            smallest = int(torch.argmin(luts))
            raise BudgetError(f"max_luts={self.settings.max_luts}: no hardware candidate fits (the smallest has "
                              f"{float(luts[smallest]):.0f} PE LUTs)",
                              {"hardware": self.configs[smallest].to_dict(), "area_luts": float(luts[smallest])})
        return allowed

    def _reference(self, largest: list) -> dict:
        """Normalizers of the cost terms: the largest network at 8 bits on the default hardware."""
        hw = HardwareBatch.from_configs([HardwareConfig()], device=self.device)
        costs = network_costs(hw, largest, self.constants, latency=self.settings.latency)
        return {"cycles": float(costs["cycles"][0]), "energy_pj": float(costs["energy_pj"][0]),
                "area_luts": float(hw.t["area_luts"][0]), "brams": float(hw.t["brams"][0])}

    # ---- checkpoints

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT

    def save(self) -> None:
        """Checkpoint now (atomically, through the flow, which also keeps the running phase's seconds)."""
        self.flow.checkpoint()

    def _dump(self) -> bytes:
        self.state["seconds"] = self._seconds_before + time.perf_counter() - self._started
        state = {"fingerprint": self.settings.fingerprint(), "settings": self.settings.resumable(),
                 "state": self.state, "rng": torch.get_rng_state(), "warmed_rng": self._warmed_rng,
                 "cuda_rng": torch.cuda.get_rng_state() if self.device == "cuda" else None,
                 "net": self.net.state_dict(),
                 "searchers": {k: s.state_dict() for k, s in self.searchers.items()}, "warmup": self._warmup}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    def load(self) -> bool:
        """Resume from the checkpoint, if there is one: the record, the supernet, the RNG state, the searchers and
        an interrupted warm-up's training state. Whether there was a checkpoint."""
        path = self.checkpoint_path
        self._loaded = True
        if not path.exists():
            return False
        try:
            saved = torch.load(path, weights_only=True, map_location=self.device)
            fingerprint, state, rng = saved["fingerprint"], saved["state"], saved["rng"]
        except Exception as exc:                      # torch.load fails in many ways on a damaged file
            raise InputError("checkpoint", str(path), f"a checkpoint written by `codesign search` ({exc}); remove "
                             "it or pass --restart") from None
        rewind = False
        if fingerprint != self.settings.fingerprint():
            rewind = self._rewindable(path, saved, state)
        self.state.clear()                      # the flow's record is this dict: refill it
        self.state.update(state)
        self._seconds_before = state.get("seconds", 0.0)
        self.net.load_state_dict(saved["net"])
        self._warmup = saved.get("warmup")
        self._warmed_rng = saved.get("warmed_rng")
        if rewind:
            self._rewind_to_search()
            return True
        for name in SEARCHES:                   # every search begun, in order; building one draws random numbers,
            if name in saved["searchers"]:      # so the saved random state is restored after them
                self.searchers[name] = self._searcher(name, saved["searchers"])
        torch.set_rng_state(rng.cpu())
        if self.device == "cuda" and saved.get("cuda_rng") is not None:     # the Gumbel noise of a CUDA run
            torch.cuda.set_rng_state(saved["cuda_rng"].cpu())
        return True

    def _rewindable(self, path: Path, saved: dict, state: dict) -> bool:
        """Whether a checkpoint of other settings can go on: as it stands while its warm-up runs (False), from the
        search's start once the warm-up is done (True), when only settings the warm-up does not read differ (see
        `WARMUP_SETTINGS`). Otherwise an `InputError` that names the settings that differ."""
        if "settings" not in saved:                                   # a checkpoint from before settings were kept
            raise InputError("checkpoint", str(path), "one written with the same settings (these differ); pass "
                             "--restart to start over, or another --out")
        changes = self.settings.changes(saved["settings"])
        listed = "; ".join(f"{name} {then!r} -> {now!r}" for name, (then, now) in changes.items())
        fixed = sorted(WARMUP_SETTINGS & set(changes))
        if fixed or (state.get("phase") != "warmup" and saved.get("warmed_rng") is None):
            raise InputError("checkpoint", str(path), f"a checkpoint of the same settings, but these differ: {listed}"
                             f" ({', '.join(fixed) or 'a warm-up without its end state'} cannot change on resume); "
                             "pass --restart to start over, or another --out")
        if state.get("phase") == "warmup":
            self.notes.append(f"settings changed since the checkpoint ({listed}); they act after the warm-up, which "
                              "resumes")
            return False
        self.notes.append(f"settings changed since the checkpoint ({listed}): the finished warm-up is kept and the "
                          "search starts again from it")
        return True

    def _rewind_to_search(self) -> None:
        """Start again at the search, from the warmed-up supernet and the random state at the warm-up's end."""
        self.state.update(phase="search", epoch=0, results={},
                          history={k: v for k, v in self.state["history"].items() if k == "warmup"},
                          step_seconds={k: v for k, v in self.state.get("step_seconds", {}).items() if k == "warmup"})
        self.state.pop("seconds", None)
        self._seconds_before = sum(self.state["step_seconds"].values())
        self._warmup = None
        torch.set_rng_state(self._warmed_rng.cpu())

    def run(self) -> dict:
        """The phases, from where the checkpoint (if any) stopped (`load` first, unless the caller has); the
        results."""
        if not self._loaded:
            self.load()
        self.flow.run(self)
        return self.state["results"]

    # ---- phases

    def default_index(self) -> int:
        default = HardwareConfig()
        if default in self.configs and bool(self.allowed[self.configs.index(default)]):
            return self.configs.index(default)
        return int(torch.nonzero(self.allowed)[0])

    def searcher(self, name: str) -> Searcher:
        """The search ``name``'s state: resumed, or fresh from the warmed-up supernet."""
        if name not in self.searchers:
            self.searchers[name] = self._searcher(name, {})
        return self.searchers[name]

    def _searcher(self, name: str, saved: dict) -> Searcher:
        """The search's state: from the checkpoint, or fresh from the warmed-up supernet."""
        net = SuperNet(self.spec).to(self.device)
        net.load_state_dict(self.net.state_dict())
        searcher = Searcher.create(net, len(self.configs), self.settings)
        if name in saved:
            searcher.load_state_dict(saved[name])
        return searcher

    def _bar(self, total: int, desc: str):
        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False, dynamic_ncols=True)

    def _epoch_batches(self, tag: str, epoch: int):
        generator = torch.Generator().manual_seed(self.settings.seed * 1000003 + hash_tag(tag) + epoch)
        for images, labels in self.data.train.batches(self.settings.batch_size, shuffle=True, generator=generator):
            yield images.to(self.device), labels.to(self.device)

    def warm_up(self) -> None:
        """Phase 1 (see the module docstring): `fit` with the sandwich rule's loss on each epoch's seeded batches,
        checkpointed after every epoch (the optimizer, the schedule and the architecture sampler with it)."""
        s, net = self.settings, self.net
        largest = ArchChoice.largest(self.spec)
        arch_gen = torch.Generator().manual_seed(s.seed)
        history = self.state["history"].setdefault("warmup", [])
        steps_per_epoch = self.data.train.batch_count(s.batch_size)
        resume, self._warmup = self._warmup, None
        if resume is not None:
            arch_gen.set_state(resume["arch_gen"].cpu())    # a CUDA run's checkpoint maps it there
        epoch = {"bar": None, "total": 0.0}

        def loss(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(net(images, largest), labels) + \
                F.cross_entropy(net(images, sample_arch(self.spec, arch_gen)), labels)

        def batches(index: int):
            epoch.update(bar=self._bar(steps_per_epoch, f"warmup {index + 1}/{s.warmup_epochs}"), total=0.0)
            return self._epoch_batches("warmup", index)

        def after_step(value: torch.Tensor) -> None:
            value = float(value.detach())
            epoch["total"] += value
            epoch["bar"].update()
            epoch["bar"].set_postfix(loss=f"{value:.3f}")

        def after_epoch(state: FitState) -> None:
            epoch["bar"].close()
            history.append({"epoch": state.epoch - 1, "loss": epoch["total"] / steps_per_epoch,
                            "seconds": state.seconds})
            self.state["epoch"] = state.epoch
            self._warmup = {"fit": state.state_dict(), "arch_gen": arch_gen.get_state()}
            self.save()

        fit(net, self.data.train, epochs=s.warmup_epochs, lr=s.lr, batch_size=s.batch_size, loss=loss,
            batches=batches, after_step=after_step, after_epoch=after_epoch,
            resume=None if resume is None else resume["fit"])
        self._warmup = None
        self._warmed_rng = torch.get_rng_state()         # where a rewind to the search starts (`load`)
        self.state["epoch"] = 0

    def search(self, name: str, fixed: int | None) -> None:
        """Phases 2 and 3 for the search ``name`` (``fixed``: the hardware candidate it is held to, if any): its
        epochs from where it stands, then its derived design in the results."""
        searcher = self.searcher(name)
        self._search(name, searcher, fixed)
        self.state["results"][f"{name}_derived"] = self.derive(searcher, fixed)
        self.state["epoch"] = 0

    def _search(self, name: str, searcher: Searcher, fixed: int | None) -> None:
        s = self.settings
        net, ref = searcher.net, self.reference
        steps_per_epoch = self.data.train.batch_count(s.batch_size)
        total_steps = s.search_epochs * steps_per_epoch
        schedule = net.csq_schedule(s.csq_fraction, s.csq_refresh)
        schedule.steps = self.state["epoch"] * steps_per_epoch
        history = self.state["history"].setdefault(name, [])
        net.train()
        for epoch in range(self.state["epoch"], s.search_epochs):
            bar = self._bar(steps_per_epoch, f"{name} {epoch + 1}/{s.search_epochs}")
            sums = {"loss": 0.0, "ce": 0.0, "cycles": 0.0, "area_luts": 0.0}
            start = time.perf_counter()
            for step, (images, labels) in enumerate(self._epoch_batches(name, epoch)):
                progress = (epoch * steps_per_epoch + step) / max(total_steps - 1, 1)
                tau = s.tau_start * (s.tau_end / s.tau_start) ** progress
                schedule.step()
                arch, gates = searcher.arch.sample(tau)
                ce = F.cross_entropy(net(images, arch, mode="search", tau=tau, gates=gates), labels)
                per_layer = self.cost.per_layer(net, arch, gates)
                probs = self.hw_probs(searcher, fixed, per_layer)
                terms = self.cost.expected(per_layer, probs)
                loss = ce + hardware_cost(s, ref, terms["cycles"], terms["energy_pj"], terms["area_luts"],
                                          terms["brams"])
                if s.max_cycles is not None:
                    loss = loss + BUDGET_PENALTY * F.relu(terms["cycles"] / s.max_cycles - 1)
                searcher.weights_opt.zero_grad(set_to_none=True)
                searcher.arch_opt.zero_grad(set_to_none=True)
                loss.backward()
                searcher.weights_opt.step()
                searcher.arch_opt.step()
                for key, value in (("loss", loss), ("ce", ce), ("cycles", terms["cycles"]),
                                   ("area_luts", terms["area_luts"])):
                    sums[key] += float(value.detach())
                bar.update()
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", cycles=f"{float(terms['cycles'].detach()):.0f}",
                                luts=f"{float(terms['area_luts'].detach()):.0f}", tau=f"{tau:.2f}")
            bar.close()
            record = {key: value / steps_per_epoch for key, value in sums.items()}
            record.update(epoch=epoch, seconds=time.perf_counter() - start, tau=tau,
                          hw_probs=self.hw_probs(searcher, fixed).tolist(),
                          arch=dataclasses.asdict(searcher.arch.argmax()))
            record["design"] = design = self.derive(searcher, fixed, strict=False)
            design["proxy_acc_val"] = proxy_accuracy(self, net, arch_from_dict(design["arch"]),
                                                     bits_from_dict(design["bits"]), f"{name}{epoch}")
            design["objective"] = objective(self, design, design["proxy_acc_val"])
            history.append(record)
            self.state["epoch"] = epoch + 1
            self.save()
            if self.progress:
                d = record["design"]
                tqdm.write(f"{name} epoch {epoch + 1}: loss {record['loss']:.3f} (CE {record['ce']:.3f}), "
                           f"E[cycles] {record['cycles']:.0f}, E[PE LUTs] {record['area_luts']:.0f}; derived: "
                           f"{d['cycles']:.0f} cycles on {d['hardware_name']}, mean weight bits "
                           f"{d['mean_weight_bits']:.2f}, proxy accuracy {d['proxy_acc_val']:.3f}", file=sys.stderr)

    def hw_probs(self, searcher: Searcher, fixed: int | None, per_layer: dict | None = None) -> torch.Tensor:
        """The hardware distribution: the generator's (over the allowed candidates the network fits), or a
        one-hot on ``fixed``."""
        if fixed is not None:
            return torch.nn.functional.one_hot(torch.tensor(fixed, device=self.device), len(self.configs)).float()
        allowed = self.allowed
        if per_layer is not None:
            allowed = allowed & torch.isfinite(per_layer["cycles"]).all(-1)
        with torch.set_grad_enabled(per_layer is not None):
            return searcher.gen(network_features(searcher.net, searcher.arch), allowed)

    # ---- derivation

    def derive(self, searcher: Searcher, fixed: int | None, *, strict: bool = True) -> dict:
        """The most probable design and its exact costs on its hardware (see the module docstring, phase 3)."""
        arch = searcher.arch.argmax()
        bits = searcher.net.chosen_bits(arch)
        probs = self.hw_probs(searcher, fixed).detach()
        return self.place(arch, bits, probs, strict=strict, how="search")

    def place(self, arch: ArchChoice, bits: dict[str, LayerBits], probs: torch.Tensor | None, *, strict: bool,
              how: str) -> dict:
        """Price the network on every candidate and pick its hardware: the most probable candidate under
        ``probs`` when it meets the budgets, else the cheapest that does."""
        s = self.settings
        layers = [p.layer for p in arch_layers(self.net, arch, bits, batch=s.batch)]
        costs = network_costs(self.hw, layers, self.constants, latency=s.latency)
        cycles, luts = costs["cycles"], self.hw.t["area_luts"].double()
        meets = self.allowed & costs["fits"]
        if s.max_cycles is not None:
            meets &= cycles <= s.max_cycles
        score = hardware_cost(s, self.reference, cycles, costs["energy_pj"], luts, self.hw.t["brams"].double())
        note = None
        if probs is not None and bool(meets[int(probs.argmax())]):
            index = int(probs.argmax())
        elif bool(meets.any()):
            index = int(torch.where(meets, score, torch.inf).argmin())
            if probs is not None:
                note = (f"the generator's choice {self.configs[int(probs.argmax())].digest()} misses the budgets; "
                        "took the cheapest candidate that meets them")
        else:
            excess = torch.maximum(cycles / (s.max_cycles or math.inf), luts / (s.max_luts or math.inf))
            index = int(torch.where(costs["fits"], excess, torch.inf).argmin())
            closest = self._design(arch, bits, index, costs, how)
            if strict:
                raise BudgetError(f"no design meets the budgets (max_cycles={s.max_cycles}, max_luts={s.max_luts}); "
                                  f"the closest has {closest['cycles']:.0f} cycles and "
                                  f"{closest['area_luts']:.0f} PE LUTs", closest)
            note = "no candidate meets the budgets: the closest"
        design = self._design(arch, bits, index, costs, how)
        design["note"] = note
        return design

    def _design(self, arch: ArchChoice, bits: dict[str, LayerBits], index: int, costs: dict, how: str) -> dict:
        cfg = self.configs[index]
        return {"how": how, "arch": dataclasses.asdict(arch),
                "bits": {name: {"w": list(b.w), "a": b.a} for name, b in bits.items()},
                "hardware": cfg.to_dict(), "hardware_index": index, "hardware_name": hardware_name(cfg),
                "cycles": float(costs["cycles"][index]), "energy_pj": float(costs["energy_pj"][index]),
                "dram_bytes": float(costs["dram_bytes"][index]),
                "area_luts": float(self.hw.t["area_luts"][index]), "brams": float(self.hw.t["brams"][index]),
                "layer_cycles": dict(zip(costs["names"], costs["layer_cycles"][index].tolist())),
                "mean_weight_bits": mean_weight_bits(bits)}


def area_term(luts, brams, reference: dict):
    """The area in the objective: PE-array LUTs and buffer block RAMs, each relative to the default hardware's,
    averaged (so buffers the network does not need are not free)."""
    return (luts / reference["area_luts"] + brams / reference["brams"]) / 2


def hardware_cost(settings: SearchSettings, reference: dict, cycles, energy_pj, area_luts, brams):
    """The objective's hardware part, each term relative to the reference: the loss (on expectations, tensors),
    the derivation (on every candidate at once) and the designs' scores (floats) all use this one."""
    return settings.latency_weight * cycles / reference["cycles"] + \
        settings.energy_weight * energy_pj / reference["energy_pj"] + \
        settings.area_weight * area_term(area_luts, brams, reference)


def objective(run: SearchRun, design: dict, accuracy: float) -> float:
    """Lower is better: the search's loss with the error rate in place of the cross-entropy."""
    return (1 - accuracy) + hardware_cost(run.settings, run.reference, design["cycles"], design["energy_pj"],
                                          design["area_luts"], design["brams"])


def proxy_accuracy(run: SearchRun, net: SuperNet, arch: ArchChoice, bits: dict[str, LayerBits], tag: str) -> float:
    """A design's accuracy estimate: one QAT epoch from the shared weights, on the validation set."""
    _, metrics = retrain(run, net, arch, bits, tag=tag, fp_epochs=0, qat_epochs=PROXY_QAT_EPOCHS)
    return metrics["acc_val"]


def hash_tag(tag: str) -> int:
    return int(hashlib.sha256(tag.encode()).hexdigest()[:8], 16)


def arch_from_dict(data: dict) -> ArchChoice:
    return ArchChoice(tuple(data["depths"]), tuple(data["widths"]), tuple(tuple(k) for k in data["kernels"]),
                      tuple(tuple(e) for e in data["expands"]))


def bits_from_dict(data: dict) -> dict[str, LayerBits]:
    return {name: LayerBits(tuple(b["w"]), b["a"]) for name, b in data.items()}


def retrain(run: SearchRun, net: SuperNet, arch: ArchChoice, bits: dict[str, LayerBits], *, tag: str,
            fp_epochs: int | None = None, qat_epochs: int | None = None) -> tuple[QuantNet, dict]:
    """The network extracted with the shared weights, fine-tuned in float, then QAT-trained; accuracies in integer
    mode on the validation and test sets."""
    s = run.settings
    fp_epochs = s.retrain_fp_epochs if fp_epochs is None else fp_epochs
    qat_epochs = s.retrain_qat_epochs if qat_epochs is None else qat_epochs
    subnet = net.extract_subnet(arch, bits).to(run.device)
    train = ImageSet(run.data.train.images.to(run.device), run.data.train.labels.to(run.device))
    seed = s.seed * 1000003 + hash_tag(tag)
    start = time.perf_counter()
    fit(subnet, train, epochs=fp_epochs, lr=1e-3, batch_size=s.batch_size, seed=seed)
    subnet.set_quantized()
    fit(subnet, train, epochs=qat_epochs, lr=1e-3, batch_size=s.batch_size, seed=seed + 1)
    subnet = subnet.cpu()
    return subnet, {"acc": accuracy(subnet, run.data.test), "acc_val": accuracy(subnet, run.data.val),
                    "train_seconds": time.perf_counter() - start}
