"""Keras models from the architectures in `arch`: the `EfficientNet` builder and the named
constructors (`builder`), its layers (`blocks`), its validated arguments (`build_config`),
backbones (`features`), rematerialization (`remat`) and the stack room Keras's graph walk needs
(`graph_depth`)."""
