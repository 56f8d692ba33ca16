"""The published runs: every question's results at the settings RESULTS.md shows, in
dependency order, as ``experiments/reproduce.py`` makes them (a new question's script adds its
runs here; tests/experiments/test_reproduce.py checks that every q*/r* script has one)."""

from jaxcolor.runner.sweep import SHARED_CHECKPOINTS, Run

CHAR_RNN = ("--checkpoint={results}/r0_char_rnn/model.npz",)
# Runs that train what an earlier run trains (q2's CNN again in q6a and q6c, q3's U-Net in q6d
# and q7, q8's transposed U-Net in its recipe) share one checkpoint folder, so the later ones
# resume the finished training instead of repeating it. Shorter runs of the same training (q3's
# 2-epoch runs, q5) keep their own: the shared folder keeps no early epochs.
SHARED = (f"--checkpoint_dir={{results}}/{SHARED_CHECKPOINTS}",)
FOUR_DEVICES = (("XLA_FLAGS", "--xla_force_host_platform_device_count=4"),)
# q7 over three training seeds; its ablations (flips, widths, the plain loss, all classes) are
# single commands (docs/experiments.md), not published runs.
Q7_RUNS = [Run(f"q7_lab{f'_seed{seed}' if seed else ''}", "q7_lab",
               (*(f"--seed={seed}",) * bool(seed), *SHARED), minutes=7 if seed == 0 else 8)
           for seed in (0, 1, 2)]
# In dependency order; minutes: expected on a 2-core CPU (for the time left), as measured in
# the sweep that made RESULTS.md.
RUNS = [
    Run("q0_from_scratch", "q0_from_scratch", ("--dataset=digits",), minutes=0.2),
    Run("q1_regression", "q1_regression", minutes=2),
    Run("q2_classification", "q2_classification", SHARED, minutes=2),
    Run("q3_unet", "q3_unet", ("--batch_sizes=100,50", *SHARED), ("q2_classification",),
        minutes=4),
    Run("q3_unet_2ep_1device", "q3_unet", ("--epochs=2",), ("q2_classification",), 0.5),
    Run("q3_unet_2ep_4devices", "q3_unet", ("--epochs=2",), ("q2_classification",), 0.5,
        FOUR_DEVICES),
    Run("q4_super_resolution", "q4_super_resolution", minutes=3),
    Run("q5_activations", "q5_activations", minutes=1.2),
    Run("q6a_hyperparameters", "q6a_hyperparameters", SHARED, minutes=8),
    Run("q6b_pool_relu", "q6b_pool_relu", minutes=0.1),
    Run("q6c_perceptual", "q6c_perceptual", SHARED,
        ("q2_classification", "q3_unet", "q4_super_resolution"), minutes=2),
    Run("q6d_large_images", "q6d_large_images", SHARED, minutes=0.2),
    *Q7_RUNS,
    Run("q7_over_seeds", "q7_over_seeds", ("--results_dir={results}",),
        tuple(run.name for run in Q7_RUNS), minutes=0.2),
    Run("q8_newer_edition", "q8_newer_edition", SHARED, ("q2_classification", "q3_unet"),
        minutes=5),
    Run("q8_recipe", "q8_recipe", SHARED, minutes=14),
    Run("precision", "precision", minutes=15),
    Run("r0_char_rnn", "r0_train_char_rnn",
        ("--optimizer=adam", "--learning_rate=0.002", "--batch_size=32", "--steps=15000"),
        minutes=2),
    *(Run(name, name, CHAR_RNN, ("r0_char_rnn",), minutes=0.1) for name in
      ("r1_temperature", "r2_continuation", "r3_colon_newline", "r4_dependency")),
]
IMAGELESS = ("q0_from_scratch", "q6b_pool_relu", "q7_over_seeds", "r0_train_char_rnn",
             "r1_temperature", "r2_continuation", "r3_colon_newline", "r4_dependency")
