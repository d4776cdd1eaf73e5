import errno
import shutil
import signal
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from neuralogcm import cli
from neuralogcm.errors import UserError
from neuralogcm.io import atomic_path


def test_atomic_path_file_and_directory(tmp_path):
    target = tmp_path / "a" / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()  # nothing under the final name until complete
    assert target.read_text() == "new"

    store = tmp_path / "store.zarr"
    store.mkdir()
    (store / "old").write_text("old")
    with atomic_path(store) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in store.iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_atomic_path_keeps_the_old_output_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_path_refuses_an_empty_write(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_path(tmp_path / "x"):
        pass


def test_sigterm_removes_the_partial_store(tmp_path):
    """A Slurm time limit (SIGTERM) while a store is written leaves neither it nor a temporary."""
    script = textwrap.dedent("""
        import sys, time
        from neuralogcm.io import atomic_path
        with atomic_path(sys.argv[1]) as tmp:
            tmp.mkdir()
            (tmp / "0.0.0").write_bytes(bytes(1000))
            print("writing", flush=True)
            time.sleep(60)
    """)
    target = tmp_path / "ocean.zarr"
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline() == "writing\n"
    assert [p.name for p in tmp_path.iterdir()][0].startswith(".ocean.zarr.tmp-")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_the_same_output_are_swept(tmp_path):
    """Temporaries of a killed (kill -9) earlier attempt go when the output is written again."""
    (tmp_path / ".out.zarr.tmp-0123abcd").mkdir()
    (tmp_path / ".out.zarr.tmp-0123abcd" / "chunk").write_text("stale")
    (tmp_path / ".out.zarr.tmp-4567ef01").write_text("stale")
    (tmp_path / ".other.zarr.tmp-0123abcd").write_text("another output's")
    with atomic_path(tmp_path / "out.zarr") as tmp:
        tmp.write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.zarr.tmp-0123abcd", "out.zarr"]


def test_a_handler_set_by_the_caller_is_kept(tmp_path):
    """The trainer's save-and-exit handler stays in charge while it writes a checkpoint."""
    def handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with atomic_path(tmp_path / "last.pt") as tmp:
            assert signal.getsignal(signal.SIGTERM) is handler
            tmp.write_text("weights")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_full_disk_names_the_file(tmp_path):
    target = tmp_path / "stats.nc"
    with pytest.raises(UserError, match=r"stats\.nc: no space left on the device"), \
            atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_reported_without_errno_names_the_file(tmp_path, monkeypatch):
    """netCDF4 (HDF5) and torch report a full disk as a RuntimeError without errno."""
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=0))
    with pytest.raises(UserError, match=r"mask\.nc: no space left on the device .*HDF error"), \
            atomic_path(tmp_path / "mask.nc") as tmp:
        tmp.write_text("half")
        raise RuntimeError("NetCDF: HDF error")
    assert list(tmp_path.iterdir()) == []


def test_cli_unknown_verb_and_user_error(tmp_path, capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown verb 'frobnicate'" in capsys.readouterr().err
    # A verb given a config file that does not exist fails with one line naming the file.
    rc = cli.main(["stats", "--config", str(tmp_path / "missing.json"),
                   "--data-dir", str(tmp_path), "--out", str(tmp_path / "s.nc")])
    assert rc == 1
    assert "missing.json does not exist" in capsys.readouterr().err


def _block(name: str, body: str) -> str:
    return f"<!-- generated:{name} -->\n{body}<!-- /generated:{name} -->\n"


def test_docs_fills_the_blocks_of_one_run_and_copies_its_figures_and_tables(tmp_path, capsys):
    from neuralogcm.docs import update_readme

    runs = {}
    for name in ("demo", "study"):
        run = runs[name] = tmp_path / "results" / name
        (run / "tables").mkdir(parents=True)
        (run / "figures").mkdir()
        (run / "tables" / "t.md").write_text(f"| {name} |\n|---|\n| 1 |\n")
        (run / "tables" / "t.csv").write_text(f"model,{name}\n")
        (run / "tables" / "notes.txt").write_text("not a table")
        (run / "figures" / "f.png").write_bytes(name.encode())
    readme, docs = tmp_path / "README.md", tmp_path / "docs"

    def page(demo: str, study: str) -> str:
        return (f"intro\n{_block('demo/tables/t.md', demo)}"
                f"mid\n{_block('study/tables/t.md', study)}end\n")

    filled = {name: f"| {name} |\n|---|\n| 1 |\n" for name in runs}
    old = page("old\n", "old\n")
    readme.write_text(old)
    assert update_readme(readme, runs["study"], ["figures/f.png"], docs) == ["study/tables/t.md"]
    # only the study's block is filled; the demo's is left as it was
    assert readme.read_text() == page("old\n", filled["study"])
    assert (docs / "study" / "figures" / "f.png").read_bytes() == b"study"
    assert sorted(p.name for p in (docs / "study" / "tables").iterdir()) == ["t.csv", "t.md"]
    assert (docs / "study" / "tables" / "t.csv").read_text() == "model,study\n"
    assert not (docs / "demo").exists() and not (docs / "figures").exists()

    # the CLI, by the run folder's name
    assert cli.main(["docs", "--run-dir", str(runs["demo"]), "--readme", str(readme),
                     "--docs-dir", str(docs), "figures/f.png"]) == 0
    assert "demo/tables/t.md" in capsys.readouterr().out
    assert readme.read_text() == page(filled["demo"], filled["study"])
    assert (docs / "demo" / "figures" / "f.png").read_bytes() == b"demo"

    # a missing file names the block and the file, and nothing is written
    readme.write_text(old + _block("demo/tables/missing.md", ""))
    with pytest.raises(UserError, match=r"'demo/tables/missing.md' needs .*demo/tables/missing.md"):
        update_readme(readme, runs["demo"], [], docs)
    assert readme.read_text() == old + _block("demo/tables/missing.md", "")
    update_readme(readme, runs["study"], [], docs)  # another run's missing file is not needed
    with pytest.raises(UserError, match=r"figure .*figures/gone.png does not exist"):
        update_readme(readme, runs["study"], ["figures/gone.png"], docs)
    # the old markers, without the run, are refused with the new form
    readme.write_text(_block("tables/t.md", ""))
    with pytest.raises(UserError, match="generated:RUN/tables/t.md"):
        update_readme(readme, runs["demo"], [], docs)
