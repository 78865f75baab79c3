"""Calibration maths on hand-made logits whose right answers are known: the temperature, the
reliability diagram and its error, the "not sure" threshold, and the sentence."""

import math

import numpy as np
import pytest

from tlgui.core import calibration as cal


def sampled(n: int, scale: float, seed: int = 0):
    """Labels drawn from softmax(z), and the logits of a model ``scale`` times too sure."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, size=(n, 4))
    p = cal.softmax(z)
    labels = np.array([rng.choice(4, p=row) for row in p])
    return z * scale, labels


def test_softmax_with_a_temperature():
    logits = np.array([[0.0, math.log(3.0)]])
    assert cal.softmax(logits)[0].tolist() == pytest.approx([0.25, 0.75])
    assert cal.softmax(logits, 2.0)[0, 1] == pytest.approx(math.sqrt(3) / (1 + math.sqrt(3)))
    assert cal.softmax(np.array([[1000.0, 0.0]]))[0, 0] == 1.0  # no overflow


@pytest.mark.parametrize("scale", [3.0, 1.0, 0.5])
def test_the_fitted_temperature_undoes_over_and_under_confidence(scale):
    logits, labels = sampled(20_000, scale)
    assert cal.fit_temperature(logits, labels) == pytest.approx(scale, rel=0.05)


def test_the_temperature_stays_in_its_range():
    logits = np.array([[5.0, 0.0], [0.0, 5.0]] * 20)
    labels = np.array([1, 0] * 20)  # always wrong, and sure of it: as flat as allowed
    assert cal.fit_temperature(logits, labels) == pytest.approx(cal.TEMPERATURE_RANGE[1],
                                                                rel=1e-3)


def test_the_reliability_diagram_and_its_error():
    r = cal.reliability([0.95, 0.95, 0.95, 0.95], [True, True, True, False])
    assert r.counts.sum() == 4 and r.counts[14] == 4
    assert r.accuracy[14] == pytest.approx(0.75) and r.confidence[14] == pytest.approx(0.95)
    assert r.ece == pytest.approx(0.2)
    assert np.isnan(r.accuracy[0])  # an empty bin has no accuracy
    edges = cal.reliability([0.0, 1.0, 0.4], [False, True, True])
    assert edges.counts[0] == 1 and edges.counts[-1] == 1  # 1.0 is in the last bin
    assert edges.ece == pytest.approx((0 + 0 + 0.6) / 3)
    assert math.isnan(cal.reliability([], []).ece)


def test_the_threshold_keeps_as_many_as_the_precision_allows():
    conf, right = [0.9, 0.8, 0.7, 0.6], [True, True, False, True]
    assert cal.threshold_for_precision(conf, right, 1.0) == 0.8
    assert cal.threshold_for_precision(conf, right, 0.75) == 0.0  # 3 of 4: all kept
    assert cal.threshold_for_precision(conf, right, 0.7) == 0.0
    # ties go together: 0.8 would keep a wrong prediction of the same confidence
    assert cal.threshold_for_precision([0.9, 0.8, 0.8], [True, True, False], 1.0) == 0.9
    # not even the most confident is right: above it, so that all are "not sure"
    above = cal.threshold_for_precision([0.9, 0.5], [False, True], 0.95)
    assert above > 0.9 and cal._rejected(np.array([0.9, 0.5]), np.array([False, True]),
                                         above) == (2, None)
    assert cal.threshold_for_precision([], [], 0.95) == 0.0


def test_calibrate_measures_before_and_after():
    logits, labels = sampled(2_000, 3.0, seed=1)
    c = cal.calibrate(logits, labels, target_precision=0.9)
    assert c.temperature == pytest.approx(3.0, rel=0.15) and not c.note
    assert c.ece_after < c.ece_before / 2
    after = cal.softmax(logits, c.temperature)
    right = after.argmax(1) == labels
    assert c.not_sure == int((after.max(1) < c.threshold).sum()) > 0
    kept = after.max(1) >= c.threshold
    assert c.kept_accuracy == pytest.approx(right[kept].mean()) and c.kept_accuracy >= 0.9
    assert c.images == 2_000


def test_too_few_images_or_no_mistake_leave_the_temperature_at_one():
    few = cal.calibrate(np.array([[2.0, 0.0]] * 5), np.array([1] * 5))
    assert few.temperature == 1.0 and "5 validation images are too few" in few.note
    perfect = cal.calibrate(np.array([[3.0, 0.0], [0.0, 3.0]] * 15), np.array([0, 1] * 15))
    assert perfect.temperature == 1.0 and "no mistake" in perfect.note
    assert perfect.threshold == 0.0 and perfect.not_sure == 0


def test_a_model_that_predicts_one_class():
    """Right on half the images, whatever they are: no confidence is worth keeping at 95 %."""
    logits = np.array([[2.0, 0.0]] * 40)
    labels = np.array([0, 1] * 20)
    c = cal.calibrate(logits, labels)
    assert c.not_sure == 40 and c.kept_accuracy is None
    assert c.threshold > cal.softmax(logits, c.temperature).max()  # above every confidence
    assert "Every validation image would be \"not sure\"" in cal.describe(c)
    assert c.temperature == pytest.approx(cal.TEMPERATURE_RANGE[1], rel=1e-3)  # flattest


def test_the_sentences():
    logits, labels = sampled(400, 2.0, seed=2)
    c = cal.calibrate(logits, labels, 0.9)
    text = cal.describe(c)
    assert text.startswith(f"Confidences calibrated on 400 validation images (temperature "
                           f"{c.temperature:.2f})")
    assert f"{c.not_sure} of 400 validation images" in text and "right 90% of the time" in text
    by_hand = c.with_threshold(0.0, cal.softmax(logits, c.temperature).max(1),
                               cal.softmax(logits).argmax(1) == labels)
    assert by_hand.not_sure == 0 and "No prediction is \"not sure\"." in cal.describe(by_hand)
    assert cal.describe(cal.calibrate(np.zeros((0, 2)), np.zeros(0, int))) == (
        "No validation images: the confidences could not be calibrated.")


def test_a_stored_calibration_is_checked_value_by_value():
    c = cal.calibrate(*sampled(100, 2.0))
    assert cal.Calibration.from_dict(c.to_dict()) == c
    for key, value, why in [("temperature", 0.0, "not a number from 0.25"),
                            ("threshold", float("nan"), "calibration.threshold"),
                            ("images", -1, "not a count"), ("note", "a\nb", "not a line"),
                            ("surprise", 1, "unknown entry 'surprise'")]:
        with pytest.raises(ValueError, match=why):
            cal.Calibration.from_dict({**c.to_dict(), key: value})
    with pytest.raises(ValueError, match="not a table"):
        cal.Calibration.from_dict([1, 2])


def test_predictions_below_the_threshold_are_not_sure():
    from tlgui.core.predictions import Predictions, rows_csv

    p = Predictions(["cat", "cow", "dog"], ["a.jpg", "b.jpg", "c.jpg"], np.array([0, 1, 2]),
                    np.array([0.4, 0.5, 0.9], np.float32), threshold=0.5)
    assert p.answers().tolist() == ["not sure (cat?)", "cow", "dog"]
    assert list(p)[0] == ("a.jpg", "not sure (cat?)", pytest.approx(0.4))
    assert p.not_sure_count() == 1 and p.predicted_names().tolist() == ["cat", "cow", "dog"]
    assert rows_csv(p).splitlines() == ["path,class,confidence,most_probable",
                                        "a.jpg,not sure,0.4000,cat", "b.jpg,cow,0.5000,cow",
                                        "c.jpg,dog,0.9000,dog"]
    never = Predictions(["cat"], ["a.jpg"], np.array([0]), np.array([0.01], np.float32))
    assert never.answers().tolist() == ["cat"]  # no threshold: every answer stands


def test_an_evaluation_assesses_its_calibration():
    from tlgui.core.metrics import Evaluation

    e = Evaluation(["a", "b"], ["p0", "p1", "p2", "p3"], np.array([0, 0, 1, 1]),
                   np.array([0, 1, 1, 1]), np.array([0.6, 0.7, 0.8, 0.9], np.float32),
                   raw_confidence=np.array([0.9, 0.95, 0.97, 0.99], np.float32),
                   calibration={"temperature": 2.0, "threshold": 0.75})
    a = e.assessment()
    assert a.images == 4 and a.not_sure == 2 and a.kept_accuracy == 1.0
    # before: 0.9 alone in its bin (right: gap 0.1), 0.95-0.99 in the last (2 of 3 right)
    assert a.before.ece == pytest.approx((0.1 + 3 * (0.97 - 2 / 3)) / 4, abs=1e-6)
    # after: each in a bin of its own: gaps 0.4 (right), 0.7 (wrong), 0.2, 0.1
    assert a.after.ece == pytest.approx((0.4 + 0.7 + 0.2 + 0.1) / 4, abs=1e-6)
    text = cal.assessment_text(a, "validation images")
    assert "on these 4 validation images: 25.3% as the network gives them, 35.0% after " \
           "calibration (temperature 2.00)" in text
    assert 'Below 75.0% confidence an answer is "not sure": 2 of 4 (50%); the others are ' \
           "right 100.0% of the time." in text
    assert e.assessment(threshold=0.0).not_sure == 0
    plain = Evaluation(["a", "b"], ["p"], np.array([0]), np.array([0]), np.array([0.8]))
    assert "(not calibrated: temperature 1)" in cal.assessment_text(plain.assessment())
