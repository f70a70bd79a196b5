"""The background daemon: scheduler, watcher, control API, and the pieces the tray uses."""

# The file a running daemon leaves in the state folder (daemon/control.py). Here, so that a
# command can see there is none without importing the control client (4 ms of its start).
CONTROL_FILE = "daemon.json"
