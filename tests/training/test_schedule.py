import math

import pytest

from training.config import ScheduleConfig
from training.schedule import lr_at, schedule_note


def curve(max_steps=100, lr=1.0, **kw):
    cfg = ScheduleConfig(**kw)
    return [lr_at(s, max_steps, lr, cfg) for s in range(max_steps)]


def test_warmup_is_linear_then_cosine_to_min():
    lrs = curve(kind="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert lrs[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert lrs[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    midpoint = 10 + 45
    assert lrs[midpoint] == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-9)
    assert lrs[-1] == pytest.approx(0.1, abs=0.01)


def test_wsd_is_flat_then_decays_in_the_last_fraction():
    lrs = curve(
        kind="wsd", warmup_steps=5, decay_fraction=0.2, min_lr_ratio=0.0, decay_shape="linear"
    )
    assert lrs[5:80] == [1.0] * 75
    assert lrs[80] == pytest.approx(1.0)
    assert lrs[90] == pytest.approx(0.5)
    assert lrs[99] == pytest.approx(0.05)


def test_linear_and_one_minus_sqrt_decay_to_zero():
    lin = curve(kind="linear", warmup_steps=0, min_lr_ratio=0.0)
    sqrt = curve(kind="1-sqrt", warmup_steps=0, min_lr_ratio=0.0)
    assert lin[0] == sqrt[0] == 1.0
    assert lin[50] == pytest.approx(0.5)
    assert sqrt[50] == pytest.approx(1 - math.sqrt(0.5))
    assert lin[99] == pytest.approx(0.01)
    assert all(s < lin_ for s, lin_ in zip(sqrt[1:], lin[1:], strict=True))  # 1-sqrt drops early
    assert all(a > b for a, b in zip(lin, lin[1:], strict=False))


def test_wsd_linear_and_one_minus_sqrt_decay_to_their_floor():
    floor = 0.1
    wsd = curve(
        kind="wsd", warmup_steps=0, decay_fraction=0.2, min_lr_ratio=floor, decay_shape="linear"
    )
    lin = curve(kind="linear", warmup_steps=0, min_lr_ratio=floor)
    sqrt = curve(kind="1-sqrt", warmup_steps=0, min_lr_ratio=floor)
    assert wsd[90] == pytest.approx(floor + (1 - floor) * 0.5)
    assert lin[50] == pytest.approx(floor + (1 - floor) * 0.5)
    assert sqrt[50] == pytest.approx(floor + (1 - floor) * (1 - math.sqrt(0.5)))
    # the last step is one step short of the end of the decay
    assert wsd[-1] == pytest.approx(floor + (1 - floor) * (1 - 19 / 20))
    assert lin[-1] == pytest.approx(floor + (1 - floor) * (1 - 99 / 100))
    assert sqrt[-1] == pytest.approx(floor + (1 - floor) * (1 - math.sqrt(99 / 100)))
    assert min(wsd + lin + sqrt) >= floor


def test_a_warmup_too_long_for_the_run_is_named():
    cosine = ScheduleConfig(kind="cosine", warmup_steps=30)
    assert "warmup_steps=30 > max_steps=20: the learning rate never reaches" in schedule_note(
        20, cosine
    )
    assert "warmup_steps=30 = max_steps: the learning rate reaches optim.lr on the last step " in (
        schedule_note(30, cosine)
    )
    assert lr_at(29, 30, 1.0, cosine) == 1.0  # the last step's index: warmup's end
    wsd = ScheduleConfig(kind="wsd", warmup_steps=18, decay_fraction=0.5)
    assert schedule_note(20, wsd) == (
        "schedule: the warmup (18 steps) runs into the wsd decay (10 of 20 steps), which "
        "shrinks to 2 steps"
    )
    assert schedule_note(100, wsd) is None
    assert schedule_note(20, ScheduleConfig(kind="cosine", warmup_steps=5)) is None
