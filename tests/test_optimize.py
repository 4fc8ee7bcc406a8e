"""Compound-coefficient search: exactness, 0.1.x compatibility, real cost, training search, plots."""

import itertools
import math

import numpy as np
import pytest

from keras_efficientnets.arch.flops import count_flops
from keras_efficientnets.arch.variants import BlockArgs
from keras_efficientnets.optimize import (
    Candidate,
    candidate_table,
    compound_scaling,
    get_compound_coeff_func,
    optimize_coefficients,
    plot_candidates,
    search_coefficients,
)


def _starts(num_coeff, max_cost, search_per_coeff):
    axis = np.linspace(1.0, max_cost, search_per_coeff)
    return np.array(list(itertools.product(axis, repeat=num_coeff)))


def _paper_cost(x, phi, max_cost):
    # Written out as the 0.1.x package did, independently of the library.
    alpha, beta, gamma = x
    return (alpha**phi * (beta**phi) ** 2 * (gamma**phi) ** 2 - max_cost) ** 2


# ----------------------------------------------------------------------------- cost function
def test_cost_function_matches_the_2019_formula_for_vectors_and_batches():
    rng = np.random.default_rng(0)
    points = rng.uniform(1.0, 2.0, (20, 3))
    for phi, max_cost in [(1.0, 2.0), (2.0, 3.0), (0.5, 1.5)]:
        cost = get_compound_coeff_func(phi=phi, max_cost=max_cost)
        expected = np.array([_paper_cost(p, phi, max_cost) for p in points])
        np.testing.assert_allclose(cost(points), expected, rtol=1e-12)
        assert float(cost(list(points[0]))) == pytest.approx(expected[0], rel=1e-12)
        assert np.ndim(cost(points[0])) == 0


