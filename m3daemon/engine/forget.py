"""Removing a congregation from this computer: its configuration, its record and state, its password.

Its media stay: the media folder is a person's folder (M³ reads it, people copy files into it),
so it is removed only when asked, and then sent to the trash, never deleted.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from m3daemon.errors import ConfigError
from m3daemon.i18n import _
from m3daemon.settings import registry
from m3daemon.settings.config import Config
from m3daemon.settings.credentials import delete_password

log = logging.getLogger(__name__)


@dataclass
class Forgotten:
    config: Path
    state: Path | None = None
    password: bool = False
    media_trashed: Path | None = None
    media_kept: Path | None = None
    notes: list[str] = field(default_factory=list)


def forget(cfg: Config, *, media: bool = False) -> Forgotten:
    """Forget ``cfg`` on this computer. The password goes first (it is the secret), the state and
    record next, the configuration file last, so an interruption leaves a file that can be forgotten
    again."""
    done = Forgotten(cfg.path)
    if cfg.connection is not None:
        done.password = delete_password(cfg.connection)
    state = cfg.state_dir
    if state.exists():
        shutil.rmtree(state)
        done.state = state
    media_dir = cfg.local.media_dir
    if media and media_dir.exists():
        from send2trash import send2trash

        send2trash(str(media_dir))
        done.media_trashed = media_dir
    elif media_dir.exists():
        done.media_kept = media_dir
    try:
        cfg.path.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(_("The configuration file {path} cannot be removed: {reason}.").format(
            path=cfg.path, reason=exc.strerror or exc), _("Check that you may write in its folder.")) from None
    registry.unregister_config(cfg.path)
    log.info("forgot the congregation %s (%s)", cfg.name, cfg.path)
    return done
