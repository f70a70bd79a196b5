"""Build hook: compile the translation catalogues (``.po`` → ``.mo``) into the wheel.

Everything else about the package is in pyproject.toml. The ``.mo`` files are made at build time
and never committed, so they cannot fall out of step with their ``.po`` (``m3daemon/i18n.py``).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithCatalogues(build_py):
    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted(Path("m3daemon/locale").glob("*/LC_MESSAGES/m3daemon.po")):
            target = Path(self.build_lib) / po.with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as f:
                catalog = read_po(f, locale=po.parent.parent.name, domain="m3daemon")
            with target.open("wb") as out:
                write_mo(out, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": BuildPyWithCatalogues})
