"""m3daemon: congregation media sync for M³ (Meeting Media Manager)."""

__version__ = "0.1.0"
APP_NAME = "m3daemon"
