"""The model registry's main names under their earlier module name (the registry is
``deepdream.nets.registry``), and ``python -m deepdream.models``, the models command
(``deepdream/cli/models.py``)."""
from .nets.registry import (ModelEntry, ResolvedModel, cache_dir, entry,
                            fetch, local_weights, registry, resolve)

__all__ = ["ModelEntry", "ResolvedModel", "cache_dir", "entry", "fetch", "local_weights",
           "registry", "resolve"]

if __name__ == "__main__":
    from .cli.models import command
    command()
