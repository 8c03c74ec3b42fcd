"""The flicker measures under their earlier name (they are ``deepdream.io.metrics``), and
``python -m deepdream.metrics``, the metrics command (``deepdream/cli/metrics.py``)."""
from .io.metrics import Coherence, measure

__all__ = ["Coherence", "measure"]

if __name__ == "__main__":
    from .cli.metrics import command
    command()
