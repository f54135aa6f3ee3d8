"""The synthesized-assembly cache, including two processes synthesizing the same inputs."""

import json

import pytest

from emulator import assembly


@pytest.fixture
def record(tmp_path):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"an artifact")
    path = tmp_path / "model-record.json"
    path.write_text(json.dumps({"model_data_url": str(archive)}))
    return path


@pytest.fixture
def cache_keys(monkeypatch):
    """The cache keys `cached_assembly` computes, in order."""
    keys = []
    digest = assembly._digest

    def remembered(paths, extra):
        keys.append(digest(paths, extra))
        return keys[-1]

    monkeypatch.setattr(assembly, "_digest", remembered)
    return keys


def test_unchanged_inputs_reuse_the_assembly(record, tmp_path, monkeypatch):
    synthesized = []

    def fake_synthesize(repo, outdir, context):
        synthesized.append(outdir)
        (outdir / "manifest.json").write_text("{}")

    monkeypatch.setattr(assembly, "synthesize", fake_synthesize)
    first = assembly.cached_assembly(record, cache_root=tmp_path / "cache")
    second = assembly.cached_assembly(record, cache_root=tmp_path / "cache")
    assert first == second and (first / "manifest.json").is_file()
    assert len(synthesized) == 1


def test_a_concurrent_synthesis_of_the_same_inputs_is_used(
    record, tmp_path, monkeypatch, cache_keys
):
    cache = tmp_path / "cache"

    def synthesize_while_another_process_finishes(repo, outdir, context):
        (outdir / "manifest.json").write_text('{"by": "this process"}')
        other = cache / f"assembly-{cache_keys[-1]}"  # the other process renames first
        other.mkdir()
        (other / "manifest.json").write_text('{"by": "the other process"}')

    monkeypatch.setattr(assembly, "synthesize", synthesize_while_another_process_finishes)
    result = assembly.cached_assembly(record, cache_root=cache)
    assert json.loads((result / "manifest.json").read_text()) == {"by": "the other process"}
    assert [path.name for path in cache.iterdir()] == [result.name]  # staging removed


def test_a_failed_rename_without_an_assembly_is_an_error(record, tmp_path, monkeypatch, cache_keys):
    cache = tmp_path / "cache"

    def synthesize_then_find_the_target_blocked(repo, outdir, context):
        (outdir / "manifest.json").write_text("{}")
        blocker = cache / f"assembly-{cache_keys[-1]}"
        blocker.mkdir()
        (blocker / "unrelated").write_text("not an assembly")

    monkeypatch.setattr(assembly, "synthesize", synthesize_then_find_the_target_blocked)
    with pytest.raises(OSError):
        assembly.cached_assembly(record, cache_root=cache)
