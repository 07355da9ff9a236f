"""Test double of Duro's GraphQL API and webhook sender (see README.md).

Import with ``tests/`` on ``sys.path`` (the pytest conftest / test files add it; for the
command line use ``PYTHONPATH=tests python -m duro_double ...``).
"""

from .data import DuroData, rfc3339
from .sender import (SCHEDULE_S, Ledger, RemoteDeliveryLog, WebhookSender, co_event, item_event,
                     random_events, sign)
from .server import KNOB_DEFAULTS, SDL_PATH, VARIANTS, DuroDouble, schema_sdl

__all__ = ["DuroData", "DuroDouble", "KNOB_DEFAULTS", "Ledger", "RemoteDeliveryLog", "SCHEDULE_S",
           "SDL_PATH", "VARIANTS", "WebhookSender", "co_event", "item_event", "random_events",
           "rfc3339", "schema_sdl", "sign"]
