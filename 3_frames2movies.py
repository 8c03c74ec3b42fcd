#!/usr/bin/env python3
"""The 2015 README's spelling of 3_frames2movie.py ("./3_frames2movies.sh processed")."""
import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).with_name("3_frames2movie.py")), run_name="__main__")
