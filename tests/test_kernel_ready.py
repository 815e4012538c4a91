"""The grader's kernel client (``PromptKernelClient``): ready as soon as the kernel is, and never
before IOPub carries the kernel's output; its kernel manager (``PromptKernelManager``) sees a
stopped kernel gone as soon as it is."""
import asyncio
import json
import shutil
import sys

import pytest
from jupyter_client.asynchronous import AsyncKernelClient
import jupyter_client.manager
from jupyter_client.manager import AsyncKernelManager

from assignment import ROOT
from assignment.grade_one import nbgrader_config
from assignment.preprocessors import ExecuteRecordingProgress, PromptKernelClient, PromptKernelManager


async def _first_output(kernel_name):
    manager = AsyncKernelManager(kernel_name=kernel_name, client_factory=PromptKernelClient)
    await manager.start_kernel()
    client = manager.client()
    assert isinstance(client, PromptKernelClient)
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        printed = []
        reply = await client.execute_interactive("print('first words')", timeout=30,
                                                 output_hook=lambda m: printed.append(m["content"].get("text", "")))
        return reply["content"]["status"], "".join(printed)
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


def test_the_first_cell_run_once_ready_shows_all_its_output():
    """expected a kernel's first printed words, got none: IOPub was not connected when the client said ready"""
    for _ in range(5):
        status, printed = asyncio.run(_first_output("python3"))
        assert (status, printed) == ("ok", "first words\n"), f"expected ('ok', 'first words'), got {(status, printed)}"


def test_a_kernel_that_dies_at_start_is_said_dead(tmp_path, monkeypatch):
    spec = tmp_path / "kernels" / "dies"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [sys.executable, "-c", "raise SystemExit(3)", "{connection_file}"],
                                                  "display_name": "dies", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="died"):
        asyncio.run(_first_output("dies"))




async def _seconds_to_see_ready(client_classes):
    """For each client class, the seconds its ``wait_for_ready`` takes on one kernel already running."""
    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel()
    seconds = []
    try:
        for client_class in client_classes:
            manager.client_factory = client_class
            client = manager.client()
            client.start_channels()
            await client.wait_for_ready(timeout=60)
            started = asyncio.get_running_loop().time()
            await client.wait_for_ready(timeout=60)
            seconds.append(asyncio.get_running_loop().time() - started)
            client.stop_channels()
    finally:
        await manager.shutdown_kernel(now=True)
    return seconds


def test_a_running_kernel_is_seen_ready_sooner_than_jupyter_client_sees_it():
    """expected the grader's client to see a running kernel ready without jupyter_client's 0.2 s of
    IOPub silence, got no faster: its ``wait_for_ready`` is not the grader's"""
    stock, prompt = asyncio.run(_seconds_to_see_ready([AsyncKernelClient, PromptKernelClient]))
    assert prompt < stock - 0.1, f"expected under {stock - 0.1:.3f} s (jupyter_client: {stock:.3f} s), got {prompt:.3f} s"


def _poll_intervals(manager, monkeypatch):
    """The sleeps ``manager`` takes between its checks of a kernel that exits after three, when
    waiting as jupyter_client's shutdown waits (``_async_wait(pollinterval=0.1)``)."""
    answers, sleeps, real_sleep = iter([True, True, True, False]), [], asyncio.sleep

    async def is_alive():
        return next(answers)

    async def sleep(seconds, *args):
        sleeps.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(manager, "_async_is_alive", is_alive)
    monkeypatch.setattr(jupyter_client.manager.asyncio, "sleep", sleep)
    try:
        asyncio.run(manager._async_wait(pollinterval=0.1))
    finally:
        monkeypatch.undo()
    return sleeps


def test_grading_sees_a_stopped_kernel_gone_within_5_ms(tmp_path, monkeypatch):
    """expected the kernel manager grading builds to check a stopping kernel every 5 ms, got
    jupyter_client's manager or its 0.1 s: every notebook's shutdown would wait for nothing"""
    (tmp_path / "course").mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path / "course")
    execute = ExecuteRecordingProgress(config=nbgrader_config(tmp_path / "course", tmp_path / "run"))
    manager = execute.create_kernel_manager()  # as nbclient makes it for every notebook
    assert isinstance(manager, PromptKernelManager), f"expected a PromptKernelManager, got {type(manager).__name__}"
    assert isinstance(manager.client(), PromptKernelClient), "expected the grader's kernel client"
    stock = _poll_intervals(AsyncKernelManager(), monkeypatch)
    assert stock == [0.1] * 3, f"expected jupyter_client to wait 0.1 s each time, got {stock}"
    prompt = _poll_intervals(manager, monkeypatch)
    assert prompt == [0.005] * 3, f"expected 0.005 s each time, got {prompt}"
