"""`python -m keras_efficientnets`: the command line (see keras_efficientnets.cli)."""

from keras_efficientnets.cli import run_program

raise SystemExit(run_program())
