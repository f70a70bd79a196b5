"""Shared pieces of the benchmark: servers, data sets, timed processes, an m3daemon member.

Everything the benchmark writes lives below one work folder on tmpfs (default /dev/shm/m3bench):
the servers' roots, the clients' targets, m3daemon's config, state and media folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

# The Python of every m3daemon CLI process (and daemon) the benchmark starts: the dev venv's
# until install_cli() points it at a copy installed as users install it.
PYTHON = sys.executable
FOLDER = "/dav/Cong"  # the congregation folder on every server
MIB = 1 << 20


def iso(offset: int, today: date | None = None) -> str:
    return ((today or date.today()) + timedelta(days=offset)).isoformat()


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------------------------
# Timed child processes (wall time plus the child's own rusage, via wait4)
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    # ru_maxrss of the child (KiB). Only meaningful with run_timed(..., own_rss=True): on Linux a
    # child's ru_maxrss also counts the *parent's* resident set at fork/exec time (exec records the
    # old mm's high-water mark), so a big benchmark process would inflate it.
    maxrss_kb: int
    user: float
    sys: float

    def check(self, what: str) -> Run:
        if self.returncode != 0:
            raise RuntimeError(f"{what} failed (exit {self.returncode}):\n{self.stdout[-2000:]}\n{self.stderr[-3000:]}")
        return self


def run_timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
              own_rss: bool = False) -> Run:
    """Run ``cmd``; wall time from fork to reap. Output goes to tmpfs files, not pipes, so a chatty
    child never blocks and the parent does no work while it runs.

    ``own_rss``: start it through GNU time (a 2 MB process), whose wait4 reports the command's own
    peak RSS, not inflated by this (large) process's resident set."""
    rss_file = None
    if own_rss:
        rss_file = tempfile.NamedTemporaryFile(dir="/dev/shm", delete=False)  # noqa: SIM115
        rss_file.close()
        cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *cmd]
    with tempfile.TemporaryFile(dir="/dev/shm") as out, tempfile.TemporaryFile(dir="/dev/shm") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd)
        _pid, status, ru = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        maxrss = ru.ru_maxrss
        if rss_file is not None:
            text = Path(rss_file.name).read_text().strip().splitlines()
            os.unlink(rss_file.name)
            maxrss = int(text[-1]) if text and text[-1].isdigit() else -1
        return Run(seconds, proc.returncode, out.read().decode("utf-8", "replace"),
                   err.read().decode("utf-8", "replace"), maxrss, ru.ru_utime, ru.ru_stime)


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


