"""What every part of the package shares, Keras-free: argument checks (`validation`), atomic
writes and digests (`fileio`), the one image decoder (`images`) and optional packages (`optional`)."""
