"""The Telegram face: a python-telegram-bot application run inside the daemon.

It answers the person's commands through the socket methods (a ``call`` it is handed, never the
stores behind them), sends alerts and recommendations from the outbox, and turns voice notes
into text. It may import ``daemon.errors``, ``daemon.logs``, ``daemon.config``, jobs and stores.
"""