class Server:
    kind: str
    url: str  # https://127.0.0.1:PORT
    root: Path  # served as /dav/
    ca_file: Path
    username: str
    password: str
    infinity: bool  # Depth: infinity allowed

    @property
    def cong(self) -> Path:
        return self.root / "Cong"

    def url_for(self, rel: str) -> str:
        """URL of a path relative to the congregation folder."""
        return f"{self.url}{FOLDER}/" + urllib.parse.quote(rel)

    def request_log(self) -> list[tuple[str, str, int]]:
        raise NotImplementedError

    def clear_log(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def clear_root(self) -> None:
        if self.cong.exists():
            shutil.rmtree(self.cong)
        self.cong.mkdir(parents=True)


class ApacheHandle(Server):
    kind = "apache"
    infinity = False

    def __init__(self, workdir: Path) -> None:
        from servers import ServerPool

        self._pool = ServerPool(workdir)
        self._srv = self._pool.get("apache")
        self.url, self.root, self.ca_file = self._srv.url, self._srv.root, self._srv.ca_file
        self.username, self.password = self._srv.username, self._srv.password

    def request_log(self) -> list[tuple[str, str, int]]:
        return self._srv.request_log()

    def clear_log(self) -> None:
        self._srv.clear_log()

    def stop(self) -> None:
        self._pool.close()


class WsgidavHandle(Server):
    """The test suite's WsgiDAV, in a child process (see wsgidav_server.py)."""

    kind = "wsgidav"
    infinity = True

    def __init__(self, workdir: Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(HERE / "wsgidav_server.py"), str(workdir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        assert self._proc.stdout is not None
        info = json.loads(self._proc.stdout.readline())
        self.url, self.root, self.ca_file = info["url"], Path(info["root"]), Path(info["ca_file"])
        self.username, self.password = info["username"], info["password"]

    def _ask(self, cmd: str) -> str:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(cmd + "\n")
        self._proc.stdin.flush()
        return self._proc.stdout.readline()

    def request_log(self) -> list[tuple[str, str, int]]:
        return [tuple(e) for e in json.loads(self._ask("log"))]  # type: ignore[misc]

    def clear_log(self) -> None:
        self._ask("clear")

    def stop(self) -> None:
        if self._proc.poll() is None:
            try:
                self._ask("stop")
                self._proc.wait(10)
            except Exception:  # noqa: BLE001
                self._proc.kill()
                self._proc.wait()


def start_server(kind: str, workdir: Path) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "apache":
        return ApacheHandle(workdir / "apache-pool")
    if kind == "wsgidav":
        return WsgidavHandle(workdir / "wsgidav-pool")
    raise ValueError(kind)


# --------------------------------------------------------------------------------------------
# Data sets, written straight into the server's root (tmpfs)
# --------------------------------------------------------------------------------------------

OLD = time.time() - 3600  # Apache hands out weak ETags for files younger than a second


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))


def lay_out_bulk(server: Server, size: int) -> str:
    """One big file in tomorrow's folder; returns its path relative to the congregation folder."""
    server.clear_root()
    rel = f"Media/{iso(1)}/big-video.mp4"
    block = os.urandom(MIB)
    target = server.cong / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as f:
        f.writelines(block for _ in range(size // MIB))
        f.write(block[: size % MIB])
    os.utime(target, (OLD, OLD))
    return rel


def lay_out_small(server: Server, count: int, size: int, folders: int) -> list[str]:
    """``count`` files of ``size`` bytes spread over ``folders`` date folders in the sync window."""
    server.clear_root()
    data = os.urandom(size)
    rels = []
    per = count // folders
    for d in range(folders):
        folder = f"Media/{iso(1 + d)}"
        for i in range(per):
            rel = f"{folder}/{i:04d} - Picture {d}-{i}.jpg"
            write_file(server.cong / rel, data)
            rels.append(rel)
    return rels


def lay_out_scale(server: Server, entries: int, folders: int = 250) -> dict[str, int]:
    """``entries`` listing entries: ``folders`` date folders (today-235 .. today+14, so 15 are in
    the sync window), the rest tiny files spread evenly."""
    server.clear_root()
    files = entries - folders - 1  # minus the date folders and Media/
    per, extra = divmod(files, folders)
    in_window = 0
    first = -(folders - 15)
    for k in range(folders):
        off = first + k
        d = server.cong / "Media" / iso(off)
        d.mkdir(parents=True)
        n = per + (1 if k < extra else 0)
        for i in range(n):
            p = d / f"{i:05d} - item.jpg"
            with open(p, "wb") as f:
                f.write(b"x")
        if off >= 0:
            in_window += n
    return {"entries": entries, "files": files, "folders": folders, "files_in_window": in_window}


# --------------------------------------------------------------------------------------------
# m3daemon as a member would run it
# --------------------------------------------------------------------------------------------


@dataclass
class Member:
    home: Path
    config_path: Path
    media: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, home: Path, server: Server, name: str) -> Member:
        import tomli_w

        home.mkdir(parents=True, exist_ok=True)
        media = home / f"{name}-media"
        doc = {
            "connection": {"url": server.url, "username": server.username, "folder": FOLDER,
                           "ca_file": str(server.ca_file)},
            "local": {"media_dir": str(media), "layout": "watch", "days_ahead": 14},
            "prefs": {"meeting.mwDay": (date.today() + timedelta(days=2)).weekday(),
                      "meeting.weDay": (date.today() + timedelta(days=5)).weekday()},
        }
        path = home / f"{name}.toml"
        path.write_text(tomli_w.dumps(doc), "utf-8")
        env = dict(os.environ)
        env.update(member_env(home, server.password))
        env["M3DAEMON_CONFIG"] = str(path)
        return cls(home, path, media, env)

    def clean(self) -> None:
        """A first sync again: no media folder, no state (record, cached listing method)."""
        if self.media.exists():
            shutil.rmtree(self.media)
        state = self.home / ".local" / "state"
        if state.exists():
            shutil.rmtree(state)
        state.mkdir(parents=True)

    def cli(self, *args: str, prefix: list[str] | None = None, pyflags: list[str] | None = None,
            own_rss: bool = False) -> Run:
        return run_timed([*(prefix or []), PYTHON, *(pyflags or []), "-m", "m3daemon", *args], env=self.env,
                         own_rss=own_rss)

    def with_password_in_file(self) -> Member:
        """This member as `setup` leaves one where no keyring works: the password in
        ``secrets.json``, not in ``M3DAEMON_PASSWORD``, and keyring's backend not forced; so a
        command's start pays for finding it, as a person's does."""
        store = ("import os, sys; from m3daemon.settings.config import load_config, resolve_config_path;"
                 "from m3daemon.settings import credentials;"
                 "cfg = load_config(resolve_config_path(None, os.environ)); assert cfg.connection;"
                 "print(credentials.store_password(cfg.connection, sys.argv[1]).value)")
        run = run_timed([PYTHON, "-c", store, self.env["M3DAEMON_PASSWORD"]], env=self.env).check("storing the password")
        if run.stdout.strip() != "file":
            raise RuntimeError(f"the password went to {run.stdout.strip()!r}, not the file")
        env = {k: v for k, v in self.env.items() if k not in ("M3DAEMON_PASSWORD", "PYTHON_KEYRING_BACKEND")}
        return Member(self.home, self.config_path, self.media, env)

    def update_json(self, *args: str, own_rss: bool = False) -> tuple[Run, dict[str, Any]]:
        run = self.cli("update", "--json", *args, own_rss=own_rss)
        try:
            report = json.loads(run.stdout)
        except json.JSONDecodeError:
            raise RuntimeError(f"no JSON from m3daemon update (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
        if run.returncode != 0 or report.get("failed"):
            raise RuntimeError(f"m3daemon update failed (exit {run.returncode}): {json.dumps(report)[:3000]}\n{run.stderr}")
        return run, report

    @contextlib.contextmanager
    def daemon(self) -> Iterator[subprocess.Popen[bytes]]:
        """``m3daemon run --no-tray`` for this member, from its control port answering to its end."""
        proc = subprocess.Popen([PYTHON, "-m", "m3daemon", "run", "--no-tray"], env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"m3daemon run ended with {proc.returncode}")
                status = self.cli("status", "--json")
                if status.returncode == 0 and json.loads(status.stdout).get("daemon"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("m3daemon run did not answer in 30 s")
            yield proc
        finally:
            proc.terminate()
            proc.wait(30)

    def update_inprocess(self, **kwargs: Any) -> tuple[float, float, Any]:
        """update() in this process: (seconds to the plan, total seconds, SyncReport)."""
        from m3daemon.engine.sync import update
        from m3daemon.settings.config import load_config

        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        marks: list[float] = []
        try:
            cfg = load_config(self.config_path)
            t0 = time.perf_counter()
            report = update(cfg, on_plan=lambda plan: marks.append(time.perf_counter()), **kwargs)
            total = time.perf_counter() - t0
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        if report.failed:
            raise RuntimeError(f"in-process update failed: {report.errors[:3]}")
        return (marks[0] - t0 if marks else float("nan")), total, report


def install_cli(work: Path) -> str:
    """m3daemon installed as ``pip install .`` installs it (a built wheel: no editable finder), in
    a venv of its own under ``work`` whose other packages are the dev venv's; returns its Python.

    Why: the dev install's editable finder runs at every interpreter start (``python -c pass``:
    20-30 ms against 10 ms here), and no user has it: pipx, ``pip install .`` and the PyInstaller
    build all install the package itself.
    """
    import sysconfig

    venv = work / "installed"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(REPO)],
                         check=False, cwd=work, capture_output=True, text=True)
    if pip.returncode != 0:
        raise RuntimeError(f"installing m3daemon for the benchmark failed:\n{pip.stdout}{pip.stderr}")
    # the dependencies: the dev venv's packages, as a plain path (its .pth files, the editable
    # finder's among them, are not run)
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "m3bench-dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    python = str(venv / "bin" / "python")
    found = subprocess.run([python, "-c", "import m3daemon, httpx; print(m3daemon.__file__)"], check=True,
                           capture_output=True, text=True, cwd=work).stdout.strip()
    if not found.startswith(str(site)):
        raise RuntimeError(f"the installed copy is not the one imported: {found}")
    return python


def member_env(home: Path, password: str) -> dict[str, str]:
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "M3DAEMON_PASSWORD": password,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }


# --------------------------------------------------------------------------------------------
# The comparison clients
# --------------------------------------------------------------------------------------------


def curl_version() -> str:
    return subprocess.run(["curl", "--version"], check=False, capture_output=True, text=True).stdout.split("\n")[0]


def curl_one(server: Server, rel: str, out: Path) -> Run:
    return run_timed([
        "curl", "-sS", "--fail", "--cacert", str(server.ca_file), "-u", f"{server.username}:{server.password}",
        "-o", str(out), server.url_for(rel),
    ]).check("curl")


def walked_folders(server: Server) -> list[str]:
    """The folders a Depth-1 walk lists, relative to the congregation folder ("" for itself): it,
    its sub-folders, and the date/Recurring folders under Media/ and Hidden/ (m3daemon's WALK_LEVELS)."""
    folders = [""]
    for top in sorted(p for p in server.cong.iterdir() if p.is_dir()):
        folders.append(top.name)
        if top.name in ("Media", "Hidden"):
            folders.extend(f"{top.name}/{d.name}" for d in sorted(top.iterdir()) if d.is_dir())
    return folders


def write_curl_config(server: Server, rels: list[str], outdir: Path, path: Path) -> Path:
    lines = []
    for rel in rels:
        dest = outdir / rel.split("/", 1)[1]  # drop "Media/": same layout as m3daemon's "watch"
        lines.append(f'url = "{server.url_for(rel)}"\noutput = "{dest}"\n')
    path.write_text("".join(lines))
    return path


def curl_many(server: Server, config: Path, parallel: int) -> Run:
    return run_timed([
        "curl", "-sS", "--fail", "--cacert", str(server.ca_file), "-u", f"{server.username}:{server.password}",
        "--create-dirs", "--parallel", "--parallel-max", str(parallel), "-K", str(config),
    ]).check("curl --parallel")


_OBSCURED: dict[str, str] = {}


def rclone_env(server: Server, sub: str) -> dict[str, str]:
    if server.password not in _OBSCURED:
        _OBSCURED[server.password] = subprocess.run(
            ["rclone", "obscure", server.password], capture_output=True, text=True, check=True
        ).stdout.strip()
    env = dict(os.environ)
    env.update(
        RCLONE_CONFIG=os.devnull,
        RCLONE_WEBDAV_URL=f"{server.url}{FOLDER}/{sub}",
        RCLONE_WEBDAV_VENDOR="other",
        RCLONE_WEBDAV_USER=server.username,
        RCLONE_WEBDAV_PASS=_OBSCURED[server.password],
    )
    return env


def rclone_copy(server: Server, sub: str, dest: Path, extra: list[str] | None = None) -> Run:
    """``rclone copy :webdav: DEST`` with the remote given by RCLONE_WEBDAV_* variables."""
    return run_timed(
        ["rclone", "copy", "--ca-cert", str(server.ca_file), *(extra or []), ":webdav:", str(dest)],
        env=rclone_env(server, sub),
    ).check("rclone copy")


def rm(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def count_files(root: Path) -> tuple[int, int]:
    n = total = 0
    for dirpath, dirs, files in os.walk(root):
        if ".m3daemon" in dirs:
            dirs.remove(".m3daemon")
        for f in files:
            n += 1
            total += os.stat(os.path.join(dirpath, f)).st_size
    return n, total


def self_maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
