from importlib.metadata import EntryPoint

import pytest

from suite import registry


def _eps(*pairs):
    return [EntryPoint(name=n, value=v, group=registry.GROUP) for n, v in pairs]


def test_duplicate_app_names_are_rejected(monkeypatch):
    monkeypatch.setattr(registry, "entry_points", lambda group: _eps(("text", "a.cli:cli"), ("text", "b.cli:cli")))
    with pytest.raises(registry.RegistryError, match="two apps are registered as 'text'"):
        registry.app_entry_points()


def test_apps_listed_in_name_order(monkeypatch):
    monkeypatch.setattr(registry, "entry_points", lambda group: _eps(("music", "m:cli"), ("caption", "c:cli")))
    assert list(registry.app_entry_points()) == ["caption", "music"]


def test_batch_jobs_come_from_the_same_registry(monkeypatch):
    from suite import batch

    monkeypatch.setattr(registry, "entry_points", lambda group: [
        EntryPoint(name="speech", value=f"a:{group}", group=group), EntryPoint(name="speech", value="b:x", group=group)])
    with pytest.raises(registry.RegistryError, match="two batch jobs are registered as 'speech'"):
        batch.job_entry_points()
