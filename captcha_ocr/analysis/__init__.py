"""What the runs mean: per-image results, the error analysis on aligned edits, figures, the test
report and the perturbations of the robustness benchmark. ``results`` and ``errors`` need no torch."""
