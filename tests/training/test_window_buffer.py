"""The comparison table says when pretraining windows could cover test-area pixels (buffer below the window)."""

from __future__ import annotations

from pathlib import Path

import yaml

from soilnet.data.stream_config import StreamConfig
from soilnet.recipes.recipe import load_recipe
from soilnet.training.window_buffer import record_window_buffer, ssl_overlap_note

ROOT = Path(__file__).resolve().parents[2]


def test_a_buffer_below_the_window_is_stated(tmp_path: Path) -> None:
    record_window_buffer(str(tmp_path), StreamConfig(buffer_px=4, patch_px=32))
    note = ssl_overlap_note(str(tmp_path))
    assert note is not None and "saw test-area pixels" in note and "4 px" in note and "32 px window" in note


def test_a_buffer_of_a_whole_window_needs_no_note(tmp_path: Path) -> None:
    record_window_buffer(str(tmp_path), StreamConfig(buffer_px=32, patch_px=32))
    assert ssl_overlap_note(str(tmp_path)) is None


def test_encoders_without_a_record_are_not_vouched_for(tmp_path: Path) -> None:
    note = ssl_overlap_note(str(tmp_path))
    assert note is not None and "not recorded" in note


def test_the_demo_table_states_that_its_ssl_rows_saw_test_areas(tmp_path: Path) -> None:
    """The demo's 2000 points in 30 x 30 km leave no room for a 32 px buffer: its table must say so."""
    demo = yaml.safe_load((ROOT / "jobs/configs/demo.yaml").read_text())
    patch = load_recipe(str(ROOT / demo["pretrain"]["recipe"])).data.patch_px
    stream = StreamConfig(**demo["pretrain"]["stream"]).model_copy(update={"patch_px": patch})
    record_window_buffer(str(tmp_path), stream)
    assert stream.buffer_px < patch and "saw test-area pixels" in (ssl_overlap_note(str(tmp_path)) or "")