def test_cost_function_rejects_wrong_shapes():
    cost = get_compound_coeff_func()
    with pytest.raises(ValueError, match="3 coefficients"):
        cost([1.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        cost(np.ones((2, 4)))


# ----------------------------------------------------------------------------- exact projection
@pytest.mark.parametrize(
    ("phi", "max_cost", "search_per_coeff"),
    [(1.0, 2.0, 10), (1.0, 2.0, 4), (2.0, 2.0, 7), (0.5, 1.5, 6), (1.0, 4.0, 8), (1.0, 9.0, 6)],
)
def test_default_cost_rows_are_exact_and_feasible(phi, max_cost, search_per_coeff):
    results = optimize_coefficients(phi=phi, max_cost=max_cost, search_per_coeff=search_per_coeff)
    assert results.shape == (search_per_coeff**3, 3)
    assert results.dtype == np.float64
    costs = get_compound_coeff_func(phi, max_cost)(results)
    assert np.max(np.abs(costs)) <= 1e-12
    assert results.min() >= 1.0 - 1e-12


@pytest.mark.parametrize(("max_cost", "search_per_coeff"), [(2.0, 5), (4.0, 5)])
def test_rows_satisfy_the_optimality_conditions_of_their_start(max_cost, search_per_coeff):
    # KKT of min |x - p|^2 s.t. log(x) . (1, 2, 2) = log(max_cost), x >= 1: on every
    # coordinate above 1, (x_i - p_i) x_i / u_i is one common multiplier t; at the
    # bound the multiplier of x_i >= 1 is (1 - p_i) - t u_i >= 0. Checks the row order too.
    results = optimize_coefficients(max_cost=max_cost, search_per_coeff=search_per_coeff)
    powers = np.array([1.0, 2.0, 2.0])
    for x, p in zip(results, _starts(3, max_cost, search_per_coeff), strict=True):
        free = x > 1.0 + 1e-9
        multipliers = (x - p)[free] * x[free] / powers[free]
        assert np.ptp(multipliers) <= 1e-9
        t = multipliers[0]
        assert np.all((1.0 - p[~free]) - t * powers[~free] >= -1e-9)


@pytest.mark.parametrize("max_cost", [2.0, 4.0, 9.0])
def test_rows_are_the_nearest_points_of_a_dense_sample_of_the_surface(max_cost):
    # Brute force: points of alpha * beta^2 * gamma^2 = max_cost with every value >= 1.
    side = math.sqrt(max_cost)
    beta, gamma = np.meshgrid(np.linspace(1, side, 500), np.linspace(1, side, 500))
    alpha = max_cost / (beta * gamma) ** 2
    surface = np.stack([alpha, beta, gamma], axis=-1).reshape(-1, 3)
    surface = surface[surface[:, 0] >= 1.0]
    results = optimize_coefficients(max_cost=max_cost, search_per_coeff=5)
    for x, p in zip(results, _starts(3, max_cost, 5), strict=True):
        brute = np.min(np.sum((surface - p) ** 2, axis=1))
        ours = np.sum((x - p) ** 2)
        assert ours <= brute + 1e-12
        assert ours >= brute - 0.05 * max_cost  # the sample is close to the surface everywhere


def test_results_are_deterministic():
    first = optimize_coefficients(max_cost=3.0, search_per_coeff=9)
    second = optimize_coefficients(max_cost=3.0, search_per_coeff=9)
    np.testing.assert_array_equal(first, second)


def test_starts_on_the_surface_stay_put():
    # With max_cost = 4 the grid has (1, 1, 2), (4, 1, 1), (1, 2, 1) on the surface.
    results = optimize_coefficients(max_cost=4.0, search_per_coeff=4)
    starts = _starts(3, 4.0, 4)
    for point in ([1.0, 1.0, 2.0], [4.0, 1.0, 1.0], [1.0, 2.0, 1.0]):
        index = int(np.flatnonzero(np.all(starts == point, axis=1))[0])
        np.testing.assert_allclose(results[index], point, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("num_coeff", "exponents", "expected"),
    [(1, None, (1.0,)), (2, None, (1.0, 2.0)), (4, None, (1.0, 2.0, 2.0, 2.0)), (3, (1, 1, 1), (1, 1, 1))],
)
def test_other_numbers_of_coefficients(num_coeff, exponents, expected):
    results = optimize_coefficients(
        num_coeff=num_coeff, max_cost=3.0, search_per_coeff=4, exponents=exponents
    )
    assert results.shape == (4**num_coeff, num_coeff)
    np.testing.assert_allclose(np.log(results) @ np.array(expected, float), math.log(3.0), atol=1e-13)
    assert results.min() >= 1.0
    if num_coeff == 1:
        np.testing.assert_allclose(results[:, 0], 3.0, atol=1e-14)


def test_an_explicit_paper_cost_is_solved_exactly():
    cost = get_compound_coeff_func(phi=2.0, max_cost=3.0)
    explicit = optimize_coefficients(cost_func=cost, phi=1.0, max_cost=3.0, search_per_coeff=5)
    assert np.max(cost(explicit)) <= 1e-12
    # The grid still spans [1, max_cost]; the constraint is the cost function's.
    np.testing.assert_array_equal(explicit, optimize_coefficients(phi=2.0, max_cost=3.0, search_per_coeff=5))


# ----------------------------------------------------------------------------- 0.1.x options
def test_readme_examples_of_the_2019_package(capsys):
    results = optimize_coefficients(phi=1.0, max_cost=2.0, search_per_coeff=10)
    cost_func = get_compound_coeff_func(phi=1.0, max_cost=2.0)
    print("Num unique configs = ", len(results))
    for i in range(10):
        print(i + 1, results[i], "Cost :", cost_func(results[i]))
    assert len(results) == 1000
    assert all(cost_func(results[i]) <= 1e-12 for i in range(10))

    results = optimize_coefficients(phi=1.0, max_cost=2.0, search_per_coeff=10, tol=1e-10)
    for i in range(10):
        print(i + 1, results[i], "Cost :", cost_func(results[i]))
    assert len(results) == 1000  # every exact row passes the tolerance
    assert "Num unique configs =  1000" in capsys.readouterr().out


def test_tol_sort_by_loss_and_unique():
    def loose(x):  # minimum 0 on a whole curve, reached exactly from some starts only
        return (x[0] * x[1] - 1.5) ** 2 + 1e-3 * (x[2] - 1.0) ** 2

    everything = optimize_coefficients(cost_func=loose, search_per_coeff=4)
    costs = np.array([loose(row) for row in everything])
    ranked = optimize_coefficients(cost_func=loose, search_per_coeff=4, sort_by_loss=True)
    np.testing.assert_array_equal(ranked, everything[np.argsort(costs, kind="stable")])
    kept = optimize_coefficients(cost_func=loose, search_per_coeff=4, tol=1e-8)
    np.testing.assert_array_equal(kept, everything[costs <= 1e-8])
    assert 0 < len(kept) < len(everything)

    paper = optimize_coefficients(search_per_coeff=10)
    distinct = optimize_coefficients(search_per_coeff=10, unique=True)
    assert len(distinct) == len(np.unique(np.round(paper, 12), axis=0)) < len(paper)
    np.testing.assert_array_equal(distinct[0], paper[0])  # first occurrences, input order


def test_loss_func_alias():
    def cost(x):
        return (x[0] * x[1] ** 2 * x[2] ** 2 - 2.0) ** 2

    np.testing.assert_array_equal(
        optimize_coefficients(loss_func=cost, search_per_coeff=3),
        optimize_coefficients(cost_func=cost, search_per_coeff=3),
    )
    with pytest.raises(ValueError, match="not both"):
        optimize_coefficients(cost_func=cost, loss_func=cost)


def test_save_coeff(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = optimize_coefficients(search_per_coeff=3)
    assert list(tmp_path.iterdir()) == []  # unlike 0.1.x, nothing is written by default
    optimize_coefficients(search_per_coeff=3, save_coeff=True)
    np.testing.assert_array_equal(np.load(tmp_path / "param_coeff.npy"), results)
    optimize_coefficients(search_per_coeff=3, save_coeff=tmp_path / "mine.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "mine.npy"), results)


def test_verbose_prints_a_summary(capsys):
    optimize_coefficients(search_per_coeff=3, verbose=True)
    assert "27 starts -> 27 rows" in capsys.readouterr().out


# ----------------------------------------------------------------------------- user cost functions
def _vector_style(x):  # how 0.1.x users wrote them: one vector, indexed
    alpha, beta, gamma = x[0], x[1], x[2]
    return (alpha * beta**2 * gamma**2 - 2.0) ** 2


def _batch_only(x):
    return (x[:, 0] * x[:, 1] ** 2 * x[:, 2] ** 2 - 2.0) ** 2


def _scalar_only(x):
    return float(np.sum((np.asarray(x) - np.array([1.5, 1.2, 1.1])) ** 2))


@pytest.mark.parametrize("func", [_vector_style, _batch_only])
def test_user_cost_is_minimized_above_one(func):
    results = optimize_coefficients(cost_func=func, search_per_coeff=5)
    assert results.shape == (125, 3)
    assert results.min() >= 1.0
    assert np.max(get_compound_coeff_func()(results)) <= 1e-10


def test_user_cost_called_row_by_row_when_it_only_takes_vectors():
    results = optimize_coefficients(cost_func=_scalar_only, search_per_coeff=3)
    np.testing.assert_allclose(results, np.tile([1.5, 1.2, 1.1], (27, 1)), atol=1e-6)


def test_user_cost_respects_the_bound():
    def pulls_below_one(x):
        return float((x[0] - 0.5) ** 2 + (x[1] - 3.0) ** 2)

    results = optimize_coefficients(num_coeff=2, cost_func=pulls_below_one, search_per_coeff=3)
    np.testing.assert_allclose(results, np.tile([1.0, 3.0], (9, 1)), atol=1e-6)


# Bad arguments and bad cost functions: the corpus in test_bad_inputs.py.


# ----------------------------------------------------------------------------- real cost
def test_compound_scaling():
    assert compound_scaling(1, 1.2, 1.1, 1.15) == (1.1, 1.2, 258)
    width, depth, resolution = compound_scaling(3, 1.2, 1.1, 1.15)
    assert (width, depth, resolution) == pytest.approx((1.1**3, 1.2**3, round(224 * 1.15**3)))
    assert compound_scaling(0, 1.2, 1.1, 1.15, base_resolution=300) == (1.0, 1.0, 300)
    with pytest.raises(ValueError, match="Received: gamma=0.9"):
        compound_scaling(1, 1.2, 1.1, 0.9)


def test_candidate_table_reports_the_actual_cost():
    paper, deep = [1.2, 1.1, 1.15], [2.0, 1.0, 1.0]
    table = candidate_table([paper, deep], phi=1.0)
    base = count_flops(None, 1.0, 1.0, 224)
    first = table[0]
    assert isinstance(first, Candidate)
    assert first.ideal_cost == pytest.approx(1.2 * 1.1**2 * 1.15**2)
    scaled = count_flops(None, 1.1, 1.2, 258)
    assert first.macs == scaled.macs and first.params == scaled.params
    assert first.flops_ratio == pytest.approx(scaled.macs / base.macs)
    assert first.params_ratio == pytest.approx(scaled.params / base.params)
    # Whole blocks: depth 1.2 turns each one-block stage into two, so the real
    # FLOPs grow by 2.55x where the formula promises 1.92x.
    assert first.flops_ratio == pytest.approx(2.554, abs=1e-3)
    assert table[1].flops_ratio == pytest.approx(2.021, abs=1e-3)


def test_candidate_table_ranks_and_filters_by_actual_flops():
    rows = optimize_coefficients(search_per_coeff=4, unique=True)
    table = candidate_table(rows, sort_by="flops_ratio")
    ratios = [c.flops_ratio for c in table]
    assert ratios == sorted(ratios) and len(table) == len(rows)
    close = candidate_table(rows, sort_by="flops_error", target_flops_ratio=2.0)
    errors = [abs(c.flops_ratio - 2.0) for c in close]
    assert errors == sorted(errors)
    window = candidate_table(rows, min_flops_ratio=1.9, max_flops_ratio=2.2)
    assert window and all(1.9 <= c.flops_ratio <= 2.2 for c in window)
    assert len(window) < len(rows)
    with pytest.raises(ValueError, match="Received: sort_by='accuracy'"):
        candidate_table(rows, sort_by="accuracy")
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        candidate_table([[1.0, 1.0], [1.0, 1.0]])


# ----------------------------------------------------------------------------- training search
def test_search_with_a_scoring_function_ranks_by_score(tmp_path):
    rows = [[1.2, 1.1, 1.15], [2.0, 1.0, 1.0], [1.0, 1.0, 1.414]]
    ranked = search_coefficients(
        rows, build_and_evaluate=lambda c: c.gamma, directory=tmp_path, project_name="score"
    )
    assert [c.gamma for c in ranked] == [1.414, 1.15, 1.0]
    assert [c.accuracy for c in ranked] == [1.414, 1.15, 1.0]
    assert all(c.macs > 0 for c in ranked)
    assert (tmp_path / "score").is_dir()  # KerasTuner's trial records


def test_search_trains_tiny_candidates_on_synthetic_data():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (24, 16, 16, 3)).astype("float32")
    labels = (images[:, :8].mean(axis=(1, 2, 3)) > images[:, 8:].mean(axis=(1, 2, 3))).astype("int32")
    blocks = [
        BlockArgs(32, 16, 3, (1, 1), 1, 0.25, 1),
        BlockArgs(16, 24, 3, (2, 2), 1, 0.25, 6),
    ]
    candidates = [[1.0, 1.0, 1.414], [2.0, 1.0, 1.0], [1.0, 1.2, 1.15]]
    ranked = search_coefficients(
        candidates,
        (images[:16], labels[:16]),
        (images[16:], labels[16:]),
        block_args_list=blocks,
        base_width=0.25,
        base_resolution=32,
        epochs=1,
        batch_size=8,
        compile_kwargs={
            "optimizer": "adam",
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "run_eagerly": True,  # tracing a train step takes longer than these models train
        },
    )
    assert len(ranked) == 3
    assert sorted((c.alpha, c.beta, c.gamma) for c in ranked) == sorted(map(tuple, candidates))
    accuracies = [c.accuracy for c in ranked]
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert accuracies == sorted(accuracies, reverse=True)
    assert {c.resolution for c in ranked} == {45, 32, 37}
    assert all(c.flops_ratio > 1.0 for c in ranked)


def test_search_argument_errors():
    with pytest.raises(ValueError, match="needs `train_data` and `validation_data`"):
        search_coefficients([[1.2, 1.1, 1.15]])
    with pytest.raises(ValueError, match="`candidates` is empty"):
        search_coefficients([], build_and_evaluate=lambda c: 0.0)
    with pytest.raises(TypeError, match="Received: build_and_evaluate=3"):
        search_coefficients([[1.2, 1.1, 1.15]], build_and_evaluate=3)


# ----------------------------------------------------------------------------- plots
def test_plot_candidates_writes_a_png(tmp_path):
    path = tmp_path / "candidates.png"
    table = candidate_table(optimize_coefficients(search_per_coeff=5, unique=True))
    figure = plot_candidates(table, path=path)
    assert len(figure.axes) == 4  # three projections and the colour bar
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    assert figure.axes[3].get_ylabel() == "actual FLOPs ratio"


def test_plot_candidates_of_plain_rows_and_errors(tmp_path):
    figure = plot_candidates(optimize_coefficients(search_per_coeff=4))
    assert figure.axes[3].get_ylabel() == "ideal cost"
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_candidates([])


def test_search_without_keras_tuner_names_the_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "keras_tuner", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install "keras_efficientnets\[tuner\]"'):
        search_coefficients([[1.2, 1.1, 1.15]], build_and_evaluate=lambda c: 0.0)
