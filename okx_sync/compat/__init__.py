"""Drop-in faces of other OKX client libraries, running through :class:`okx_sync.Client`.

- :mod:`okx_sync.compat.okx`: python-okx's REST modules (``Trade.TradeAPI`` ...).

This layer sits at the top, beside ``client``: it imports ``okx_sync.Client``;
nothing below imports it.
"""
