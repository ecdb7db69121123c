"""``chat-client``: the terminal client for power users.

Pure modules (no asyncio, no sockets, no prompt_toolkit): :mod:`.commands`,
:mod:`.completion`, :mod:`.render`, :mod:`.roster`, :mod:`.backoff`,
:mod:`.messages`, :mod:`.config`. The session (:mod:`.client`) runs on
:mod:`.connection` (with :mod:`.aio`); :mod:`.interactive` and :mod:`.script` are its two front ends.
"""

__version__ = "1.0.0"
