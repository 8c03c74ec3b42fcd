"""The command line: flags, bars, the layer table, ``python -m deepdream`` (and ``--live``),
the contact sheet, the models and metrics commands. May import every layer; nothing in the
library imports it."""
