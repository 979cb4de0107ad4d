"""Multi-process training under torchrun (gloo, on CPU): the same run as one process, rank 0 alone writing.

Every test launches the real command line, `python -m torch.distributed.run --nproc_per_node=2 --standalone
-m colorization train ...`, in subprocesses with one thread each and a time limit; a failure shows their
output. GPUs are hidden from them (CUDA_VISIBLE_DEVICES=""), so the gloo path runs the same everywhere;
tests/colorization/test_cuda.py runs the nccl path where there are GPUs.

Why a 2-process run can be compared with a 1-process one step for step: DistributedSampler deals out the
seed + epoch permutation of the training images round-robin (rank r gets positions r, r + 2, ...), so the
batches of B images that ranks 0 and 1 take at step k are, together, the batch of 2B images one process
takes at step k; augmentation depends only on (seed, epoch, image index), and the initial weights on the
seed. DDP averages the two processes' gradients of their B-image mean losses, which is the gradient of the
2B-image mean loss. Held-out losses are summed over the processes' slices of the held-out images.

What is not the same, and the tolerances (measured on the 2-core test machine, torch 2.14):
- Float rounding: the 2B-image gradient is summed in another order (per process, then an all-reduce and a
  division by 2, rather than one convolution backward over 2B images). After 6 RMSprop steps the runs
  differ by at most 6.5e-8 relative in the logged losses and 3.7e-8 in any weight (weights are up to 0.33).
  The tests allow 1e-5 on both: over 100x the rounding, while a real difference shows far above it (a
  1-process run with the wrong global batch, B instead of 2B images, ends the same 6 steps with a held-out
  loss 0.7% off and weights up to 2.7e-2 apart).
- Batch norm: each process would normalize with the statistics of its own B images instead of all 2B, and
  DDP broadcasts rank 0's running statistics to the others: with batch norm on, the same comparison
  measured up to 15% differences in the losses and 0.17 in the weights, which only a tolerance too loose to
  catch a wrong batch would accept. So these runs use the transform network without batch norm
  (--model-opt batch_norm=false); the distributed code path is the same with it.
"""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from colorization.checkpoint import BEST_NAME, LAST_NAME, load_checkpoint
from colorization.split import make_split
from colorization.train import LOG_NAME
from tests.colorization.conftest import read_log, write_color_images

REPO = Path(__file__).resolve().parents[2]
# A 2-process run takes about 15 s on the test machine's two shared cores; a hung rendezvous or collective
# must not hold the suite forever.
TIMEOUT_S = 300
PER_PROCESS_BATCH, EPOCHS = 3, 3  # 12 training images: 2 steps per epoch for 2 x 3 or 1 x 6 images
STEPS = 6
# See the module docstring: about 100x the float rounding measured between equivalent runs.
RTOL_LOSS, ATOL_WEIGHT = 1e-5, 1e-5


def train_arguments(split, out, batch_size, *extra, device="cpu") -> list[str]:
    """`train` arguments of a tiny run: a 1/8-width transform network without batch norm, random VGG."""
    return ["train", "--model", "perceptual", "--split", str(split), "--out", str(out), "--image-size", "32",
            "--batch-size", str(batch_size), "--workers", "0", "--lr", "1e-3", "--epochs", str(EPOCHS),
            "--vgg-weights", "none", "--model-opt", "width=0.125", "batch_norm=false", "--device", device,
            "--no-progress", *extra]  # fmt: skip


def subprocess_env(**changes) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", **changes)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):  # if pytest runs under torchrun
        env.pop(name, None)
    return env


