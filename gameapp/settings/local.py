"""Local development (`make run`, `manage.py ...`). DEBUG defaults to on.

A `.env` file in the project root is read first, for convenience; variables
already in the environment win. Other settings modules never read it.
"""

from pathlib import Path

from gameapp import config

_DOTENV = Path(__file__).resolve().parent.parent.parent / ".env"
if _DOTENV.is_file():
    config.env.read_env(str(_DOTENV))

from .base import *  # noqa: E402, F403

DEBUG = config.get_bool("DEBUG", True)
WHITENOISE_USE_FINDERS = DEBUG
