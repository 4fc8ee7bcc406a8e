"""keras_efficientnets 0.1.x's modules, still importable at their 2019 paths
(``keras_efficientnets.efficientnet``, ``keras_efficientnets.custom_objects``; see `_moved`)."""
