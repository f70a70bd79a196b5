"""Provider presets: they prefill the address and the base folder during setup.

The first four are the presets of M³ 22–24 (``constants/cong.ts``); Nextcloud and ownCloud run on the
congregation's own server, so their address holds a ``<host>`` placeholder; the self-hosted preset
is the ``m3daemon server`` (port 8443). ``<username>`` in a folder is filled by
:meth:`Provider.folder_for`.
"""

from __future__ import annotations

from dataclasses import dataclass

from m3daemon.errors import UsageError
from m3daemon.i18n import _, _l

HOST_PLACEHOLDER = "<host>"
USERNAME_PLACEHOLDER = "<username>"


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    url: str
    folder: str
    note: str = ""

    @property
    def needs_host(self) -> bool:
        """True when the address is the user's own server (it holds ``<host>``)."""
        return HOST_PLACEHOLDER in self.url

    def url_for(self, host: str) -> str:
        """The address with ``<host>`` filled in (``cloud.example.org`` or ``cloud.example.org:8443``)."""
        host = host.strip().removeprefix("https://").rstrip("/")
        if not host or any(ch in host for ch in "/@?# "):
            raise UsageError(
                _('"{host}" is not a server name.').format(host=host),
                _("Give only the server name, for example cloud.example.org."),
            )
        return self.url.replace(HOST_PLACEHOLDER, host)

    def folder_for(self, username: str) -> str:
        """The base folder with ``<username>`` filled in."""
        if USERNAME_PLACEHOLDER not in self.folder:
            return self.folder
        if not username or "/" in username:
            raise UsageError(
                _('The {provider} folder needs your user name, without any "/".').format(provider=self.name),
                _("Give the user name you sign in with."),
            )
        return self.folder.replace(USERNAME_PLACEHOLDER, username)


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        id="box",
        name="Box",
        url="https://webdav.box.com",
        folder="/dav/",
        note=_l(
            "Box may refuse your normal sign-in password over WebDAV: create an app password in your "
            "Box account settings and use it here."
        ),
    ),
    Provider(
        id="koofr",
        name="Koofr",
        url="https://app.koofr.net",
        folder="/dav/Koofr/",
        note=_l(
            "Koofr needs an app password for WebDAV: create one under Preferences → Password → "
            "App passwords and use it here instead of your normal password."
        ),
    ),
    Provider(id="4shared", name="4shared", url="https://webdav.4shared.com", folder="/"),
    Provider(id="powerfolder", name="PowerFolder", url="https://my.powerfolder.com", folder="/webdav/"),
    Provider(
        id="nextcloud",
        name="Nextcloud",
        url=f"https://{HOST_PLACEHOLDER}",
        folder=f"/remote.php/dav/files/{USERNAME_PLACEHOLDER}/",
        note=_l(
            "Use the address of your Nextcloud server. Create an app password under Settings → Security "
            "and use it here instead of your normal password."
        ),
    ),
    Provider(
        id="owncloud",
        name="ownCloud",
        url=f"https://{HOST_PLACEHOLDER}",
        folder="/remote.php/webdav/",
        note=_l(
            "Use the address of your ownCloud server. If two-factor sign-in is on, create an app password "
            "under Settings → Security and use it here."
        ),
    ),
    Provider(
        id="self-hosted",
        name=_l("m3daemon server (self-hosted)"),
        url=f"https://{HOST_PLACEHOLDER}:8443",
        folder="/",
        note=_l(
            "For a server started with m3daemon server: it has its own certificate authority. Setup shows "
            "that authority's fingerprint and pins it once you confirm it matches the one the server's "
            "coordinator gave you (m3daemon server info shows it). Easiest: set up from the coordinator's "
            "invitation, which carries it."
        ),
    ),
)


def get_provider(provider_id: str) -> Provider:
    """The preset with this id (case-insensitive); unknown ids raise :class:`UsageError` (exit 2)."""
    wanted = provider_id.strip().lower()
    for provider in PROVIDERS:
        if provider.id == wanted:
            return provider
    raise UsageError(
        _('Unknown provider "{id}".').format(id=provider_id),
        _("Choose one of: {ids}.").format(ids=", ".join(p.id for p in PROVIDERS)),
    )
