"""Checkpoints under SIGKILL: a child process saves a model over and over and
is killed at random moments, most of them in the middle of a save; the file
at the path must always load as one complete snapshot. Also: where a save
cannot be written, and what happens to a killed save's temporary file.
(tests/test_checkpoint.py has the round trips, damaged files and no-pickle.)"""

import os
import random
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import striate
from helpers import raises
from striate import nn

# ~3.7M parameters (15 MB): a save takes tens of milliseconds, so random
# kills land inside it, and one snapshot per value makes a mix detectable.
CHILD = r"""
import sys
import numpy as np
from striate import nn

def make():
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(7200, 512))

def fill(model, i):
    # Snapshot i: every parameter and buffer holds the value i.
    for p in model.parameters():
        p.data[...] = i
    bn = model[1]
    bn.running_mean[...] = i
    bn.running_var[...] = i
    bn.num_batches_tracked[...] = i

if __name__ == "__main__":
    path, i = sys.argv[1], int(sys.argv[2])
    model = make()
    print("ready", flush=True)
    while True:
        fill(model, i)
        print("saving", i, flush=True)
        model.save(path)
        print("saved", i, flush=True)
        i += 1
"""


def _snapshot_value(model):
    """The i of a loaded snapshot; fails unless every array holds the same i."""
    values = {float(np.unique(v)[0]) if np.unique(v).size == 1 else None
              for v in model.state_dict().values()}
    assert len(values) == 1 and None not in values, f"not one snapshot: {values}"
    return int(values.pop())


def _temps(folder):
    return sorted(p for p in os.listdir(folder) if p.endswith(".tmp"))


def test_sigkill_during_save_keeps_the_previous_checkpoint(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "ckpt.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
               OMP_NUM_THREADS="1")
    rng = random.Random(0)
    current = None  # the snapshot on disk
    mid_save = temp_left = 0
    cycles = 24
    for cycle in range(cycles):
        start = 0 if current is None else current + 1
        child = subprocess.Popen([sys.executable, str(script), str(path), str(start)],
                                 stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        try:
            assert child.stdout.readline() == "ready\n"
            if current is None:  # first a complete checkpoint to protect
                while child.stdout.readline() != "saved 0\n":
                    pass
                current = 0
            time.sleep(rng.uniform(0.0, 0.2))
        finally:
            child.send_signal(signal.SIGKILL)
            # The kill can cut the last line short ("saved" without its
            # number): only newline-terminated lines are events.
            out = child.communicate()[0].split("\n")[:-1]
        assert child.returncode == -signal.SIGKILL
        events = [line.split() for line in out if line and line != "ready"]
        saved = [int(e[1]) for e in events if e[0] == "saved"]
        last = events[-1] if events else None
        in_flight = int(last[1]) if last and last[0] == "saving" else None
        mid_save += in_flight is not None
        leftovers = _temps(tmp_path)
        temp_left += bool(leftovers)
        # At most the killed save's file: each save removes the dead ones first.
        assert len(leftovers) <= 1, leftovers

        loaded = striate.load(path)  # intact, checksums and all
        value = _snapshot_value(loaded)
        newest = saved[-1] if saved else current
        # The rename may have happened before "saved" was printed.
        assert value == newest or value == in_flight, (cycle, value, newest, in_flight)
        current = value

    # The kills must have tested something: most land inside a save, and
    # several while the temporary file was being written.
    assert mid_save >= cycles // 2 and temp_left >= 3, (mid_save, temp_left)
    striate.load(path).save(path)  # a save from this process removes the dead child's file
    assert _temps(tmp_path) == []
    print(f"{cycles} kills: {mid_save} inside a save, {temp_left} left a temporary file")


def _model():
    return nn.Sequential(nn.Linear(3, 2))


def test_stale_temp_files_removed_only_for_dead_processes(tmp_path):
    path = tmp_path / "m.npz"
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = {
        "dead": f".m.npz.{host}-{dead.pid}-00aa.tmp",  # its process is gone: removed
        "alive": f".m.npz.{host}-{os.getpid()}-00bb.tmp",  # maybe saving now: kept
        "other_host": f".m.npz.elsewhere-{dead.pid}-00cc.tmp",  # cannot tell: kept
        "other_file": f".n.npz.{host}-{dead.pid}-00dd.tmp",  # another checkpoint's: kept
    }
    for n in names.values():
        (tmp_path / n).write_bytes(b"partial")
    _model().save(path)
    assert set(_temps(tmp_path)) == {names["alive"], names["other_host"], names["other_file"]}
    striate.load(path)


def test_save_errors_name_the_path(tmp_path):
    model = _model()
    missing = tmp_path / "no" / "such" / "dir" / "m.npz"
    with raises(FileNotFoundError, str(missing)):
        model.save(missing)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with raises(NotADirectoryError, str(a_file / "m.npz")):
        model.save(a_file / "m.npz")
    a_dir = tmp_path / "adir"
    a_dir.mkdir()
    with pytest.raises(IsADirectoryError):
        model.save(a_dir)
    assert sorted(os.listdir(tmp_path)) == ["adir", "notes.txt"]  # no temporary file left


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions that apply (root ignores them)")
def test_save_into_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        with raises(PermissionError, str(ro / "m.npz")):
            _model().save(ro / "m.npz")
    finally:
        os.chmod(ro, 0o755)


def test_save_replaces_a_file_that_is_not_a_checkpoint(tmp_path):
    """As torch.save and np.save: the path is the user's choice to overwrite."""
    path = tmp_path / "notes.npz"
    path.write_text("not a checkpoint")
    model = _model()
    model.save(path)
    again = striate.load(path)
    assert np.array_equal(again[0].weight.data, model[0].weight.data)
