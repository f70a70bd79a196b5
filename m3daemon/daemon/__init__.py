"""The background daemon: scheduler, watcher, control API, and the pieces the tray uses."""
