"""Compound-coefficient search: alpha, beta, gamma and phi of the EfficientNet paper.

Compound scaling grows a base network with one knob, phi: depth by alpha^phi,
width by beta^phi and resolution by gamma^phi, where the paper asks for
alpha * beta^2 * gamma^2 ~= 2 with alpha, beta, gamma >= 1, so that FLOPs grow
by about 2^phi (Tan & Le 2019, https://arxiv.org/abs/1905.11946, section 3.3).
The paper's step 1 fixes phi = 1, trains the candidates and keeps the best.

This package covers that whole step, and imports no Keras until a function that
trains or plots is called:

- `optimize_coefficients` and `get_compound_coeff_func` (the 0.1.x API): the
  candidates nearest to a grid of starts on the constraint surface, exactly;
- `compound_scaling` and `candidate_table`: what a candidate really costs, with
  FLOPs and parameters of the model it builds (channel rounding included);
- `search_coefficients`: train every candidate briefly, rank by validation
  accuracy (KerasTuner, so the search can run on several machines);
- `plot_candidates`: the candidates drawn on the constraint surface.

Modules: `coefficients` (the 0.1.x API), `projection` and `user_cost` (its
NumPy maths), `candidates` (real cost), `search` (training, KerasTuner),
`plots` (matplotlib). All but `search` and `plots` are Keras-free, and those
two import their libraries only when called.

The released B1-B7 are not alpha^phi of the paper's alpha = 1.2, beta = 1.1,
gamma = 1.15: they are a hand-tuned table (`config.VARIANTS`).
"""

from keras_efficientnets.optimize.candidates import (
    SORT_KEYS,
    Candidate,
    CompoundScaling,
    candidate_table,
    compound_scaling,
)
from keras_efficientnets.optimize.coefficients import (
    MAX_GRID_ROWS,
    get_compound_coeff_func,
    optimize_coefficients,
)
from keras_efficientnets.optimize.plots import plot_candidates
from keras_efficientnets.optimize.search import search_coefficients

__all__ = [
    "SORT_KEYS",
    "Candidate",
    "CompoundScaling",
    "MAX_GRID_ROWS",
    "candidate_table",
    "compound_scaling",
    "get_compound_coeff_func",
    "optimize_coefficients",
    "plot_candidates",
    "search_coefficients",
]
