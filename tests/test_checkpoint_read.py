"""Reading checkpoints (checkpoint.read): a bad file is named, and never loaded unsafely."""

from __future__ import annotations

import pytest
import torch

from neuralogcm.checkpoint import read
from neuralogcm.errors import DataError


class Foreign:
    """An object a weights-only load refuses (pickled by reference to this module)."""


def test_a_checkpoint_with_foreign_objects_is_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({"state_dict": {}, "hook": Foreign()}, path)
    with pytest.raises(DataError) as err:
        read(path)
    message = str(err.value)
    assert message.startswith(f"checkpoint {path} cannot be read (it holds objects other than "
                              "tensors and plain values)")
    assert "weights_only" not in message and "trust" not in message


def test_a_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {"w": torch.ones(100)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"checkpoint .*checkpoint.pt cannot be read "
                                        r"\(PytorchStreamReader failed reading zip archive: "
                                        r"failed finding central directory\): it is damaged"):
        read(path)