def run_checked(command: list[str], *, cwd, env, timeout=TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run command; pytest.fail with its output if it fails or outlives timeout (then it and every process
    it started are stopped: torchrun puts its workers in sessions of their own, out of reach of a killpg)."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        started = _descendants(process.pid)
        process.send_signal(signal.SIGTERM)  # torchrun stops its workers on SIGTERM
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in [process.pid, *started]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(command)}\ndid not finish in {timeout} s\n{_output(stdout, stderr)}")
    if process.returncode != 0:
        pytest.fail(f"{' '.join(command)}\nexited with {process.returncode}\n{_output(stdout, stderr)}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _output(stdout: str, stderr: str, limit=8000) -> str:
    return f"--- stdout (end) ---\n{stdout[-limit:]}\n--- stderr (end) ---\n{stderr[-limit:]}"


def _descendants(pid: int) -> list[int]:
    """Every live process descended from pid (from /proc; empty where there is none)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def torchrun(nproc: int, arguments: list[str], *, cwd, script=None, env=None) -> subprocess.CompletedProcess:
    """`python -m torch.distributed.run --nproc_per_node=nproc --standalone -m colorization ARGUMENTS`, or
    SCRIPT ARGUMENTS in place of `-m colorization`."""
    target = [str(script)] if script else ["-m", "colorization"]
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--standalone",
               *target, *arguments]  # fmt: skip
    return run_checked(command, cwd=cwd, env=env or subprocess_env(CUDA_VISIBLE_DEVICES=""))


def one_process(arguments: list[str], *, cwd, env=None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "colorization", *arguments]
    return run_checked(command, cwd=cwd, env=env or subprocess_env(CUDA_VISIBLE_DEVICES=""))


def assert_same_run(run, reference, *, rtol=RTOL_LOSS, atol=ATOL_WEIGHT):
    """Two run folders hold the same log (steps, learning rates, and losses within rtol) and the same final
    weights (within atol) and counters."""
    log, reference_log = read_log(run), read_log(reference)
    assert [(row["epoch"], row["step"], row["lr"]) for row in log] == [
        (row["epoch"], row["step"], row["lr"]) for row in reference_log
    ]
    for column in ("train_loss", "heldout_loss"):
        values, expected = [float(row[column]) for row in log], [float(row[column]) for row in reference_log]
        assert values == pytest.approx(expected, rel=rtol, abs=0), column
    last, reference_last = load_checkpoint(run / LAST_NAME), load_checkpoint(reference / LAST_NAME)
    assert [last[key] for key in ("epoch", "batch_in_epoch", "step")] == [
        reference_last[key] for key in ("epoch", "batch_in_epoch", "step")
    ]
    assert last["best_loss"] == pytest.approx(reference_last["best_loss"], rel=rtol, abs=0)
    assert last["model_state"].keys() == reference_last["model_state"].keys()
    for key, expected in reference_last["model_state"].items():
        difference = (last["model_state"][key].float() - expected.float()).abs().max().item()
        assert difference <= atol, f"{key}: weights differ by {difference:.3g}"


# Runs `python -m colorization ...` (argv as torchrun passes it) with an audit hook that reports, on stderr,
# every file that this process creates, opens for writing, renames or deletes under AUDIT_ROOT, with its rank.
# torch.save writes from C++ (no audit event); train.py moves its checkpoints in place with os.replace.
AUDIT_SCRIPT = textwrap.dedent("""
    import os, runpy, sys

    ROOT, RANK = os.path.realpath(os.environ["AUDIT_ROOT"]), os.environ.get("RANK", "0")
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def written(event, args):
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & WRITE_FLAGS)
            return [path] if writes else []
        if event == "os.rename":
            return list(args[:2])
        if event in ("os.mkdir", "os.remove", "os.rmdir", "os.truncate"):
            return [args[0]]
        return []

    def audit(event, args):
        for path in written(event, args):
            if isinstance(path, (str, bytes, os.PathLike)):
                path = os.path.realpath(os.fsdecode(path))
                if path == ROOT or path.startswith(ROOT + os.sep):
                    os.write(2, f"AUDIT rank={RANK} {event} {path}\\n".encode())

    sys.addaudithook(audit)
    sys.argv[0] = "colorization"
    runpy.run_module("colorization", run_name="__main__", alter_sys=True)
""")


def audited_writes(stderr: str) -> list[tuple[str, str, str]]:
    """(rank, event, path) of every AUDIT line."""
    return [tuple(line.split(" ", 3)[1:]) for line in stderr.splitlines() if line.startswith("AUDIT rank=")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The same training, 2 processes x 3 images per step (audited) and 1 process x 6 images per step, on
    12 training and 4 held-out images: 3 epochs of 2 steps. The 2-process run's cwd is an empty folder."""
    root = tmp_path_factory.mktemp("distributed")
    write_color_images(root / "images", 16, seed=11)
    make_split(root / "images", root / "split", holdout=4, seed=0)
    (root / "cwd").mkdir()
    script = root / "audited_train.py"
    script.write_text(AUDIT_SCRIPT)

    one = one_process(train_arguments(root / "split", root / "one", 2 * PER_PROCESS_BATCH), cwd=root / "cwd")
    env = subprocess_env(CUDA_VISIBLE_DEVICES="", AUDIT_ROOT=str(root))
    two = torchrun(2, train_arguments(root / "split", root / "two", PER_PROCESS_BATCH), cwd=root / "cwd",
                   script=script, env=env)  # fmt: skip
    return {"root": root, "split": root / "split", "one": root / "one", "two": root / "two",
            "one_result": one, "two_result": two}  # fmt: skip


