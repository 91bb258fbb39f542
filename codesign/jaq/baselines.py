"""The search's baselines and the final retraining of every design the report compares: the bodies of the steps
``random`` and ``retrain`` of `codesign.jaq.pipeline` (this module uses the search, the search never uses it).

- Random search with the same budget as the differentiable search: as many random designs (architecture, one
  weight width per layer, activation widths, an allowed hardware candidate) as the search has epochs' derived
  designs, each scored by the same objective on a proxy accuracy (one QAT epoch from the warmed-up shared weights,
  on the validation set); the best that meets the budgets is retrained like the chosen design.
- `retrain_all`: the chosen design; the same network at uniform 8-bit (w8a8) and uniform 4-bit weights (w4a8) on
  the same hardware; the fixed-hardware search's design; the random search's best. Each is exported to its integer
  model and priced through the compiler's mapper (`codesign.compiler.mapper.map_layers`), the figures `make verify`
  checks.
"""

from __future__ import annotations

import sys

import torch

from codesign.compiler.mapper import map_layers
from codesign.ir.layers import from_integer_model
from codesign.jaq.search import SearchRun, arch_from_dict, bits_from_dict, objective, proxy_accuracy, retrain
from codesign.quant.export import export_quantnet
from codesign.quant.supernet import ArchChoice, LayerBits, mean_weight_bits, sample_arch


def random_bits(run: SearchRun, arch: ArchChoice, generator: torch.Generator) -> dict[str, LayerBits]:
    spec = run.spec

    def pick(options):
        return options[int(torch.randint(len(options), (), generator=generator))]

    bits = run.net.uniform_bits(arch, 8, 8)
    for name, sub in run.net.subnet_layers(arch).items():
        if sub.layer is not None:
            bits[name] = LayerBits((pick(spec.w_bits),) * sub.out_channels, pick(spec.a_bits))
        elif name.endswith(".add"):
            bits[name] = LayerBits((), bits[name.replace(".add", ".project")].a)
    return bits


def random_search(run: SearchRun) -> dict:
    s = run.settings
    generator = torch.Generator().manual_seed(s.seed + 7919)
    allowed = torch.nonzero(run.allowed).flatten().tolist()
    explored = []
    for i in range(s.search_epochs):
        arch = sample_arch(run.spec, generator)
        bits = random_bits(run, arch, generator)
        hw = allowed[int(torch.randint(len(allowed), (), generator=generator))]
        probs = torch.nn.functional.one_hot(torch.tensor(hw), len(run.configs)).float()
        design = run.place(arch, bits, probs, strict=False, how="random")
        design["proxy_acc_val"] = proxy_accuracy(run, run.net, arch, bits, f"random{i}")
        design["objective"] = objective(run, design, design["proxy_acc_val"])
        explored.append(design)
        if run.progress:
            print(f"random design {i + 1}/{s.search_epochs}: proxy accuracy {design['proxy_acc_val']:.3f}, "
                  f"{design['cycles']:.0f} cycles on {design['hardware_name']}", file=sys.stderr, flush=True)
    meeting = [d for d in explored if d["note"] is None] or explored
    return {"best": min(meeting, key=lambda d: d["objective"]), "explored": explored}


def retrain_all(run: SearchRun) -> None:
    """Retrain, export and price every design of the comparison; the checkpoint keeps each one as it finishes."""
    results = run.state["results"]
    done = results.setdefault("retrained", {})
    chosen = results["search_derived"]
    arch, bits = arch_from_dict(chosen["arch"]), bits_from_dict(chosen["bits"])
    searched = run.searchers["search"].net
    jobs = [("chosen", searched, arch, bits, chosen),
            ("int8", searched, arch, searched.uniform_bits(arch, 8, 8), chosen),
            ("int4", searched, arch, searched.uniform_bits(arch, 4, 8), chosen)]
    if run.settings.baselines:
        fixed = results["search_fixed_hw_derived"]
        jobs.append(("fixed_hw", run.searchers["search_fixed_hw"].net, arch_from_dict(fixed["arch"]),
                     bits_from_dict(fixed["bits"]), fixed))
        best = results["random_derived"]["best"]
        jobs.append(("random", run.net, arch_from_dict(best["arch"]), bits_from_dict(best["bits"]), best))
    for tag, net, job_arch, job_bits, design in jobs:
        if tag in done:
            continue
        model, metrics = retrain(run, net, job_arch, job_bits, tag=tag)
        cfg = run.configs[design["hardware_index"]]
        integer = export_quantnet(model, cfg)
        mapped = map_layers(cfg, from_integer_model(integer, batch=run.settings.batch), latency=run.settings.latency,
                            constants=run.constants)
        done[tag] = {**metrics, "cycles": mapped["total_cycles"], "energy_pj": mapped["total_energy_pj"],
                     "dram_bytes": mapped["total_dram_bytes"], "hardware": cfg.to_dict(),
                     "hardware_name": design["hardware_name"], "area_luts": design["area_luts"],
                     "brams": design["brams"], "mean_weight_bits": mean_weight_bits(job_bits),
                     "layers": mapped["layers"]}
        if tag == "chosen":
            done[tag]["subnet"] = model.spec
            run.out.mkdir(parents=True, exist_ok=True)
            model.save(run.out / "model.pt")
            integer.save(run.out / "integer_model.json")
        if run.progress:
            print(f"retrained {tag}: test accuracy {metrics['acc']:.4f}, {mapped['total_cycles']:.0f} cycles on "
                  f"{design['hardware_name']}", file=sys.stderr, flush=True)
        run.save()

