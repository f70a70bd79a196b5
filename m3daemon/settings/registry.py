"""Every configuration on this computer, and the rule that no two share a media folder.

A small registry (``known-configs.json`` in the config folder) remembers configurations given
with ``--config``, so that ``run --all`` and ``service install`` cover them, and so that two
congregations in one Kingdom Hall never write into the same media folder.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from pathlib import Path

from m3daemon.errors import ConfigError
from m3daemon.i18n import _
from m3daemon.local import paths
from m3daemon.settings.checker import _absolute_path
from m3daemon.settings.config import KNOWN_CONFIGS_FILE, Config

log = logging.getLogger(__name__)

def known_configs_path() -> Path:
    return paths.config_dir() / KNOWN_CONFIGS_FILE


def _read_registry() -> dict[str, str]:
    path = known_configs_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("%s cannot be read; it will be rewritten", path)
        return {}
    configs = data.get("configs") if isinstance(data, dict) else None
    if not isinstance(configs, dict):
        return {}
    return {str(k): str(v) for k, v in configs.items() if isinstance(v, str)}


def register_config(cfg: Config) -> None:
    """Record ``cfg.path → cfg.local.media_dir`` in ``config_dir()/known-configs.json`` (call it after
    setup and each change). Entries whose configuration file is gone are dropped. It does not check
    anything: call :func:`check_media_dir_unique` first."""
    configs = {k: v for k, v in _read_registry().items() if Path(k).exists()}
    configs[str(_absolute_path(cfg.path))] = str(cfg.local.media_dir)
    data = json.dumps({"version": 1, "configs": dict(sorted(configs.items()))}, indent=2, ensure_ascii=False)
    paths.write_private_file(known_configs_path(), (data + "\n").encode("utf-8"))


def all_config_paths() -> list[Path]:
    """Every configuration on this computer: registered ones plus ``*.toml`` in the config folder
    (what ``m3daemon run --all`` and ``service install`` cover)."""
    found = {Path(k) for k in _read_registry()}
    folder = paths.config_dir()
    if folder.is_dir():
        found.update(p for p in folder.glob("*.toml"))
    return sorted(p for p in found if p.exists())


def _peek_media_dir(config_path: Path) -> Path | None:
    """The media folder another configuration file names, without validating the rest of it."""
    try:
        doc = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    local = doc.get("local")
    raw = local.get("media_dir") if isinstance(local, dict) else None
    if isinstance(raw, str) and raw.strip():
        return _absolute_path(raw.strip(), config_path.parent)
    return _absolute_path(paths.default_media_dir(config_path))


def _canonical(path: Path) -> Path:
    return Path(os.path.normcase(path.expanduser().resolve(strict=False)))


def check_media_dir_unique(cfg: Config) -> None:
    """Refuse a media folder that another configuration uses (SPEC: two configurations may not share
    one media folder), or one nested inside the other's.

    The other configurations are those in ``known-configs.json`` whose file still exists and every
    ``*.toml`` in ``config_dir()``. Their current file is read when possible; the registered folder is
    used when it cannot be.
    """
    own_key = paths.config_key(cfg.path)
    others: dict[str, tuple[Path, Path | None]] = {}
    for config_file, registered in _read_registry().items():
        other = Path(config_file)
        if other.is_file():
            others[paths.config_key(other)] = (other, _peek_media_dir(other) or Path(registered))
    folder = paths.config_dir()
    if folder.is_dir():
        for other in sorted(folder.glob("*.toml")):
            key = paths.config_key(other)
            if key not in others and other.is_file():
                others[key] = (other, _peek_media_dir(other))
    mine = _canonical(cfg.local.media_dir)
    for key, (other, media) in sorted(others.items()):
        if key == own_key or media is None:
            continue
        theirs = _canonical(media)
        if mine == theirs:
            problem = _("{dir} is already the media folder of the configuration {other}").format(
                dir=cfg.local.media_dir, other=other
            )
        elif theirs in mine.parents:
            problem = _("{dir} is inside {theirs}, the media folder of the configuration {other}").format(
                dir=cfg.local.media_dir, theirs=media, other=other
            )
        elif mine in theirs.parents:
            problem = _("{dir} contains {theirs}, the media folder of the configuration {other}").format(
                dir=cfg.local.media_dir, theirs=media, other=other
            )
        else:
            continue
        raise ConfigError(
            f"[local] media_dir: {problem}",
            _(
                "Each congregation needs its own media folder: choose a folder that is neither the same as, "
                "inside, nor around another configuration's (set [local] media_dir in {path})."
            ).format(path=cfg.path),
        )


def unregister_config(config_path: Path) -> None:
    """Drop ``config_path`` from ``known-configs.json`` (after ``m3daemon forget``)."""
    key = str(_absolute_path(config_path))
    configs = {k: v for k, v in _read_registry().items() if k != key and Path(k).exists()}
    data = json.dumps({"version": 1, "configs": dict(sorted(configs.items()))}, indent=2, ensure_ascii=False)
    paths.write_private_file(known_configs_path(), (data + "\n").encode("utf-8"))