def test_two_processes_follow_the_loss_curve_of_one_process_with_the_same_global_batch(runs):
    log = read_log(runs["two"])
    assert [(int(row["epoch"]), int(row["step"])) for row in log] == [(1, 2), (2, 4), (3, 6)]
    # Not a flat curve that any run would match: the losses move from epoch to epoch.
    assert len({row["train_loss"] for row in log}) == len({row["heldout_loss"] for row in log}) == EPOCHS
    assert_same_run(runs["two"], runs["one"])
    # best.pt is the epoch with the lowest held-out loss in both.
    assert load_checkpoint(runs["two"] / BEST_NAME)["step"] == load_checkpoint(runs["one"] / BEST_NAME)["step"]


def test_only_rank_0_writes_files(runs):
    root, run = runs["root"], runs["two"]
    writes = audited_writes(runs["two_result"].stderr)
    assert [write for write in writes if write[0] != "rank=0"] == [], "a rank other than 0 wrote files"
    # The audit saw rank 0's writes: the run folder, the checkpoints moved in place, the log.
    written = {(event, Path(path).name) for _, event, path in writes}
    assert {("os.mkdir", "two"), ("os.rename", LAST_NAME), ("os.rename", BEST_NAME), ("open", LOG_NAME)} <= written
    assert {path.name for path in run.iterdir()} == {LAST_NAME, BEST_NAME, LOG_NAME}
    assert not list((root / "cwd").iterdir())
    # One log row per epoch (a second writer would have appended its own) and one closing message.
    assert len(read_log(run)) == EPOCHS
    assert [line for line in runs["two_result"].stdout.splitlines() if line.startswith(str(run))] == [
        f"{run}: step {STEPS}, best held-out loss {load_checkpoint(run / LAST_NAME)['best_loss']:.5g}"
    ]


def test_micro_batches_resumed_under_torchrun_continue_like_the_uninterrupted_run_of_whole_batches(runs, tmp_path):
    # Two things at once, each launch of torchrun costing ~10 CPU-s: micro-batches and a resume.
    # Chunks of 2 and 1 images per process: the first backward runs under no_sync, the second all-reduces the
    # accumulated gradient; each chunk's loss is weighted by its share of the batch (2/3, 1/3). Measured:
    # at most 7.2e-8 relative in the losses and 8.9e-8 in the weights from the run without micro-batches
    # (2e-7 and 1.5e-7 with chunks of 1 of 2 images).
    # Stopped at step 3, the first batch of epoch 2: the resumed processes each skip their share of it, and
    # keep the micro-batches from the checkpoint's config.
    run = tmp_path / "cut"
    arguments = train_arguments(runs["split"], run, PER_PROCESS_BATCH, "--micro-batch-size", "2", "--max-steps", "3")
    torchrun(2, arguments, cwd=tmp_path)
    stopped = load_checkpoint(run / LAST_NAME)
    assert (stopped["epoch"], stopped["batch_in_epoch"], stopped["step"]) == (1, 1, 3)

    resumed = torchrun(2, ["train", "--resume", "--out", str(run)], cwd=tmp_path)
    assert resumed.stdout.count(f"{run}: step {STEPS}") == 1

    log, whole = read_log(run), read_log(runs["two"])
    assert [(row["epoch"], row["step"]) for row in log] == [("1", "2"), ("2", "3"), ("2", "4"), ("3", "6")]
    for row, expected in zip([log[0], log[2], log[3]], whole):
        assert float(row["heldout_loss"]) == pytest.approx(float(expected["heldout_loss"]), rel=RTOL_LOSS, abs=0)
    final, expected = load_checkpoint(run / LAST_NAME), load_checkpoint(runs["two"] / LAST_NAME)
    assert final["step"] == STEPS and final["config"]["max_steps"] is None
    assert final["config"]["micro_batch_size"] == 2
    for key, value in expected["model_state"].items():
        assert torch.allclose(final["model_state"][key].float(), value.float(), rtol=0, atol=ATOL_WEIGHT), key
    # RMSprop's running averages came through the checkpoint too (squared gradients, some as small as 1e-27:
    # the rounding of the micro-batches is measured against each tensor's largest).
    states, expected_states = final["optimizer_state"]["state"], expected["optimizer_state"]["state"]
    assert states.keys() == expected_states.keys()
    for index, state in expected_states.items():
        scale = state["square_avg"].abs().max()
        assert torch.allclose(states[index]["square_avg"], state["square_avg"], rtol=0, atol=RTOL_LOSS * scale), index
