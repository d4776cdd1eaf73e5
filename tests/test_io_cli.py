import pytest

from neuralogcm import cli
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


def test_cli_unknown_verb_and_user_error(tmp_path, capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown verb 'frobnicate'" in capsys.readouterr().err
    # A verb given a config file that does not exist fails with one line naming the file.
    rc = cli.main(["stats", "--config", str(tmp_path / "missing.json"),
                   "--data-dir", str(tmp_path), "--out", str(tmp_path / "s.nc")])
    assert rc == 1
    assert "missing.json does not exist" in capsys.readouterr().err


def test_docs_fills_generated_blocks_and_copies_figures(tmp_path):
    from neuralogcm.docs import update_readme
    from neuralogcm.errors import UserError

    run = tmp_path / "results" / "demo"
    (run / "tables").mkdir(parents=True)
    (run / "figures").mkdir()
    (run / "tables" / "t.md").write_text("| a |\n|---|\n| 1 |\n")
    (run / "figures" / "f.png").write_bytes(b"png")
    readme = tmp_path / "README.md"
    start, end = "<!-- generated:tables/t.md -->\n", "<!-- /generated:tables/t.md -->\n"
    readme.write_text(f"intro\n{start}old\n{end}end\n")
    assert update_readme(readme, run, ["figures/f.png"], tmp_path / "docs") == ["tables/t.md"]
    assert readme.read_text() == (
        f"intro\n{start}| a |\n|---|\n| 1 |\n{end}end\n"
    )
    assert (tmp_path / "docs" / "f.png").read_bytes() == b"png"
    readme.write_text("<!-- generated:tables/missing.md -->\n<!-- /generated:tables/missing.md -->")
    with pytest.raises(UserError, match="missing.md"):
        update_readme(readme, run, [], tmp_path / "docs")
