"""`python -m keras_efficientnets`: the command line (see keras_efficientnets.cli)."""

from keras_efficientnets.cli import main

raise SystemExit(main())
