"""FOMM, the First Order Motion Model, as a model family (families.py): thin modules of the
family interface pointing at FOMM's code, which lives where it always has (spec schema
here; torch_model/, tf_model/, signatures.py, synth.py, runtime/, pipeline/)."""
