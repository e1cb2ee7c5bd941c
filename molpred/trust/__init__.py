"""How much to believe a prediction, in one place.

- :mod:`~molpred.trust.uncertainty`: ensemble spread, temperature scaling, conformal intervals
  and prediction sets, and metrics of their quality;
- :mod:`~molpred.trust.domain`: the applicability domain (similarity to the training set);
- :mod:`~molpred.trust.calibrate`: fitting both on held-out molecules after training;
- :mod:`~molpred.trust.columns`: the trust columns of scored molecules.
"""
