"""Apps plug into the `suite` command through the "suite.apps" entry-point group.

An app is a package exposing a click command (usually a group); its entry point
is one line in pyproject.toml:

    [project.entry-points."suite.apps"]
    text = "suite.apps.text.cli:cli"

A third-party package can add an app the same way. The registry loads entry
points lazily, so `suite --help` does not import every app (and its numba
kernels) just to list them.
"""
from importlib.metadata import entry_points

GROUP = "suite.apps"


class RegistryError(RuntimeError):
    pass


def registered(group, what="apps"):
    """Return {name: EntryPoint} of an entry-point group, in name order; two different ones under one name are
    an error (``what`` names them in the message)."""
    found = {}
    for ep in entry_points(group=group):
        if ep.name in found and found[ep.name].value != ep.value:
            raise RegistryError(
                f"two {what} are registered as {ep.name!r}: {found[ep.name].value} and {ep.value}; "
                "uninstall one of them"
            )
        found[ep.name] = ep
    return dict(sorted(found.items()))


def app_entry_points():
    """Return {name: EntryPoint} for every installed app; duplicates are an error."""
    return registered(GROUP)
