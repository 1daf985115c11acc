"""Packaging for FODC: one distribution, three console scripts (fodc-agent, fodc-proxy, fodc)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _requirements() -> list[str]:
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="fodc",
    version=(HERE / "fodc" / "__init__.py").read_text().split('__version__ = "')[1].split('"')[0],
    description="First Occurrence Data Collection for Apache SkyWalking BanyanDB clusters",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["fodc", "fodc.*"]),
    package_data={"fodc.v1": ["*.pyi"], "fodc.pprof": ["*.pyi"],
                  # the web console: page templates and every script, stylesheet and licence it loads
                  "fodc.proxy.console": ["templates/*.html", "static/*/*", "static/*/*/*"]},
    install_requires=_requirements(),
    entry_points={
        "console_scripts": [
            "fodc-agent=fodc.agent.main:main",
            "fodc-proxy=fodc.proxy.main:main",
            "fodc=fodc.cli.main:main",
        ]
    },
)
