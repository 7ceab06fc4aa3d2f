"""The backup context manager / decorator, in this process, read from /metrics."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from covet_otel.events import backup


def test_successful_backup_records_size_of_its_output_and_last_success(metrics, tmp_path) -> None:
    output = tmp_path / "shop.dump"
    before = time.time()
    with backup("nightly", output=output) as run:
        output.write_bytes(b"x" * 12345)
    after = time.time()

    assert run.outcome == "success"
    scraped = metrics.scrape()
    assert scraped.value("covet_backup_size_bytes", backup="nightly") == 12345
    assert before <= scraped.value("covet_backup_last_success_timestamp", backup="nightly") <= after
    assert scraped.value("covet_backup_runs_total", backup="nightly", outcome="success") == 1
    assert scraped.value("covet_backup_duration_seconds_count", backup="nightly", outcome="success") == 1
    assert (
        scraped.value("covet_backup_duration_seconds_bucket", backup="nightly", outcome="success", le="1.0")
        == 1
    )


def test_directory_output_is_the_total_of_its_files(metrics, tmp_path) -> None:
    output = tmp_path / "dump_dir"
    with backup("directory_format", output=output):
        (output / "tables").mkdir(parents=True)
        (output / "toc.dat").write_bytes(b"t" * 100)
        (output / "tables" / "3001.dat.gz").write_bytes(b"d" * 900)
    assert metrics.scrape().value("covet_backup_size_bytes", backup="directory_format") == 1000


def test_a_failing_backup_counts_a_failure_and_its_exception_propagates_unchanged(metrics) -> None:
    error = RuntimeError("disk full")
    with pytest.raises(RuntimeError) as raised, backup("weekly"):
        raise error
    assert raised.value is error

    scraped = metrics.scrape()
    assert scraped.value("covet_backup_runs_total", backup="weekly", outcome="failure") == 1
    assert scraped.get("covet_backup_runs_total", backup="weekly", outcome="success") == 0
    # no success yet: no last-success time and no size (a 0 would read as "last success in 1970")
    assert {"backup": "weekly"} not in scraped.series("covet_backup_last_success_timestamp")
    assert {"backup": "weekly"} not in scraped.series("covet_backup_size_bytes")


def test_mark_failed_counts_a_failure_without_an_exception(metrics) -> None:
    with backup("marked") as run:
        run.mark_failed()
    assert run.outcome == "failure"
    assert metrics.scrape().value("covet_backup_runs_total", backup="marked", outcome="failure") == 1


def test_output_missing_or_not_written_by_this_run_is_a_failure(metrics, tmp_path) -> None:
    with backup("missing", output=tmp_path / "never-written.dump") as missing:
        pass
    stale = tmp_path / "yesterday.dump"
    stale.write_bytes(b"old")
    os.utime(stale, (time.time() - 86400, time.time() - 86400))
    with backup("stale", output=stale) as old:
        pass

    assert (missing.outcome, old.outcome) == ("failure", "failure")
    scraped = metrics.scrape()
    assert scraped.value("covet_backup_runs_total", backup="missing", outcome="failure") == 1
    assert scraped.value("covet_backup_runs_total", backup="stale", outcome="failure") == 1
    assert {"backup": "stale"} not in scraped.series("covet_backup_size_bytes")


def test_size_reported_by_the_block_wins_and_bad_sizes_are_dropped(metrics) -> None:
    with backup("reported") as run:
        run.size = 4096
    assert metrics.scrape().value("covet_backup_size_bytes", backup="reported") == 4096

    for bad in (-5, float("nan"), "4 kB", None):
        with backup("reported") as run:
            run.size = bad
    scraped = metrics.scrape()
    assert scraped.value("covet_backup_size_bytes", backup="reported") == 4096  # kept from the good run
    assert scraped.value("covet_backup_runs_total", backup="reported", outcome="success") == 5


def test_decorator_times_every_call_sync_and_async(metrics) -> None:
    @backup("decorated")
    def sync_job(n: int) -> int:
        return n * 2

    @backup("decorated_async")
    async def async_job() -> str:
        await asyncio.sleep(0)
        return "done"

    assert sync_job(2) == 4
    assert sync_job(3) == 6
    assert asyncio.run(async_job()) == "done"
    scraped = metrics.scrape()
    assert scraped.value("covet_backup_runs_total", backup="decorated", outcome="success") == 2
    assert scraped.value("covet_backup_runs_total", backup="decorated_async", outcome="success") == 1


@pytest.mark.parametrize("name", ["", "/var/backups/x", "nightly 2026-11-27", "2026-11-27", None])
def test_backup_names_must_be_fixed_identifiers(name) -> None:
    with pytest.raises(ValueError, match="backup name"):
        backup(name)  # type: ignore[arg-type]
