"""``python -m deepdream MOVIE -o OUT.mp4``: the one command (deepdream/cli/main.py)."""
from .cli.main import entry

if __name__ == "__main__":
    entry()
