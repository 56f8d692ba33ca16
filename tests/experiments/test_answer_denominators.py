"""Written answers that divide say so in words when the denominator is zero (no traceback, no
results lost)."""

import numpy as np

from answers import q1, q3
from jaxcolor import data


def test_q3_answer_with_a_first_block_that_gets_no_gradient():
    norms = {"cnn": {"block1": 0.0, "block2": 0.0}, "unet": {"block1": 0.5, "block2": 0.1}}
    text = q3.skip_connection_notes([], [], "q2/results.json", norms)
    assert "The CNN's first block gets no gradient at initialisation" in text
    assert "| cnn | 0.0000 | 0.0000 |" in text


def test_q1_answer_with_a_colourless_ground_truth():
    row = {"epochs": 1, "colourfulness": 0.0, "true_colourfulness": 0.0}
    images = data.synthetic_images(16)
    palette = np.array([[0.2, 0.3, 0.4], [0.5, 0.5, 0.5], [0.8, 0.2, 0.1]], np.float32)
    text = q1.regression_notes([row], images, palette)
    assert "colourfulness 0.0 against 0.0 for the ground truth." in text
