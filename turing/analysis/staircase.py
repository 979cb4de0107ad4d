"""HYPE-time's exposure staircase (turing.protocols.hype_time runs it on participants, and
turing.analysis.hype_simulation on simulated ones): its constants, one step, and the exposure after a run of
answers. Plain numpy, no Django.

What is used, and where it comes from:
- exposures within 100-1000 ms, starting at 500 ms, shorter after correct answers and longer after an error:
  the project's notes on Zhou et al. 2019 (/work/shared/references/human-evaluation.md). The paper's
  abstract gives a threshold "e.g. 250ms" as what HYPE-time finds, and its Figure 3 caption says the
  staircase decreases the exposure when correct, increases it when incorrect, and that "the modal exposure
  measures their perceptual threshold". The range, the start, the step rule, the step size and the number of
  trials per evaluator were not found in the text available to us (searched December 2026: the NeurIPS
  proceedings' abstract and metadata, arXiv 1904.01121's first pages): all stay unverified;
- shorter after THREE correct answers in a row, longer after ONE error: the paper's 3-up/1-down staircase as we
  recall it (unverified). A transformed up-down staircase converges where P(three right in a row) = 1/2,
  TARGET_ACCURACY = 0.5 ** (1/3), about 79.4% correct (Levitt 1971, "Transformed up-down methods in
  psychoacoustics", JASA 49(2)); a 1-up/1-down rule would converge at 50% correct, which in a real-or-generated
  task is guessing, and would drive every exposure to the floor;
- a step of STEP_MS (an assumption: the notes give no step size);
- only scored trials move the staircase (turing.protocols.hype_time).
"""

import numpy as np

START_MS, MIN_MS, MAX_MS = 500, 100, 1000
STEP_MS = 50
CORRECT_IN_A_ROW = 3
# Where the staircase converges: the accuracy at which CORRECT_IN_A_ROW right answers in a row have even odds.
TARGET_ACCURACY = 0.5 ** (1 / CORRECT_IN_A_ROW)


def step(exposure, streak, correct):
    """The (exposure, streak of correct answers) after one more answer; numpy arrays (one entry per
    participant) or scalars."""
    streak = np.where(correct, streak + 1, 0)
    down = streak == CORRECT_IN_A_ROW
    exposure = np.where(
        down,
        np.maximum(exposure - STEP_MS, MIN_MS),
        np.where(correct, exposure, np.minimum(exposure + STEP_MS, MAX_MS)),
    )
    return exposure, np.where(down, 0, streak)


def staircase(correct) -> int:
    """The exposure after these answers (True: correct), in order."""
    exposure, streak = START_MS, 0
    for right in correct:
        exposure, streak = step(exposure, streak, right)
    return int(exposure)
