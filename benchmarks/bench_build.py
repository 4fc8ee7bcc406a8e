"""Model build time (random weights, no download): ours vs keras.applications, B0 and B7.

The first build in a process pays for imports and tracing helpers, so one
untimed build of each comes first; then the median of the repeats, with the
Keras session cleared between builds.

Run:

    python -m benchmarks.bench_build [--variants b0,b7] [--repeats 2]
"""

from __future__ import annotations

import argparse

from benchmarks import common


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="b0,b7")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import keras

    import keras_efficientnets as ke
    from keras_efficientnets.arch.variants import get_variant

    for name in args.variants.split(","):
        constructor_name = get_variant(name).constructor_name
        builders = {
            "keras.applications": getattr(keras.applications, constructor_name),
            "ours": getattr(ke, constructor_name),
        }
        for builder_name, build in builders.items():

            def build_once(build=build):
                build(weights=None)
                keras.utils.clear_session()

            seconds = common.median_seconds(build_once, args.repeats, warmup=1)
            common.emit(kind="build", variant=name, model=builder_name, seconds=seconds)


if __name__ == "__main__":
    main()
