"""Pure condition-monitoring analysis for the manufacturing app (numpy/scipy/scikit-learn, no ORM).

- `vibration`: ISO 10816-3 velocity RMS and zone, spectra, kurtogram envelope analysis, bearing fault call.
- `prognostics`: remaining-useful-life models on C-MAPSS-style cycle data (`RulModel`), scoring;
  `rul_network`: the optional 1-D CNN member (torch, imported only when it trains or predicts).
- `planning`: run-to-failure vs fixed-interval vs RUL-driven replacement under a renewal cost model.
- `failure_modes`: failure-mode suggestion from technician text (`FailureModeClassifier`);
  `field_text`: normalising technician shorthand and spelling (SymSpell), an option of the classifier;
  `encoder_tuning`: the classifier's fine-tuned copy of the embedding model (torch, imported when it trains).
- `pointcloud`: PLY/XYZ reading, ICP registration and deviation against a reference scan.

Heavy libraries (scipy.signal, scikit-learn, lightgbm, torch) are imported inside the functions that need them.
"""
