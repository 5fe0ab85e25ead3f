"""Per-layer parity: record reference intermediates, compare candidates, report.

- `record.record_torch`: every module's output of a torch run, by name.
- `compare.compare`: reference vs candidate, layer by layer, with tolerances from
  `tolerances.yaml`; a `ParityReport` (JSON and Markdown) and a `ParityError`.
"""
