"""The grader's kernel client (``PromptKernelClient``): ready as soon as the kernel is, and never
before IOPub carries the kernel's output."""
import asyncio
import json
import sys

import pytest
from jupyter_client.manager import AsyncKernelManager

from assignment.preprocessors import PromptKernelClient


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
