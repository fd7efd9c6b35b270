"""The setting rules several commands share, each in its one home: a count (a batch size, faces
per frame: ``hiva.config.count_rule``), a fold's weights (best or last: ``hiva.runs``) and a
decision threshold (``hiva.predict.settings.detect_checks``), named as flags or as arguments."""

from __future__ import annotations

import pytest

from hiva.config import count_rule
from hiva.errors import HivaError
from hiva.predict.settings import check, detect_checks
from hiva.runs import WEIGHTS, weights_rule


@pytest.mark.parametrize("value,ok", [(1, True), (64, True), (0, False), (-2, False),
                                      (True, False), ("4", False), (2.0, False), (None, False)])
def test_a_count_is_a_whole_number_of_at_least_one(value, ok):
    assert count_rule("--batch-size", value) == (ok, f"--batch-size must be ≥ 1, got {value!r}")


def test_a_count_may_be_left_out_where_that_means_something():
    assert count_rule("--max-faces", None, none="every face")[0]
    assert count_rule("--max-faces", 0, none="every face") == (
        False, "--max-faces must be ≥ 1 (or none: every face), got 0")
    assert count_rule("feature_views", 1, low=2)[1] == "feature_views must be ≥ 2, got 1"


def test_weights_are_best_or_last():
    assert WEIGHTS == ("best", "last") and all(weights_rule(w)[0] for w in WEIGHTS)
    assert weights_rule("final") == (False, "--weights 'final': use best or last")
    assert weights_rule("Best", "weights") == (False, "weights 'Best': use best or last")


@pytest.mark.parametrize("value,ok", [("auto", True), (0.3, True), ("0.5", True), (0, False),
                                      (1.0, False), ("1.5", False), ("high", False),
                                      (None, False)])
def test_a_threshold_is_auto_or_inside_zero_one(value, ok):
    if ok:
        check(detect_checks(False, threshold=value))
        return
    with pytest.raises(HivaError, match=rf"^threshold {value!r}: pass auto or a number in "):
        check(detect_checks(False, threshold=value))


def test_the_train_config_counts_its_batches():
    from hiva.train.config import TrainConfig

    assert TrainConfig(eval_batch_size=None).eval_batch_size is None
    for kw, needle in [({"batch_size": 0}, "batch_size must be ≥ 1, got 0"),
                       ({"grad_accum": 0}, "grad_accum must be ≥ 1, got 0"),
                       ({"eval_batch_size": 0}, "eval_batch_size must be ≥ 1 (or none: "
                                                "batch_size), got 0")]:
        with pytest.raises(HivaError) as e:
            TrainConfig(**kw)
        assert str(e.value) == f"bad train config: {needle}; fix the config or flag"


def test_a_yaml_mapping_file_is_read_once_for_every_caller(tmp_path):
    """hiva.config.read_mapping: --config files, a sweep's base/set files and --slurm files."""
    from hiva.config import read_mapping, yaml_value

    with pytest.raises(HivaError, match=r"^the caller's own line$"):
        read_mapping(tmp_path / "none.yaml", "config file", "the caller's own line")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(HivaError, match=r"config file .*bad.yaml is not valid YAML \(.*\); fix"):
        read_mapping(tmp_path / "bad.yaml", "config file", "-")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(HivaError, match=r"must hold a mapping of key: value"):
        read_mapping(tmp_path / "list.yaml", "base config", "-")
    (tmp_path / "empty.yaml").write_text("")
    assert read_mapping(tmp_path / "empty.yaml", "config file", "-") == {}
    assert [yaml_value(v) for v in ("240", "[1, 2]", "", "a: [", "gpu")] == [
        240, [1, 2], None, "a: [", "gpu"]
